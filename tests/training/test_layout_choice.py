"""`train.channels_last=auto` decides by measuring the run's own convolutions."""

from __future__ import annotations

import json

import pytest
import torch

from mtgan import api
from mtgan.config import load_config
from mtgan.nets import StackedConv2d
from mtgan.training import RunDir, Trainer
from mtgan.training.layout import CACHE, decide_layout

CPU = torch.device("cpu")
CONVS = [StackedConv2d(2, 3, 4, kernel=3, stride=1, padding=1)]
DCGAN = ["model.arch=dcgan", "model.z_dim=8", "model.g_hidden=[16,8]", "model.d_hidden=[8,16]"]


def _probe(plain_s: float, nhwc_s: float, calls: list[int]):
    def probe():
        calls.append(1)
        return plain_s, nhwc_s

    return probe


@pytest.mark.parametrize(
    ("plain_s", "nhwc_s", "expected"),
    [(2.0, 1.0, True), (1.0, 2.0, False), (1.0, 0.95, False)],  # the last: within noise
    ids=["faster", "slower", "no-gain"],
)
def test_auto_takes_channels_last_only_where_it_measured_faster(
    tmp_path, plain_s, nhwc_s, expected
):
    calls: list[int] = []
    layout = decide_layout("auto", CPU, CONVS, _probe(plain_s, nhwc_s, calls), 16, tmp_path)
    assert layout.channels_last is expected and calls == [1]
    assert f"{plain_s / nhwc_s:.2f}× the contiguous speed on this CPU (measured now)" in (
        layout.reason
    )
    again = decide_layout("auto", CPU, CONVS, _probe(1.0, 1.0, calls), 16, tmp_path)
    assert again.channels_last is expected and calls == [1] and "measured earlier" in again.reason
    # another network shape (or batch) is measured on its own
    decide_layout("auto", CPU, CONVS, _probe(1.0, 1.0, calls), 32, tmp_path)
    assert calls == [1, 1] and len(json.loads((tmp_path / CACHE).read_text())) == 2


def test_explicit_layout_and_networks_without_convolutions_never_probe(tmp_path):
    calls: list[int] = []
    assert decide_layout(True, CPU, CONVS, _probe(1, 9, calls), 16, tmp_path).channels_last
    assert not decide_layout(False, CPU, CONVS, _probe(9, 1, calls), 16, tmp_path).channels_last
    none = decide_layout("auto", CPU, [], _probe(9, 1, calls), 16, tmp_path)
    assert not none.channels_last and none.reason == "no convolutions" and calls == []


def test_a_convolutional_run_records_and_applies_its_layout(tmp_path, tiny):
    run = api.train("pertask", [*tiny, *DCGAN, "train.steps=2"], out=tmp_path / "run", quiet=True)
    layout = RunDir(run.path).read_precision()["layout"]
    assert layout["asked"] == "auto" and "the contiguous speed on this CPU" in layout["reason"]
    trainer = Trainer(load_config("pertask", [*tiny, *DCGAN]))  # the cached verdict
    convs = [m for m in trainer.model.modules() if hasattr(m, "channels_last")]
    assert convs and all(c.channels_last is layout["channels_last"] for c in convs)
    forced = Trainer(load_config("pertask", [*tiny, *DCGAN, "train.channels_last=true"]))
    assert all(m.channels_last for m in forced.model.modules() if hasattr(m, "channels_last"))
    assert forced.train_step(record=True)["skipped"] == 0

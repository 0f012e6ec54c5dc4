"""`train.precision=auto` decides by measuring, never from a capability flag."""

from __future__ import annotations

import json

import pytest
import torch

from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.precision import CACHE, decide, machine_key

CPU = torch.device("cpu")


def _probe(fp32_s: float, bf16_s: float, calls: list[int]):
    def probe():
        calls.append(1)
        return fp32_s, bf16_s

    return probe


@pytest.mark.parametrize(
    ("fp32_s", "bf16_s", "expected"),
    [(3.0, 1.0, "bf16"), (1.0, 3.0, "fp32"), (1.0, 0.95, "fp32")],  # the last: within noise
    ids=["native", "emulated", "no-gain"],
)
def test_auto_takes_bf16_only_where_it_measured_faster(tmp_path, fp32_s, bf16_s, expected):
    calls: list[int] = []
    verdict = decide("auto", CPU, "images", _probe(fp32_s, bf16_s, calls), tmp_path)
    assert verdict.precision == expected and calls == [1]
    assert f"{fp32_s / bf16_s:.2f}× the fp32 speed on this CPU (measured now)" in verdict.reason
    # cached per machine: the next run does not measure again, and decides the same
    again = decide("auto", CPU, "images", _probe(1.0, 1.0, calls), tmp_path)
    assert again.precision == expected and calls == [1] and "measured earlier" in again.reason
    cached = json.loads((tmp_path / CACHE).read_text())
    assert cached == {machine_key(CPU): pytest.approx(fp32_s / bf16_s)}


def test_explicit_precision_and_2d_points_never_probe(tmp_path):
    calls: list[int] = []
    assert decide("bf16", CPU, "images", _probe(1, 9, calls), tmp_path).precision == "bf16"
    assert decide("auto", CPU, "points", _probe(9, 1, calls), tmp_path).precision == "fp32"
    assert calls == []


def test_the_run_directory_says_what_auto_chose_and_why(tmp_path, tiny):
    from mtgan import api

    overrides = [t for t in tiny if not t.startswith("train.precision")]
    run = api.train("pertask", [*overrides, "train.steps=2"], out=tmp_path / "run", quiet=True)
    from mtgan.training import RunDir

    event = RunDir(run.path).read_precision()
    assert event["asked"] == "auto" and event["precision"] in ("fp32", "bf16")
    assert "the fp32 speed on this CPU" in event["reason"]
    trainer = Trainer(load_config("pertask", overrides))
    assert trainer.precision == event["precision"]  # the cached verdict

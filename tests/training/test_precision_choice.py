"""`train.precision=auto` decides by measuring, never from a capability flag."""

from __future__ import annotations

import json

import pytest
import torch

from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.precision import CACHE, decide, machine_key

CPU = torch.device("cpu")


def _probe(fp32_s: float, low_s: float, calls: list, asked: list[str] | None = None):
    def probe(candidate: str):
        calls.append(1)
        if asked is not None:
            asked.append(candidate)
        return fp32_s, low_s

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


def _gpu(monkeypatch, bf16: bool) -> torch.device:
    """A CUDA device as `decide` sees it: named, with or without native bf16."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    return torch.device("cuda")


@pytest.mark.parametrize(
    ("fp32_s", "fp16_s", "expected"), [(3.0, 1.0, "fp16"), (1.0, 0.95, "fp32")]
)
def test_auto_on_a_gpu_without_bf16_probes_fp16(tmp_path, monkeypatch, fp32_s, fp16_s, expected):
    gpu, calls, asked = _gpu(monkeypatch, bf16=False), [], []
    verdict = decide("auto", gpu, "images", _probe(fp32_s, fp16_s, calls, asked), tmp_path)
    assert verdict.precision == expected and asked == ["fp16"]
    assert verdict.reason.startswith("this GPU has no bf16; fp16 ran at")
    again = decide("auto", gpu, "images", _probe(1.0, 1.0, calls, asked), tmp_path)
    assert again.precision == expected and calls == [1] and "measured earlier" in again.reason
    # its own cache entry: a bf16 verdict for the same machine key is another one
    assert list(json.loads((tmp_path / CACHE).read_text())) == [f"{machine_key(gpu)}; fp16"]


def test_bf16_and_fp16_verdicts_are_cached_apart(tmp_path, monkeypatch):
    calls, asked = [], []
    _gpu(monkeypatch, bf16=True)
    gpu = torch.device("cuda")
    assert decide("auto", gpu, "images", _probe(3, 1, calls, asked), tmp_path).precision == "bf16"
    _gpu(monkeypatch, bf16=False)  # the same name, bf16 now missing: measures fp16 afresh
    assert decide("auto", gpu, "images", _probe(1, 2, calls, asked), tmp_path).precision == "fp32"
    assert asked == ["bf16", "fp16"]
    cached = json.loads((tmp_path / CACHE).read_text())
    assert cached == {machine_key(gpu): 3.0, f"{machine_key(gpu)}; fp16": 0.5}


def test_auto_on_a_cpu_never_probes_fp16(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    calls, asked = [], []
    verdict = decide("auto", CPU, "images", _probe(3.0, 1.0, calls, asked), tmp_path)
    assert verdict.precision == "bf16" and asked == ["bf16"]
    assert decide("fp16", CPU, "images", _probe(1, 9, calls), tmp_path).precision == "fp16"

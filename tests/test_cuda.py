"""GPU checks (run by benchmarks/gpu_check.sh on a CUDA machine; skipped elsewhere)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mtgan import api
from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.trainer import build_tuned

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _cuda(tiny: list[str], *extra: str) -> list[str]:
    return [o for o in tiny if not o.startswith("train.device")] + ["train.device=cuda", *extra]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_the_gpu_stays_finite_and_close_to_the_cpu(tiny, precision):
    gpu = Trainer(load_config("pertask", _cuda(tiny, f"train.precision={precision}")))
    cpu = Trainer(load_config("pertask", [*tiny, "train.precision=fp32"]))
    assert next(gpu.model.parameters()).is_cuda
    rec_gpu = [gpu.train_step(record=True) for _ in range(3)]
    rec_cpu = [cpu.train_step(record=True) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in rec_gpu)
    assert rec_gpu[0]["d/loss"] == pytest.approx(rec_cpu[0]["d/loss"], rel=0.05)


def test_fp16_on_the_gpu_scales_its_losses_without_host_syncs(tiny):
    from torch.utils._python_dispatch import TorchDispatchMode

    class HostReads(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                self.count += 1
            return func(*args, **(kwargs or {}))

    trainer = Trainer(load_config("pertask", _cuda(tiny, "train.precision=fp16")))
    assert all(s.scale.is_cuda for s in trainer.engine.scales.values())
    assert set(trainer.engine.scales) == {p.name for p in trainer.phases}
    trainer.train_step(record=True)
    with HostReads() as reads:
        for _ in range(4):
            trainer.train_step()
    assert reads.count == 0
    record = trainer.train_step(record=True)
    assert record["skipped"] == 0 and 1.0 <= record["d/loss_scale"] <= 2.0**16
    state = trainer.state_dict()["loss_scales"]
    assert set(state) == {p.name for p in trainer.phases}


@pytest.mark.parametrize("balancer", ["mgda", "pcgrad"])
def test_fp16_gradient_balancers_on_the_gpu_weigh_as_in_fp32(tiny, balancer):
    # their per-objective gradients are loss-scaled like the phase's own
    from mtgan.training.loss_scale import ScaledSource

    weights = {}
    for precision in ("fp16", "fp32"):
        over = _cuda(tiny, f"train.precision={precision}", f"balance.d={balancer}")
        trainer = Trainer(load_config("pertask", over))
        assert isinstance(trainer.engine.sources["d"], ScaledSource) is (precision == "fp16")
        record = trainer.train_step(record=True)
        assert record["skipped"] == 0
        weights[precision] = {k: v for k, v in record.items() if k.startswith("d/weight/")}
    assert weights["fp32"]
    for key, value in weights["fp32"].items():
        assert weights["fp16"][key] == pytest.approx(value, rel=0.05, abs=0.02), key


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_channels_last_convolutions_on_the_gpu(tiny, precision):
    # cuDNN's NHWC kernels: the same first step as the contiguous layout, and `auto` decides
    dcgan = ["model.arch=dcgan", "model.z_dim=8", "model.g_hidden=[16,8]", "model.d_hidden=[8,16]"]
    base = _cuda(tiny, *dcgan, f"train.precision={precision}")
    records = []
    for layout in ("false", "true"):
        trainer = Trainer(load_config("pertask", [*base, f"train.channels_last={layout}"]))
        records.append(trainer.train_step(record=True))
    assert records[1]["d/loss"] == pytest.approx(records[0]["d/loss"], rel=1e-2)
    auto = build_tuned(load_config("pertask", base))
    assert "as fast as contiguous on this GPU" in auto.verdicts["channels_last"].reason


def test_compile_on_the_gpu(tiny):
    trainer = Trainer(load_config("pertask", _cuda(tiny, "train.compile=true")))
    record = [trainer.train_step(record=True) for _ in range(3)][-1]
    assert torch.isfinite(torch.tensor(list(record.values()))).all()


def test_nccl_process_group_on_one_gpu(tmp_path, tiny):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtgan",
            "train",
            "pertask",
            *_cuda(tiny),
            "--out",
            str(out),
            "--nproc",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert api.open_run(out).step == 6

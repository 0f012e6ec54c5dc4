"""Data-parallel training with torchrun: 2 gloo processes on this machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from two_processes import max_diff, without_bias_before_norm

from mtgan import api
from mtgan.training.distributed import Dist

pytestmark = pytest.mark.slow

SMALL = [
    "pertask",
    "data.tasks=[[0],[1],[7]]",
    "data.limit=40",
    "model.g_norm=none",  # batch statistics are per process, as with DDP without SyncBatchNorm
    "model.z_dim=8",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16]",
    "train.batch_size=8",
    "train.checkpoint_every=5",
    "train.log_every=5",
    "train.progress=false",
    "train.loggers=[jsonl]",
    "train.threads=1",
    "train.precision=fp32",  # equality up to float summation order needs float32 sums
]


def _mtgan(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    import os

    return subprocess.run(
        [sys.executable, "-m", "mtgan", "train", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _weights(run_dir, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / f"step-{step:07d}" / "weights.safetensors"))


def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    result = _mtgan(*SMALL, "train.steps=20", "--out", str(tmp_path / "ddp"), "--nproc", "2")
    assert result.returncode == 0, result.stderr
    assert "on 2 processes" in result.stderr
    api.train(SMALL[0], [*SMALL[1:], "train.steps=20"], out=tmp_path / "one", quiet=True)
    diff = max_diff(_weights(tmp_path / "ddp", 20), _weights(tmp_path / "one", 20))
    assert diff < 1e-5  # float summation order only (measured ~4e-8 at 30 steps)
    # Only rank 0 wrote: one metrics line per logged step, no duplicates.
    steps = [r["step"] for r in api.open_run(tmp_path / "ddp").metrics()]
    assert steps == [5, 10, 15, 20]


def test_resume_a_distributed_run(tmp_path):
    out = str(tmp_path / "ddp")
    assert _mtgan(*SMALL, "train.steps=10", "--out", out, "--nproc", "2").returncode == 0
    resumed = _mtgan("--resume", out, "train.steps=20", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    full = _mtgan(*SMALL, "train.steps=20", "--out", str(tmp_path / "full"), "--nproc", "2")
    assert full.returncode == 0, full.stderr
    diff = max_diff(_weights(tmp_path / "ddp", 20), _weights(tmp_path / "full", 20))
    assert diff == 0.0  # the same processes replay the same steps bit for bit


def test_a_dead_rank_stops_the_others_with_a_clear_error(tmp_path):
    out = tmp_path / "ddp"
    start = time.monotonic()
    result = _mtgan(
        *SMALL,
        "train.steps=40",
        "train.dist_timeout=30",
        "--out",
        str(out),
        "--nproc",
        "2",
        env={"MTGAN_TEST_FAULT": "exit:1:12"},
    )
    assert time.monotonic() - start < 60
    assert result.returncode != 0
    # Said by the launcher, which learns which rank died (the survivors are stopped by
    # torchrun, sometimes before they can say so themselves).
    assert "training process rank 1 of 2 ended with exit code 3" in result.stderr
    assert f"--resume {out}" in result.stderr
    assert "Traceback" not in result.stderr
    # The last checkpoint before the failure is complete and resumable.
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-0000010"
    run = api.train(resume=out, overrides=["train.steps=15"], quiet=True)
    assert run.step == 15


def _failure(rank: int, exitcode: int, timestamp: int):
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    failure = ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=exitcode, error_file="")
    failure.timestamp = timestamp
    return failure


@pytest.mark.parametrize("tie", [True, False])
def test_the_launcher_blames_the_rank_that_died_not_the_one_that_lost_it(tie):
    # Whole-second timestamps: the dead rank and the survivor that reported it often tie.
    from mtgan.training.distributed import USER_ERROR_EXIT, root_failure

    dead_at, survivor_at = (100, 100) if tie else (99, 100)
    for survivor in (USER_ERROR_EXIT, -signal.SIGTERM):  # said it lost rank 1; torchrun stopped it
        failures = {0: _failure(0, survivor, survivor_at), 1: _failure(1, 3, dead_at)}
        rank, failure = root_failure(failures)
        assert (rank, failure.exitcode) == (1, 3)


def test_a_rank_that_explained_its_error_is_not_blamed_on_the_one_torchrun_stopped():
    from mtgan.training.distributed import USER_ERROR_EXIT, root_failure

    failures = {0: _failure(0, -signal.SIGTERM, 100), 1: _failure(1, USER_ERROR_EXIT, 100)}
    assert root_failure(failures)[0] == 1


def test_the_launcher_passes_on_an_error_every_rank_explained():
    from mtgan.training.distributed import USER_ERROR_EXIT, root_failure

    failures = {1: _failure(1, USER_ERROR_EXIT, 100), 0: _failure(0, USER_ERROR_EXIT, 101)}
    assert root_failure(failures)[0] == 1


def test_global_batch_must_divide_over_processes():
    from mtgan.errors import ConfigError

    with pytest.raises(ConfigError, match="divisible by the number of processes"):
        Dist(rank=0, world=3).shard(8)
    assert Dist(rank=1, world=2).shard(8) == slice(4, 8)


UNTIL_2D = [
    "gan-2d",
    "data.n_points=400",
    "model.g_hidden=[32,32]",
    "model.d_hidden=[32,32]",
    "model.g_norm=none",
    "train.batch_size=32",
    "train.log_every=10",
    "train.checkpoint_every=1000",
    "train.sample_every=1000",
    "train.progress=false",
    "train.loggers=[jsonl]",
    "train.threads=1",
    "train.precision=fp32",
    "eval.metrics=[modes]",
    "eval.n=300",
    "eval.every=10",
    "train.until.metric=hq",
    "train.until.patience=2",
    "train.steps=600",
]


def _stop(run_dir) -> dict:
    (stop,) = [r for r in api.open_run(run_dir).metrics() if r.get("event") == "stop"]
    return stop


def test_until_stops_every_process_at_rank_0s_verdict(tmp_path):
    # Rank 0 alone evaluates; were its verdict not broadcast, rank 1 would train on into an
    # all-reduce nobody answers, and the run would hang until the timeout below.
    out = tmp_path / "ddp"
    result = _mtgan(*UNTIL_2D, "--out", str(out), "--nproc", "2", "train.dist_timeout=60")
    assert result.returncode == 0, result.stderr
    api.train(UNTIL_2D[0], UNTIL_2D[1:], out=tmp_path / "one", quiet=True)
    two, one = _stop(out), _stop(tmp_path / "one")
    assert two["reason"] == "converged" and two["step"] < 600
    assert (two["step"], two["best_step"]) == (one["step"], one["best_step"])
    assert api.Run(out, checkpoint="best").step == two["best_step"]
    # the resume of a stopped distributed run is a no-op on every rank
    again = _mtgan("--resume", str(out), "--nproc", "2")
    assert again.returncode == 0 and "already stopped" in again.stderr, again.stderr


@pytest.mark.parametrize("sync", [True, False])
def test_sync_bn_normalises_two_processes_as_one(tmp_path, sync):
    # With batch norm, 2 processes normalise by half-batch statistics unless train.sync_bn:
    # the False case shows the test can tell the difference.
    with_bn = [o for o in SMALL if o != "model.g_norm=none"] + ["model.g_norm=batch"]
    args = [*with_bn, "train.steps=10", f"train.sync_bn={str(sync).lower()}"]
    result = _mtgan(*args, "--out", str(tmp_path / "ddp"), "--nproc", "2")
    assert result.returncode == 0, result.stderr
    api.train(args[0], args[1:], out=tmp_path / "one", quiet=True)
    two, one = _weights(tmp_path / "ddp", 10), _weights(tmp_path / "one", 10)
    diff = max_diff(*(without_bias_before_norm(w) for w in (two, one)))
    print(f"train.sync_bn={sync}: 2 vs 1 process max |Δw| = {diff:.2e}")
    if sync:
        assert diff < 1e-5
    else:
        assert diff > 1e-4

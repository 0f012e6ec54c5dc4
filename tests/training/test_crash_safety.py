"""A training process killed with SIGKILL at random moments, including halfway through writing a
checkpoint, resumes every time and ends with weights bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from mtgan.training.checkpoint import STATE, WEIGHTS, latest_checkpoint

pytestmark = pytest.mark.slow

STEPS = 8000
CONFIG = [
    "pertask",
    "data.tasks=[[0],[1],[7]]",
    "data.limit=40",
    "model.z_dim=8",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16]",
    "train.batch_size=8",
    f"train.steps={STEPS}",
    "train.checkpoint_every=100",
    "train.log_every=25",
    "train.sample_every=100000",
    "train.progress=false",
    "train.loggers=[jsonl]",
    "train.threads=1",
    "train.ema=0.9",
]


def _start(args: list[str], fault: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MTGAN_TEST_FAULT"}
    if fault:
        env["MTGAN_TEST_FAULT"] = fault
    cmd = [sys.executable, "-m", "mtgan", "train", *args, "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _final_weights(run_dir) -> dict:
    return load_file(str(run_dir / "checkpoints" / f"step-{STEPS:07d}" / WEIGHTS))


def test_sigkill_at_ten_points_then_resume_equals_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    done = _start([*CONFIG, "--out", str(reference)])
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()

    run = tmp_path / "run"
    rng = random.Random(1234)
    survived, args = 0, [*CONFIG, "--out", str(run)]
    for i in range(10):
        if i % 3 == 1:  # killed by its own hook in the middle of its 2nd checkpoint write
            proc = _start(args, fault="checkpoint:2")
            code = proc.wait(timeout=300)
            assert code == -signal.SIGKILL, proc.stderr.read().decode()
        else:  # killed from outside at a random moment
            proc = _start(args)
            time.sleep(rng.uniform(1.0, 4.0))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=60) == -signal.SIGKILL, "finished before it was killed"
        latest = latest_checkpoint(run / "checkpoints")
        if latest is not None:  # whatever it points at is complete
            assert (latest / WEIGHTS).stat().st_size > 0 and (latest / STATE).stat().st_size > 0
            load_file(str(latest / WEIGHTS))
        survived += 1
        if (run / "config.yaml").exists():
            args = ["--resume", str(run)]
    finish = _start(["--resume", str(run)])
    assert finish.wait(timeout=300) == 0, finish.stderr.read().decode()
    assert survived == 10

    a, b = _final_weights(reference), _final_weights(run)
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a), "resumed run differs from the uninterrupted one"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS  # no duplicated or lost records

"""Two gloo processes on this machine, for the 2-vs-1 comparisons: the launch (from a test), the
training loop every worker runs (each config trained in turn, rank 0 saving the weights), and
the one-process side of the comparison."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from mtgan.errors import ConfigError
from mtgan.training import Trainer
from mtgan.training.distributed import barrier, init_distributed

HERE = Path(__file__).parent


def launch(worker: str, out: Path) -> None:
    """Run `worker` (a file beside this one) under torchrun with 2 processes; it writes to out."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(HERE / worker), str(out)]
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]


def launched_once(worker: str) -> Callable[..., Path]:
    """A module-scoped fixture: the folder where `worker` saved its results, launched once."""
    import pytest  # here, not at the top: the workers import this module and need no pytest

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
        out = tmp_path_factory.mktemp(Path(worker).stem)
        launch(worker, out)
        return out

    return fixture


def train_and_save(runs: Iterable[tuple[str, Any]], steps: int, out: Path) -> None:
    """In a worker: train each (name, config) for `steps` steps in the one process group, and
    have rank 0 save its weights as out/<name>.pt, or as out/<name>.refused the message of a
    config that 2 processes refuse (a ConfigError, raised on every rank alike); then end the
    process (it does not return)."""
    info = init_distributed(torch.device("cpu"), timeout_s=120)
    for name, config in runs:
        try:
            trainer = Trainer(config, dist=info)
        except ConfigError as e:
            if info.main:
                (out / f"{name}.refused").write_text(str(e))
            continue
        for _ in range(steps):
            trainer.train_step()
        if info.main:
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            torch.save(weights, out / f"{name}.pt")
    # Every file is written: end the process here, past the process group's teardown and the
    # interpreter's. There gloo's threads now and then meet torch's static destructors in an
    # order that aborts both ranks ("terminate called without an active exception", SIGABRT)
    # after all their results were saved (seen in 2 of 3 suite runs on 2026-12-07), which
    # failed a comparison that had nothing wrong with it.
    barrier(info)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def without_bias_before_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Leave out the bias of a layer that a batch norm follows (and the running mean it
    shifts): the norm subtracts it, so its gradient is zero but for rounding, which Adam
    scales up to ±lr a step whatever the summation order (1e-4 after 10 steps on one process
    with two orders of the same sums)."""
    skip = set()
    for key in weights:
        if key.endswith("norm.running_mean"):
            skip |= {key, key.replace("norm.running_mean", "affine.bias")}
    return {k: v for k, v in weights.items() if k not in skip}


def without_margin_bias(weights: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """Under a hinge or Wasserstein loss (cgan), leave out the discriminators' output bias:
    each real sample adds −1/B to its gradient and each fake +1/B (hinge: while the logit is
    inside the margin), which cancel to zero but for rounding, and Adam scales rounding up to
    ±lr a step whatever the summation order (8.5e-4 after 10 steps of cgan, accumulate 2)."""
    if config.loss.adversarial not in ("hinge", "wasserstein"):
        return weights
    # the discriminators' last layer holds the last bias of their state (any architecture)
    bias = [k for k in weights if k.startswith("discriminator.") and k.endswith(".bias")][-1]
    return {k: v for k, v in weights.items() if k != bias}


def trained(config: Any, steps: int) -> dict[str, torch.Tensor]:
    """The one-process side: the model's weights after `steps` steps of `config`."""
    trainer = Trainer(config)
    for _ in range(steps):
        trainer.train_step()
    return trainer.model.state_dict()


def max_diff(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor]) -> float:
    """max |Δw| over every tensor of two state dicts with the same keys."""
    assert one.keys() == two.keys()
    return max((one[k].float() - two[k].float()).abs().max().item() for k in one)


def assert_two_equal_one(
    worker: str,
    out: Path,
    configs: dict[str, Any],
    steps: int,
    tolerance: float,
    label: str = "2 processes vs 1",
    one_process: dict[str, Any] | None = None,
) -> None:
    """Launch `worker` (which trains `configs` on 2 processes and saves out/<name>.pt), then
    train each name's config (or its `one_process` counterpart) for `steps` steps in this
    process and assert max |Δw| < `tolerance` (the margin bias left out under hinge)."""
    launch(worker, out)
    for name, config in configs.items():
        reference = (one_process or {}).get(name, config)
        one = without_margin_bias(trained(reference, steps), reference)
        two = torch.load(out / f"{name}.pt", weights_only=True)
        diff = max_diff(one, without_margin_bias(two, reference))
        print(f"{name}: {label}: max |Δw| = {diff:.2e}")
        assert diff < tolerance, name

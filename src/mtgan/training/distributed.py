"""Data-parallel training across processes launched by `torchrun` (gloo on CPU, NCCL on CUDA).

Every rank holds the full model and draws the same global batch of indices and noise from the
same seeded generators, then keeps its own shard of it; after each phase's gradients are taken,
one all-reduce averages them, so every shared layer is synchronised exactly once per phase and
all ranks stay bit-identical in their weights. PyTorch's `DistributedDataParallel` wrapper is not
used because its reducer hooks `.backward()`; each phase here differentiates its own loss w.r.t.
its own parameters with `torch.autograd.grad`, and DDP's hooks never fire for that.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from mtgan.errors import ConfigError, RunError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; `world == 1` means no distribution at all."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, batch: int, parts: int = 1, what: str | None = None) -> slice | Tensor:
        """This rank's part of a global batch (the global batch must divide evenly). A batch
        that is split into `parts` consecutive parts after sharding (one per discriminator of
        a task: GMAN) is sharded part by part, so that each part on each rank is this rank's
        share of that part of the global batch: an index tensor then. `what` names the batch
        in the error (train.batch_size=N, unless another)."""
        parts = parts if self.active else 1
        if batch % (self.world * parts):
            also = f" times the discriminators that split it ({parts})" if parts > 1 else ""
            raise ConfigError(
                f"{what or f'train.batch_size={batch}'} must be divisible by the number of "
                f"processes ({self.world}){also} so that the global batch stays the configured one"
            )
        per = batch // self.world
        if parts == 1:
            return slice(self.rank * per, (self.rank + 1) * per)
        size = batch // parts
        step = size // self.world
        starts = torch.arange(parts) * size + self.rank * step
        return (starts[:, None] + torch.arange(step)).reshape(-1)


SINGLE = Dist()


def shards(dist: Dist, model: Any, batch: int, per_generator: int) -> tuple[Any, Any]:
    """This rank's part of every global real batch and noise batch of `model` (a MultiGAN),
    taken so that each discriminator on each rank sees its share of what it sees in a single
    process (several discriminators split one task's batch: GMAN)."""
    splits = model.num_discriminators if len(set(model.discriminator_tasks)) == 1 else 1
    if dist.active and splits > 1 and model.num_generators > 1:
        raise ConfigError(
            f"--nproc {dist.world}: model.generators={model.num_generators} pooled over "
            f"model.discriminators={model.num_discriminators} on one task cannot be sharded "
            "so that the run equals a single process; train it on one process"
        )
    pooled = f"train.batch_size={batch} over {batch // max(per_generator, 1)} generators"
    what = f"the {per_generator} samples each generator makes ({pooled} of a task)"
    return dist.shard(batch, splits), dist.shard(per_generator, splits, what)


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device: torch.device, timeout_s: float) -> Dist:
    """Join the process group torchrun set up (idempotent); SINGLE outside torchrun."""
    if not launched_by_torchrun():
        return SINGLE  # a process group of one is still made under torchrun (NCCL checks)
    info = Dist(
        rank=int(os.environ["RANK"]),
        world=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return info


def device_for(info: Dist, device: torch.device) -> torch.device:
    """One GPU per local rank on CUDA; the CPU stays the CPU."""
    if device.type == "cuda" and info.active:
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def all_reduce_mean(info: Dist, tensors: list[Tensor | None], like: list[Tensor]) -> list[Tensor]:
    """Average tensors over ranks with one collective (flattened into one buffer).

    `None` entries (parameters a phase did not reach) count as zeros, shaped like `like`.
    """
    filled = [torch.zeros_like(p) if t is None else t for t, p in zip(tensors, like)]
    if not info.active:
        return filled
    flat = torch.cat([t.reshape(-1) for t in filled])
    try:
        dist.all_reduce(flat)
    except RuntimeError as e:  # a peer died or timed out: say so instead of a backend trace
        raise RunError(lost_peer_message(info, e)) from None
    flat /= info.world
    out, start = [], 0
    for t in filled:
        out.append(flat[start : start + t.numel()].view_as(t))
        start += t.numel()
    return out


def all_reduce_mean_of(info: Dist, tensors: list[Tensor]) -> list[Tensor]:
    """The mean over ranks of each tensor (one collective); the tensors themselves without
    data parallelism."""
    return all_reduce_mean(info, list(tensors), list(tensors))


class _SumOverRanks(torch.autograd.Function):
    """An all-reduce whose gradient is the all-reduce of the gradients. Written here because
    torch.distributed.nn's is deprecated (torch 2.13) in favour of a private module's, which
    has no autograd."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce_sum_autograd(info: Dist, tensor: Tensor) -> Tensor:
    """The sum over ranks, differentiable: its gradient is the sum of every rank's gradient
    (train.sync_bn's batch statistics)."""
    try:
        return _SumOverRanks.apply(tensor)
    except RuntimeError as e:
        raise RunError(lost_peer_message(info, e)) from None


def barrier(info: Dist) -> None:
    if info.active:
        try:
            dist.barrier()
        except RuntimeError as e:
            raise RunError(lost_peer_message(info, e)) from None


def broadcast_object(info: Dist, obj: object) -> object:
    """Rank 0's value of `obj` on every rank."""
    if not info.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def lost_peer_message(info: Dist, error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"rank {info.rank} of {info.world} lost contact with the other processes ({first}); "
        "stopping. The last complete checkpoint is intact: continue with --resume RUN_DIR"
    )


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def torchrun_args(nproc: int, args: list[str]) -> list[str]:
    """torchrun's arguments for `mtgan train --nproc N ...`: N processes here, same arguments."""
    return ["--standalone", f"--nproc_per_node={nproc}", "-m", "mtgan", "train", *args]


def launch(nproc: int, args: list[str], run_dir: str | None = None) -> int:
    """Run torchrun in this process and turn a worker's failure into one clear line.

    Run in-process (not as a `torchrun` subprocess) so that the failure comes back as data:
    torchrun stops the surviving ranks as soon as one dies, often before they can say why.
    Returns 0, or the exit status of a rank that printed its own error (a `RunError`).
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # torchrun would set 1 thread per process (and warn); share this machine's cores instead.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        torchrun.run(torchrun.parse_args(torchrun_args(nproc, args)))
    except ChildFailedError as e:
        rank, failure = root_failure(e.failures)
        if failure.exitcode == USER_ERROR_EXIT:
            return USER_ERROR_EXIT  # that rank's message is already on stderr
        if failure.exitcode < 0:
            how = f"was killed by signal {-failure.exitcode}"
        elif failure.exitcode == 1:
            how = "failed (its traceback is above)"
        else:
            how = f"ended with exit code {failure.exitcode}"
        raise RunError(
            f"training process rank {rank} of {nproc} {how}; the others lost contact with "
            "it and were stopped. The last complete checkpoint is intact: continue with "
            f"--resume {run_dir or 'RUN_DIR'}"
        ) from None
    return 0


def root_failure(failures: dict[int, Any]) -> tuple[int, Any]:
    """The (rank, failure) that caused the others: the earliest abrupt death, else the
    earliest rank that explained its own error, else the earliest of the rest.

    Not torchrun's `get_first_failure`: it also lists the survivors it stopped (SIGTERM),
    and without an error file a failure's timestamp is whole seconds, so the rank that died
    and the survivors often tie, and a tie goes to the lowest rank.
    """

    def order(rank: int) -> tuple[int, float, int]:
        code = failures[rank].exitcode
        tier = 1 if code == USER_ERROR_EXIT else 2 if code == -signal.SIGTERM else 0
        return tier, failures[rank].timestamp, rank

    rank = min(failures, key=order)
    return rank, failures[rank]


USER_ERROR_EXIT = 2
"""The exit status of `mtgan` after an error it explained (cli.main)."""

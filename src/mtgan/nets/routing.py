"""Which task each network serves, and how samples travel between networks and tasks.

With one network per task, network k serves task k. With several networks on a single task
(MGAN's generators, GMAN's discriminators), their samples are pooled, and split evenly over the
task's discriminators.
"""

from __future__ import annotations

from torch import Tensor

from mtgan.errors import ConfigError


def route(count: int, num_tasks: int, field: str) -> list[int]:
    """The task each of `count` networks serves."""
    if count == num_tasks:
        return list(range(count))
    if num_tasks == 1:
        return [0] * count
    raise ConfigError(
        f"{field}={count} does not fit {num_tasks} tasks: use one per task (null) or a single "
        "task (data.tasks=single) for several networks on one task"
    )


def to_discriminators(x: Tensor, sources: list[int], targets: list[int]) -> Tensor:
    """Samples (S, B, ...) of networks serving tasks `sources` → (ND, n, ...) for discriminators
    serving tasks `targets`."""
    if sources == targets:
        return x
    if set(sources) | set(targets) == {0}:  # one task: pool, then split evenly
        pooled = x.reshape(1, -1, *x.shape[2:])
        if pooled.shape[1] % len(targets):
            raise ConfigError(
                f"{pooled.shape[1]} samples per step cannot be split evenly over "
                f"{len(targets)} discriminators: make train.batch_size a multiple of it"
            )
        return pooled.reshape(len(targets), -1, *x.shape[2:])
    raise ConfigError(f"cannot route networks of tasks {sources} to discriminators of {targets}")


def share_per_generator(n: int, generator_tasks: list[int]) -> int:
    """Samples each generator must make so that every task gets at least n."""
    busiest = max(generator_tasks.count(t) for t in set(generator_tasks))
    return -(-n // busiest)


def task_samples(samples: Tensor, generator_tasks: list[int], task: int, n: int) -> Tensor:
    """n samples of `task` from generator outputs (NG, m, ...): equal shares of its generators,
    interleaved (g0, g1, …, g0, g1, …) so that any prefix draws on all of them evenly."""
    owners = [g for g, t in enumerate(generator_tasks) if t == task]
    return samples[owners].transpose(0, 1).reshape(-1, *samples.shape[2:])[:n]

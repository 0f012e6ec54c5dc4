"""TaskSet: every task's training samples in one tensor, sampled for all tasks at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor


@dataclass
class TaskSet:
    """K tasks stored back to back; task k is x[offsets[k] : offsets[k] + counts[k]].

    x: (N, *shape) float32; images are scaled to [-1, 1], points are raw.
    offsets, counts: (K,) int64. labels: (N,) int64 original class of each sample (-1 if none).
    names, domains: one entry per task.
    source: (N,) int64 row of each sample in the source data set before tasks were formed
    (provenance: which samples a task or domain saw), or None.
    heldout: the same tasks' rows set aside before training (`data.heldout`), or None. The
    sampling methods never read it; it stays on the CPU when the training rows move (`to`).
    """

    x: Tensor
    offsets: Tensor
    counts: Tensor
    names: list[str]
    kind: Literal["image", "points"]
    labels: Tensor
    domains: list[str]
    source: Tensor | None = None
    classes: int | None = None  # classes of the whole source data set (before limit); None: infer
    heldout: TaskSet | None = None

    def __post_init__(self) -> None:
        k = len(self.names)
        if self.offsets.shape != (k,) or self.counts.shape != (k,) or len(self.domains) != k:
            raise ValueError("TaskSet: offsets, counts, names and domains must all have length K")
        if self.labels.shape != (self.x.shape[0],):
            raise ValueError("TaskSet: labels must have one entry per row of x")
        if k and bool((self.counts <= 0).any()):
            raise ValueError("TaskSet: every task needs at least one sample")
        if self.heldout is not None and self.heldout.names != self.names:
            raise ValueError("TaskSet: the held-out rows must have the same tasks")

    @property
    def num_tasks(self) -> int:
        """K, the number of tasks."""
        return len(self.names)

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample shape, e.g. (1, 28, 28) for MNIST or (2,) for points."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes of the data set when every sample has a label 0..C−1, else 0."""
        if len(self.labels) == 0 or int(self.labels.min()) < 0:
            return 0
        return self.classes if self.classes is not None else int(self.labels.max()) + 1

    @property
    def device(self) -> torch.device:
        return self.x.device

    def describe(self) -> str:
        """What the data is, for error messages: "3×32×32 images with 3 classes in 1 task"."""
        what = (
            f"{self.shape[0]}-d points"
            if self.kind == "points"
            else "×".join(map(str, self.shape)) + " images"
        )
        labels = self.labels.unique()
        count = 0 if len(labels) == 0 or int(labels.min()) < 0 else len(labels)
        classes = "no labels" if count == 0 else "1 class" if count == 1 else f"{count} classes"
        tasks = "1 task" if self.num_tasks == 1 else f"{self.num_tasks} tasks"
        return f"{what} with {classes} in {tasks}"

    def to(self, device: torch.device | str) -> TaskSet:
        """A copy with all tensors on device (names and metadata shared; `heldout` as it is)."""
        return replace(
            self,
            x=self.x.to(device),
            offsets=self.offsets.to(device),
            counts=self.counts.to(device),
            labels=self.labels.to(device),
            source=None if self.source is None else self.source.to(device),
        )

    def _draw(self, counts: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        """Uniform local indices (len(counts), n) below each count."""
        gen_device = generator.device if generator is not None else self.x.device
        u = torch.rand(len(counts), n, generator=generator, device=gen_device).to(self.x.device)
        counts = counts[:, None]
        # rand < 1, but u * count can round up to count in float32; clamp keeps it in range.
        return torch.minimum((u * counts).long(), counts - 1)

    def sample_indices(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """Row indices into x, (K, batch) int64, uniform with replacement within each task."""
        return self.offsets[:, None] + self._draw(self.counts, batch, generator)

    def sample(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        shard: slice | Tensor | None = None,
    ) -> Tensor:
        """A batch for every task at once, (K, batch, *shape): one index draw, one index_select.

        With `shard`, the same global draw is made and only that slice of it is gathered,
        (K, len(shard), *shape): how each process of a distributed run takes its part.
        """
        return self.sample_labelled(batch, generator, shard)[0]

    def sample_labelled(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        shard: slice | Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """`sample` and the class label of every sample, (K, n) int64, from the same draw."""
        idx = self.sample_indices(batch, generator)
        if shard is not None:
            idx = idx[:, shard]
        n, flat = idx.shape[1], idx.reshape(-1)
        x = self.x.index_select(0, flat).reshape(self.num_tasks, n, *self.shape)
        return x, self.labels.index_select(0, flat).reshape(self.num_tasks, n)

    def task(self, k: int) -> Tensor:
        """All samples of task k, (counts[k], *shape) (a view of x)."""
        start, count = int(self.offsets[k]), int(self.counts[k])
        return self.x[start : start + count]

    def task_labels(self, k: int) -> Tensor:
        """Original class of each sample of task k, (counts[k],) int64."""
        start, count = int(self.offsets[k]), int(self.counts[k])
        return self.labels[start : start + count]

    def sample_task(self, k: int, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples of task k drawn uniformly with replacement, (n, *shape)."""
        local = self._draw(self.counts[k : k + 1], n, generator)[0]
        return self.x.index_select(0, self.offsets[k] + local)

    def to_display(self, x: Tensor) -> Tensor:
        """Map stored-scale samples back for viewing: images [-1, 1] -> [0, 1]; points unchanged."""
        return to_display(x, self.kind)


def to_display(x: Tensor, kind: str) -> Tensor:
    """Stored scale → viewing scale: images [-1, 1] → [0, 1]; points unchanged."""
    if kind == "points":
        return x
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)

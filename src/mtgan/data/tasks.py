"""build_tasks: turn a data config into a TaskSet (task groups x domains, seeded and reproducible).

Tasks are ordered group-major: for each label group, for each domain. Images are stored scaled
to [-1, 1] (generators end in tanh); 2D points are stored as drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mtgan.data.domains import DOMAINS, apply_domain
from mtgan.data.mnist import load_mnist5k
from mtgan.data.readers import read_path
from mtgan.data.taskset import TaskSet
from mtgan.data.toy2d import MIXTURES, sample_mixture
from mtgan.errors import ConfigError, DataError

BUNDLED: tuple[str, ...] = ("mnist", *MIXTURES)
# Singular/plural word used to name a label, per bundled source.
_LABEL_WORDS = {
    "mnist": ("digit", "digits"),
    "ring8": ("mode", "modes"),
    "grid25": ("mode", "modes"),
}
Namer = Callable[[list[int]], str]  # labels of a task group -> its name


def build_tasks(cfg: Any, seed: int, device: torch.device | str = "cpu") -> TaskSet:
    """Load the data named by cfg (a DataConfig or any object with its attributes) as a TaskSet.

    seed fixes the 2D point draw, the held-out split, the per-group shuffle behind `per_task`
    and `limit`, and the domain split. With `heldout` > 0, that fraction of every label's rows is
    set aside first (the same source rows for every task and domain they belong to): the
    TaskSet's `heldout`, which training never samples. Then each task (each domain's part) keeps
    `per_task` rows (`per_task_rows`) or at most `limit` (a DataConfig refuses both; here
    `per_task` wins).
    """
    path: Path | None = getattr(cfg, "path", None)
    domains = list(getattr(cfg, "domains", None) or ["identity"])
    split = bool(getattr(cfg, "split_domains", True)) and len(domains) > 1
    limit = getattr(cfg, "limit", None)
    per_task = getattr(cfg, "per_task", None)
    fraction = getattr(cfg, "heldout", 0.0) or 0.0
    _check_domains(domains)
    for field, cap in (("limit", limit), ("per_task", per_task)):
        if cap is not None and (isinstance(cap, bool) or int(cap) < 1):
            raise ConfigError(f"data.{field} must be a positive integer or null, got {cap!r}")
    if isinstance(fraction, bool) or not 0.0 <= float(fraction) < 1.0:
        raise ConfigError(f"data.heldout must be a fraction in [0, 1), got {fraction!r}")

    x, y, group_name_of = _load_source(cfg, seed, path)
    kind = "points" if x.dim() == 2 else "image"
    source = str(path) if path is not None else str(getattr(cfg, "name", None))
    if kind == "image" and any(d in ("rot90", "rot270") for d in domains):
        h, w = x.shape[-2:]
        if h != w:
            raise DataError(f"{source}: rot90/rot270 need square images, got {h}x{w}")
    groups = _task_groups(getattr(cfg, "tasks", "single"), y, group_name_of, source)
    held = held_out_rows(y, len(x), float(fraction), seed)

    shuffle = torch.Generator().manual_seed(seed + 1)
    # per_task's label order: its own stream, so the shuffle is the same with or without it
    pick = torch.Generator().manual_seed(seed + 7)
    train, kept = [], []  # (rows, task name, domain) of every task; its held-out rows
    for group_labels, group_name in groups:
        idx = _group_indices(len(x), y, group_labels)
        if held is not None:
            kept.append(idx[held[idx]])
            idx = idx[~held[idx]]
        idx = idx[torch.randperm(len(idx), generator=shuffle)]
        labels = torch.unique(y[idx]) if y is not None else torch.zeros(1, dtype=torch.long)
        order = labels[torch.randperm(len(labels), generator=pick)]
        parts = _split(idx, len(domains)) if split else [idx] * len(domains)
        for domain, part in zip(domains, parts):
            task_name = group_name if domain == "identity" else f"{group_name}/{domain}"
            if per_task is not None:
                if len(part) < int(per_task):
                    raise DataError(
                        f"{source}: task {task_name!r} has {len(part)} training rows"
                        f"{_after(float(fraction), split)}, fewer than data.per_task={per_task}"
                    )
                own = y[part] if y is not None else torch.zeros(len(part), dtype=torch.long)
                part = part[per_task_rows(own, int(per_task), order)]
            elif limit is not None:
                part = part[:limit]
            if len(part) == 0:
                raise DataError(f"{source}: task {task_name!r} has no samples")
            train.append((part, task_name, domain))

    classes = int(y.max()) + 1 if y is not None and len(y) and int(y.min()) >= 0 else None
    tasks = _assemble(x, y, kind, classes, train)
    if held is not None:
        # every domain of a group is judged against all of the group's held-out rows
        rows = [(kept[i // len(domains)], name, d) for i, (_, name, d) in enumerate(train)]
        for part, name, _ in rows:
            if len(part) == 0:
                raise DataError(
                    f"{source}: data.heldout={fraction} sets no rows of task {name!r} aside "
                    "(each of its labels has a single row); use more data or data.heldout=0"
                )
        tasks.heldout = _assemble(x, y, kind, classes, rows)
    return tasks.to(device)


def held_out_rows(y: Tensor | None, n: int, fraction: float, seed: int) -> Tensor | None:
    """Which of the n source rows are set aside, (n,) bool, or None when fraction is 0.

    Stratified: of each label's rows (all rows when there are no labels) a seeded random
    round(fraction × count), at least one and never all of them (a label with one row keeps it
    for training)."""
    if fraction <= 0:
        return None
    gen = torch.Generator().manual_seed(seed + 5)  # its own stream: the shuffle stays seed + 1
    strata = (
        [torch.arange(n)]
        if y is None
        else [torch.nonzero(y == c, as_tuple=True)[0] for c in torch.unique(y).tolist()]
    )
    mask = torch.zeros(n, dtype=torch.bool)
    for rows in strata:
        count = len(rows)
        take = min(count - 1, max(1, round(fraction * count)))
        mask[rows[torch.randperm(count, generator=gen)[:take]]] = True
    return mask


def per_task_rows(labels: Tensor, n: int, order: Tensor) -> Tensor:
    """Positions (n,) ascending of n rows of a shuffled part whose labels are `labels` (m,),
    balanced over them: each label its first ⌊n / L⌋ rows in the part's order, the n mod L left
    over one each to the labels first in the seeded `order` (all labels of the task, (L,)); a
    label with too few rows gives all it has and the others share its remainder alike. Taking
    the first rows in a fixed order puts a smaller n's rows among a larger n's. Needs n ≤ m."""
    present = set(torch.unique(labels).tolist())
    ranked = [c for c in order.tolist() if c in present]  # the seeded order of who gets extras
    rows = {c: torch.nonzero(labels == c, as_tuple=True)[0] for c in ranked}
    quota, rest, left = {}, sorted(ranked, key=lambda c: len(rows[c])), n
    while rest and len(rows[rest[0]]) <= left // len(rest):  # too few rows: all of them
        quota[rest[0]] = len(rows[rest[0]])
        left -= quota[rest.pop(0)]
    if rest:
        share, extra = divmod(left, len(rest))
        receivers = [c for c in ranked if c in rest][:extra]
        quota.update({c: share + (c in receivers) for c in rest})
    taken = torch.cat([rows[c][: quota[c]] for c in ranked])
    return torch.sort(taken).values


def _after(fraction: float, split: bool) -> str:
    """What came off a task's rows before per_task, for its error message."""
    steps = [f"data.heldout={fraction}"] * (fraction > 0) + ["the domain split"] * split
    return f" after {' and '.join(steps)}" if steps else ""


def _assemble(
    x: Tensor,
    y: Tensor | None,
    kind: str,
    classes: int | None,
    tasks: list[tuple[Tensor, str, str]],
) -> TaskSet:
    """A TaskSet of the source rows (rows, task name, domain) of each task, domains applied."""
    counts = torch.tensor([len(rows) for rows, _, _ in tasks], dtype=torch.int64)
    return TaskSet(
        x=torch.cat([_transform(x[rows], domain, kind) for rows, _, domain in tasks]).contiguous(),
        offsets=torch.cumsum(counts, 0) - counts,
        counts=counts,
        names=[name for _, name, _ in tasks],
        kind=kind,
        labels=torch.cat(
            [y[rows] if y is not None else torch.full((len(rows),), -1) for rows, _, _ in tasks]
        ).long(),
        domains=[domain for _, _, domain in tasks],
        source=torch.cat([rows for rows, _, _ in tasks]).long(),
        classes=classes,
    )


def _check_domains(domains: list[str]) -> None:
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise ConfigError(f"data.domains: unknown {unknown}; expected names from {sorted(DOMAINS)}")
    if len(set(domains)) != len(domains):
        raise ConfigError(f"data.domains lists a domain twice: {domains}")


def _load_source(cfg: Any, seed: int, path: Path | None) -> tuple[Tensor, Tensor | None, Namer]:
    """(x (N, ...) float32: images in [0, 1] or raw points, y (N,) int64 or None, group namer)."""
    if path is not None:
        x, y, class_names = read_path(
            path,
            getattr(cfg, "format", "auto"),
            getattr(cfg, "image_size", None),
            skip_invalid=bool(getattr(cfg, "skip_invalid", False)),
        )
        if class_names is not None:
            return x, y, lambda ks: "+".join(class_names[k] for k in ks)
        return x, y, _word_namer("class", "classes")
    name = getattr(cfg, "name", None)
    if name == "mnist":
        x, y = load_mnist5k()
    elif name in MIXTURES:
        n_points = int(getattr(cfg, "n_points", 100_000))
        if n_points < 1:
            raise ConfigError(f"data.n_points must be positive, got {n_points}")
        x, y = sample_mixture(name, n_points, torch.Generator().manual_seed(seed))
    else:
        raise ConfigError(f"data.name {name!r} is not bundled; expected one of {list(BUNDLED)}")
    return x, y, _word_namer(*_LABEL_WORDS[name])


def _word_namer(singular: str, plural: str) -> Namer:
    """Names like "digit 3" for one label and "digits 0+1" for several."""

    def name(labels: list[int]) -> str:
        if len(labels) == 1:
            return f"{singular} {labels[0]}"
        return f"{plural} {'+'.join(str(k) for k in labels)}"

    return name


def _task_groups(
    spec: Any, y: Tensor | None, name_of: Namer, source: str
) -> list[tuple[list[int] | None, str]]:
    """[(labels in the group, or None for all samples; group name)] from cfg.tasks."""
    if isinstance(spec, str) and spec not in ("single", "classes"):
        raise ConfigError(
            f"data.tasks must be 'single', 'classes' or a list of label lists, got {spec!r}"
        )
    if spec == "single":
        return [(None, "all")]
    if y is None:
        raise DataError(
            f"{source} has no labels, so data.tasks={spec!r} is impossible; use 'single'"
        )
    present = sorted(int(v) for v in torch.unique(y))
    if spec == "classes":
        if len(present) == 1:  # one task: a multi-task preset would share nothing, silently
            raise DataError(
                f"data.tasks=classes found one class in {source} ({name_of(present)}), so "
                "there is one task and nothing to share between tasks; give each class its "
                "own subfolder (or labels), or train one GAN with data.tasks=single"
            )
        return [([k], name_of([k])) for k in present]
    if not _is_label_lists(spec):
        raise ConfigError(
            f"data.tasks must be 'single', 'classes' or a list of label lists, got {spec!r}"
        )
    groups, seen = [], set()
    for group in spec:
        labels = [int(k) for k in group]
        if not labels:
            raise ConfigError(f"data.tasks has an empty label list: {spec!r}")
        missing = [k for k in labels if k not in present]
        if missing:
            raise DataError(
                f"data.tasks: label(s) {missing} not in {source}; labels present: {present}"
            )
        key = tuple(sorted(set(labels)))
        if key in seen:
            raise ConfigError(f"data.tasks lists the label group {list(key)} twice")
        seen.add(key)
        groups.append((list(key), name_of(list(key))))
    return groups


def _is_label_lists(spec: Any) -> bool:
    """True for a non-empty list of lists of ints (bools and strings excluded)."""

    def is_seq(v: Any) -> bool:
        return isinstance(v, Sequence) and not isinstance(v, str)

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    return is_seq(spec) and len(spec) > 0 and all(is_seq(g) and all(map(is_int, g)) for g in spec)


def _group_indices(n: int, y: Tensor | None, labels: list[int] | None) -> Tensor:
    """Indices of the samples whose label is in labels (all n samples when labels is None)."""
    if labels is None or y is None:
        return torch.arange(n)
    return torch.nonzero(torch.isin(y, torch.tensor(labels)), as_tuple=True)[0]


def _split(idx: Tensor, parts: int) -> list[Tensor]:
    """Disjoint equal parts of a shuffled index vector (the remainder is dropped)."""
    size = len(idx) // parts
    return [idx[i * size : (i + 1) * size] for i in range(parts)]


def _transform(x: Tensor, domain: str, kind: str) -> Tensor:
    """Apply the domain and move images from [0, 1] to the stored [-1, 1] scale."""
    out = apply_domain(domain, x, kind)
    return out if kind == "points" else out * 2.0 - 1.0

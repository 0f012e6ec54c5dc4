"""The classifier of a user's own labelled images: the `classifier` features and class accuracy
for image data that is not the 1×28×28 digits.

A small CNN (`mtgan.metrics.classifier`) trained once on the run's real training rows (never
the held-out split), at a working size of 32×32 px with the data's 1 or 3 channels, and cached
by a fingerprint of those rows, their labels and the options. Besides the data's classes it
learns a "none of them" class from corrupted images (noise, shuffled pixels), so that its
features set a generator's noise apart from real images and accuracy counts noise as wrong.
It needs two classes or more: with one class (a folder without class subfolders) or no labels
there is nothing to learn, and the evaluation asks for Inception weights or raw pixels instead.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mtgan.data.taskset import TaskSet
from mtgan.errors import FeatureError
from mtgan.metrics.classifier import (
    HELD_OUT,
    MIN_HELD_OUT,
    ImageClassifier,
    Kind,
    cache_key,
    cached_classifier,
    epochs_for,
    fit_images,
    held_out_count,
    train_classifier,
)

CLASSIFIER_VERSION = 1  # bump whenever the architecture or training changes: it keys the cache
OWN = Kind("classifier", CLASSIFIER_VERSION, "image classifier", "images", reject=True,
           channels_last=True)  # fmt: skip
SIZE = 32  # working size: every image is resized to SIZE×SIZE
MIN_SIDE = 8  # smaller images carry too little to classify
MAX_ROWS = 20_000  # a seeded subset of larger data sets: training stays under a few minutes
MIN_STEPS = 200  # small data sets get more epochs, so that they get enough updates


def train_image_classifier(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    seed: int = 0,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 3e-3,
    verbose: bool = True,
) -> tuple[ImageClassifier, float]:
    """Train an ImageClassifier on images x (N, C, 32, 32) in [0, 1], labels y (N,) in
    0..num_classes−1, with one more class (num_classes: "none of them") learnt from corrupted
    images: `epochs` passes, or more for small data (at least MIN_STEPS updates)."""
    epochs = epochs_for(y, num_classes, epochs, batch_size, MIN_STEPS)

    def build() -> ImageClassifier:
        return ImageClassifier(x.shape[1], SIZE, num_classes + 1)

    return train_classifier(OWN, build, x, y, num_classes, seed=seed, epochs=epochs,
                            batch_size=batch_size, lr=lr, verbose=verbose)  # fmt: skip


_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(train_image_classifier).parameters.items()
    if name not in ("x", "y", "num_classes", "verbose")
}


def image_classifier(
    x: Tensor,
    y: Tensor,
    num_classes: int | None = None,
    cache_dir: str | Path | None = None,
    verbose: bool = True,
    **train_kwargs: Any,
) -> ImageClassifier:
    """The classifier of images x (N, 1 or 3, H ≥ 8, W ≥ 8) in [0, 1] with labels y (N,) in
    0..num_classes−1 (default: max(y) + 1), trained once and cached as classifier-<key> in
    `cache_dir()`; the key hashes the images at the working size, the labels, the options and
    CLASSIFIER_VERSION. Returns the module in eval mode with `held_out_accuracy` set."""
    unknown = sorted(set(train_kwargs) - set(_DEFAULTS))
    if unknown:
        raise FeatureError(
            f"unknown image classifier option(s) {unknown}; choose from {list(_DEFAULTS)}"
        )
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise FeatureError(f"classifier images must be a tensor (N, 1 or 3, H, W), got {got}")
    if min(x.shape[2:]) < MIN_SIDE:
        raise FeatureError(f"classifier images must be ≥ {MIN_SIDE} px, got {tuple(x.shape)}")
    if not isinstance(y, Tensor) or y.shape != (len(x),) or y.is_floating_point():
        raise FeatureError(f"classifier labels must be an integer tensor ({len(x)},)")
    y = y.detach().cpu().long()
    classes = (int(y.max()) + 1 if len(y) else 0) if num_classes is None else num_classes
    if len(y.unique()) < 2 or y.min() < 0 or y.max() >= classes:
        raise FeatureError(f"classifier labels must hold 2 classes or more in 0..{classes - 1}")
    x = fit_images(x.detach().cpu().float(), x.shape[1], SIZE).contiguous()
    options = {**_DEFAULTS, **train_kwargs}  # omitted and explicit defaults: one key
    key = cache_key(OWN, {**options, "classes": classes}, x, y)

    def build() -> ImageClassifier:
        return ImageClassifier(x.shape[1], SIZE, classes + 1)

    def train() -> tuple[ImageClassifier, float]:  # looked up when called: tests count calls
        return train_image_classifier(x, y, classes, verbose=verbose, **options)

    info = {"train_options": options, "num_images": len(y), "classes": classes}
    return cached_classifier(OWN, key, build, train, info, cache_dir, verbose)


def _rows(data: TaskSet) -> Tensor:
    """Indices of the distinct labelled training rows of `data`: a source row in several tasks
    of one domain counts once; held-out rows are not in `data.x` at all."""
    seen: set[tuple[str, int]] = set()
    keep: list[int] = []
    for k in range(data.num_tasks):
        start, count = int(data.offsets[k]), int(data.counts[k])
        if data.source is None:
            keep.extend(range(start, start + count))
            continue
        for i, src in enumerate(data.source[start : start + count].tolist()):
            if (data.domains[k], src) not in seen:
                seen.add((data.domains[k], src))
                keep.append(start + i)
    idx = torch.tensor(keep, dtype=torch.long)
    return idx[data.labels.cpu()[idx] >= 0]


def training_rows(data: TaskSet) -> tuple[Tensor, Tensor]:
    """What the classifier of `data` trains on: its distinct labelled training rows (at most
    MAX_ROWS, a seeded subset) as images (N, C, 32, 32) in [0, 1] on the CPU, and their labels."""
    idx = _rows(data)
    if len(idx) > MAX_ROWS:
        pick = torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))[:MAX_ROWS]
        idx = idx[pick.sort().values]
    channels = data.shape[0]
    # in chunks: large images are shrunk before more than a chunk of them is copied
    x = torch.cat([
        fit_images(data.to_display(data.x[chunk.to(data.device)].cpu().float()), channels, SIZE)
        for chunk in idx.split(1000)
    ])  # fmt: skip
    return x.contiguous(), data.labels.cpu()[idx]


def problem(data: TaskSet) -> str | None:
    """Why no classifier can be trained on `data`'s images (None: one can)."""
    if data.kind != "image" or len(data.shape) != 3:
        return "a classifier needs images"
    channels, height, width = data.shape
    if channels not in (1, 3):
        return f"a classifier needs images with 1 or 3 channels, not {channels}"
    if min(height, width) < MIN_SIDE:
        return f"a classifier needs images of at least {MIN_SIDE}×{MIN_SIDE} px"
    labels = data.labels.cpu()[_rows(data)]
    if len(labels.unique()) < 2:
        return "a classifier needs images of two classes or more (one subfolder per class)"
    held = held_out_count(labels, int(labels.max()) + 1)
    if held < MIN_HELD_OUT:
        return (
            f"a classifier tests on {HELD_OUT:.0%} of each class, here {held} of "
            f"{len(labels)} images; it needs ≥ {MIN_HELD_OUT} (give more images per class)"
        )
    return None


def classifier_for(data: TaskSet, verbose: bool = True) -> ImageClassifier:
    """The classifier of `data`'s training images (trained once, cached); FeatureError saying
    why when it cannot be trained."""
    why = problem(data)
    if why is not None:
        raise FeatureError(why)
    x, y = training_rows(data)
    return image_classifier(x, y, max(data.num_classes, int(y.max()) + 1), verbose=verbose)

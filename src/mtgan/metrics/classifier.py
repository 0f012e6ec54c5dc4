"""A small CNN image classifier, trained once per data set and cached on disk.

Two instances use it: the digit classifier (`mtgan.metrics.digits`, 1×28×28 digits) and the
classifier of a user's own labelled images (`mtgan.metrics.data_classifier`, any 1 or 3
channels, resized to 32×32). Both classify samples (class accuracy) and their penultimate
layer gives FID/KID/PRDC features. Training is seeded and leaves the global RNG alone; the
cache key hashes the data, the options and a version tag, so new data or options retrain.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mtgan.atomic import write_atomic
from mtgan.errors import FeatureError
from mtgan.metrics.cache import cache_dir as _cache_root

HELD_OUT = 0.15  # fraction of each class kept out of training to measure accuracy
MIN_HELD_OUT = 10  # fewer held-out images than this measure nothing
MAX_SHIFT = 2  # training augmentation: random translations of up to ±2 px
_MEMO: dict[str, ImageClassifier] = {}  # cache key → classifier, so one process loads it once


class ImageClassifier(nn.Module):
    """LeNet-sized CNN for (C, S, S) images in [0, 1]: two 5×5 conv + pool stages, a 128-unit
    hidden layer (the features) and `num_classes` logits. S must be a multiple of 4."""

    feature_dim = 128

    def __init__(
        self, channels: int, size: int, num_classes: int, mean: float = 0.5, std: float = 0.25
    ) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:  # 5×5 conv, then halve the size
            return [nn.Conv2d(cin, cout, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]

        self.channels, self.size, self.num_classes = channels, size, num_classes
        self.mean, self.std = mean, std  # constants, not buffers: the state dict is the weights
        self.conv = nn.Sequential(*stage(channels, 16), *stage(16, 32))  # S → S/2 → S/4 px
        flat = 32 * (size // 4) ** 2
        self.fc = nn.Sequential(nn.Dropout(0.25), nn.Linear(flat, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(128, num_classes))
        self.held_out_accuracy = float("nan")  # set by training or read from the cache

    def features(self, x: Tensor) -> Tensor:
        """Images (N, C, S, S) in [0, 1] → penultimate activations (N, 128)."""
        return self.fc(self.conv((x - self.mean) / self.std).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        """Images (N, C, S, S) in [0, 1] → logits (N, num_classes)."""
        return self.head(self.features(x))

    def fit_input(self, x: Tensor, antialias: bool = True) -> Tensor:
        """Images (N, 1 or 3, H, W) in [0, 1] → what the network takes, (N, C, S, S): channels
        averaged to one or grey repeated to three, then a bilinear resize."""
        return fit_images(x, self.channels, self.size, antialias)


def fit_images(x: Tensor, channels: int, size: int, antialias: bool = True) -> Tensor:
    """(N, 1 or 3, H, W) → (N, channels, size, size); see `ImageClassifier.fit_input`."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise FeatureError(f"a classifier needs images (N, 1 or 3, H, W), got {tuple(x.shape)}")
    if x.shape[1] != channels:
        x = x.mean(dim=1, keepdim=True) if channels == 1 else x.expand(-1, channels, -1, -1)
    if tuple(x.shape[2:]) != (size, size):
        # antialias only acts when shrinking: a large image is averaged, not aliased
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=antialias)  # fmt: skip
    return x


def held_out_count(y: Tensor, num_classes: int) -> int:
    """How many of the labelled rows y (N,) `split` holds out to test on."""
    counts = torch.bincount(y, minlength=num_classes)
    return int((counts * HELD_OUT).round().long().sum())


def epochs_for(y: Tensor, num_classes: int, epochs: int, batch_size: int, min_steps: int) -> int:
    """`epochs`, or more where the labelled rows y (N,) give fewer than `min_steps` updates
    (small data sets need more passes to learn anything)."""
    rows = len(y) - held_out_count(y, num_classes)
    return max(epochs, math.ceil(min_steps / max(1, math.ceil(rows / batch_size))))


def split(y: Tensor, gen: torch.Generator, num_classes: int) -> tuple[Tensor, Tensor]:
    """Seeded stratified split: indices (train, held out), HELD_OUT of each class held out."""
    perm = torch.randperm(len(y), generator=gen)
    order = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, shuffled within
    counts = torch.bincount(y, minlength=num_classes)
    rank = torch.arange(len(y)) - (torch.cumsum(counts, 0) - counts)[y[order]]
    held = rank < (counts[y[order]] * HELD_OUT).round().long()
    return order[~held], order[held]


def shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image (N, C, H, W) by its own random offset in [-s, s]² px, zero filled."""
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n, 1, 1, 1), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n, 1, 1, 1), generator=gen)
    rows = torch.arange(h).view(1, 1, h, 1) + dy
    cols = torch.arange(w).view(1, 1, 1, w) + dx
    return padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(c).view(1, c, 1, 1), rows, cols]


@dataclass(frozen=True)
class Kind:
    """One kind of cached classifier: its cache files' prefix, its version (bump it whenever
    the architecture or training changes: it keys the cache), and how messages name it."""

    prefix: str  # digits → digits-<key>.safetensors
    version: int
    name: str  # "digit classifier"
    noun: str  # what its images are called: "digits"
    # Learn one more class, "none of them", from corrupted real images (`corrupt`): without it
    # a classifier trained on a few hundred images maps noise among the real images' features,
    # and FID, precision and accuracy cannot tell a generator that makes noise from a good one.
    reject: bool = False
    # Train in channels-last memory (faster convolutions on CPUs); the digit classifier keeps
    # the layout it was always trained in, so its cached weights stay what its key names.
    channels_last: bool = False

    @property
    def tag(self) -> str:
        return f"mtgan-{self.prefix}-v{self.version}"


def corrupt(x: Tensor, gen: torch.Generator) -> Tensor:
    """Images (N, C, H, W) in [0, 1] made into what no class looks like, a third each: uniform
    noise, the image's own pixels shuffled (its colours, no shape), heavy Gaussian noise on it."""
    n = len(x)
    kind = torch.randint(0, 3, (n, 1, 1, 1), generator=gen)
    noise = torch.rand(x.shape, generator=gen)
    flat = x.flatten(2)
    order = torch.argsort(torch.rand(n, flat.shape[2], generator=gen), dim=1)
    shuffled = torch.gather(flat, 2, order[:, None].expand_as(flat)).view_as(x)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    return torch.where(kind == 0, noise, torch.where(kind == 1, shuffled, noisy))


def train_classifier(
    kind: Kind,
    build: Callable[[], ImageClassifier],
    x: Tensor,
    y: Tensor,
    num_classes: int,
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    verbose: bool,
) -> tuple[ImageClassifier, float]:
    """Train `build()` on images x (N, C, S, S) in [0, 1] with labels y (N,) in 0..classes-1.

    Holds out 15 % of each class (seeded), trains on the rest with Adam (one-cycle learning
    rate) and random ±2 px shifts, and returns (model in eval mode, held-out accuracy). With
    `kind.reject`, each batch also holds half as many corrupted images (`corrupt`) of the class
    `num_classes` ("none"), which `build()` must have a logit for. The same seed and thread
    count give the same weights; the global RNG is left untouched.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise FeatureError(
            f"need epochs ≥ 1, batch_size ≥ 1, lr > 0 (got {epochs}, {batch_size}, {lr})"
        )
    gen = torch.Generator().manual_seed(seed)
    train_idx, test_idx = split(y, gen, num_classes)
    if len(test_idx) < MIN_HELD_OUT:
        raise FeatureError(
            f"{len(y)} {kind.noun} are too few to train and test a classifier: it tests on "
            f"{HELD_OUT:.0%} of each class ({len(test_idx)} here) and needs ≥ {MIN_HELD_OUT}"
        )
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # initial weights and dropout
        model = build()
        layout = torch.channels_last if kind.channels_last else torch.contiguous_format
        model.to(memory_format=layout)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * math.ceil(len(train_idx) / batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        model.train()
        for _ in range(epochs):
            for idx in train_idx[torch.randperm(len(train_idx), generator=gen)].split(batch_size):
                xb, yb = shift(x[idx], MAX_SHIFT, gen), y[idx]
                if kind.reject:
                    fake = corrupt(xb[: (len(xb) + 1) // 2], gen)
                    xb, yb = (
                        torch.cat([xb, fake]),
                        torch.cat([yb, yb.new_full((len(fake),), num_classes)]),
                    )
                loss = F.cross_entropy(model(xb.contiguous(memory_format=layout)), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    model.eval().to(memory_format=torch.contiguous_format)  # cached and copied as usual
    with torch.no_grad():
        pred = torch.cat([model(xb).argmax(1) for xb in x[test_idx].split(500)])
    acc = model.held_out_accuracy = (pred == y[test_idx]).float().mean().item()
    if verbose:
        secs = time.perf_counter() - start
        print(
            f"{kind.name}: held-out accuracy {acc:.4f} on {len(test_idx)} {kind.noun} "
            f"(trained on {len(train_idx)} in {secs:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return model, acc


def cache_key(kind: Kind, options: dict[str, Any], *tensors: Tensor) -> str:
    """A hex digest of the kind and its version, the training options and the data."""
    h = hashlib.sha256(kind.tag.encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    for t in tensors:
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _load_cached(
    weights: Path, meta: Path, key: str, version: int, build: Callable[[], ImageClassifier]
) -> ImageClassifier | None:
    if not (weights.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
        if info.get("key") != key or info.get("version") != version:
            return None
        model = build()
        model.load_state_dict(load_file(str(weights)))
        model.held_out_accuracy = float(info["held_out_accuracy"])
    except Exception as e:  # a corrupt or foreign cache entry is rebuilt, not fatal
        warnings.warn(
            f"ignoring unreadable cached classifier {weights} ({e}); retraining", stacklevel=4
        )
        return None
    return model.eval()


def cached_classifier(
    kind: Kind,
    key: str,
    build: Callable[[], ImageClassifier],
    train: Callable[[], tuple[ImageClassifier, float]],
    info: dict[str, Any],
    cache_dir: str | Path | None = None,
    verbose: bool = True,
) -> ImageClassifier:
    """The classifier cached as `<kind.prefix>-<key[:16]>` (.safetensors weights, .json with
    the held-out accuracy), else `train()`ed once and cached; memoised per process by `key`.
    `info` adds to the JSON (options, data size)."""
    if key in _MEMO:
        return _MEMO[key]
    root = _cache_root(cache_dir)
    stem = f"{kind.prefix}-{key[:16]}"
    weights, meta = root / f"{stem}.safetensors", root / f"{stem}.json"
    model = _load_cached(weights, meta, key, kind.version, build)
    if model is None:
        if verbose:
            print(f"{kind.name}: training once, cached in {root}", file=sys.stderr, flush=True)
        model, acc = train()
        record = {"key": key, "version": kind.version, "held_out_accuracy": acc, **info}
        try:
            root.mkdir(parents=True, exist_ok=True)
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            write_atomic(weights, lambda p: save_file(state, str(p)))
            # The JSON goes last: a cache entry counts only once both files are there.
            write_atomic(meta, lambda p: p.write_text(json.dumps(record, indent=1)))
        except OSError as e:
            warnings.warn(
                f"cannot cache the {kind.name} in {root} ({e}); set MTGAN_CACHE to a "
                "writable directory",
                stacklevel=3,
            )
    _MEMO[key] = model
    return model

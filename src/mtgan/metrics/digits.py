"""The digit classifier: a LeNet-sized CNN trained once on the bundled digits (or given data),
cached on disk by a hash of its data and options. It classifies samples (class accuracy) and its
penultimate layer gives the `digits` features for FID/KID/PRDC."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mtgan.atomic import write_atomic as _write_atomic
from mtgan.errors import FeatureError
from mtgan.metrics.cache import cache_dir as _cache_root

CLASSIFIER_VERSION = 1  # bump whenever the architecture or training changes: it keys the cache
HELD_OUT = 0.15  # fraction of each class kept out of training to measure accuracy
MAX_SHIFT = 2  # training augmentation: random translations of up to ±2 px
_MNIST_MEAN, _MNIST_STD = 0.1307, 0.3081
_MEMO: dict[str, DigitClassifier] = {}  # cache key → classifier, so one process loads it once


class DigitClassifier(nn.Module):
    """LeNet-sized CNN for 28×28 digits in [0, 1]: two 5×5 conv + pool stages, a 128-unit hidden
    layer (the features) and 10 logits."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:  # 5×5 conv, then halve the size
            return [nn.Conv2d(cin, cout, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]

        self.conv = nn.Sequential(*stage(1, 16), *stage(16, 32))  # 28 → 14 → 7 px
        self.fc = nn.Sequential(nn.Dropout(0.25), nn.Linear(32 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(128, 10))
        self.held_out_accuracy = float("nan")  # set by training or read from the cache

    def features(self, x: Tensor) -> Tensor:
        """Images (N, 1, 28, 28) in [0, 1] → penultimate activations (N, 128)."""
        return self.fc(self.conv((x - _MNIST_MEAN) / _MNIST_STD).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        """Images (N, 1, 28, 28) in [0, 1] → logits (N, 10)."""
        return self.head(self.features(x))


def _check_digits(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise FeatureError(f"digit images must be a tensor (N, 1, 28, 28) in [0, 1], got {shape}")
    if not isinstance(y, Tensor) or y.shape != (len(x),) or y.is_floating_point():
        raise FeatureError(f"digit labels must be an integer tensor ({len(x)},) of digits 0..9")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise FeatureError("digit labels must be digits 0..9")
    return x.detach().cpu().float().contiguous(), y.detach().cpu().long()


def _split(y: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Seeded stratified split: indices (train, held out), HELD_OUT of each class held out."""
    perm = torch.randperm(len(y), generator=gen)
    order = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, shuffled within
    counts = torch.bincount(y, minlength=10)
    rank = torch.arange(len(y)) - (torch.cumsum(counts, 0) - counts)[y[order]]
    held = rank < (counts[y[order]] * HELD_OUT).round().long()
    return order[~held], order[held]


def _shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image (N, 1, H, W) by its own random offset in [-s, s]² px, zero filled."""
    n, _, h, w = x.shape
    padded = F.pad(x[:, 0], (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n, 1, 1), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n, 1, 1), generator=gen)
    rows = torch.arange(h).view(1, h, 1) + dy
    cols = torch.arange(w).view(1, 1, w) + dx
    return padded[torch.arange(n).view(n, 1, 1), rows, cols].unsqueeze(1)


def train_digit_classifier(
    x: Tensor,
    y: Tensor,
    seed: int = 0,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 3e-3,
    verbose: bool = True,
) -> tuple[DigitClassifier, float]:
    """Train a DigitClassifier on images x (N, 1, 28, 28) in [0, 1] with labels y (N,).

    Holds out 15 % of each class (seeded), trains on the rest with Adam (one-cycle learning
    rate) and random ±2 px shifts, and returns (model in eval mode, held-out accuracy). The same
    seed and thread count give the same weights; the global RNG is left untouched.
    """
    x, y = _check_digits(x, y)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise FeatureError(
            f"need epochs ≥ 1, batch_size ≥ 1, lr > 0 (got {epochs}, {batch_size}, {lr})"
        )
    gen = torch.Generator().manual_seed(seed)
    train_idx, test_idx = _split(y, gen)
    if len(test_idx) < 10:
        raise FeatureError(
            f"{len(y)} digits are too few to train and test a classifier; give ≥ 100"
        )
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # initial weights and dropout
        model = DigitClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * math.ceil(len(train_idx) / batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        model.train()
        for _ in range(epochs):
            for idx in train_idx[torch.randperm(len(train_idx), generator=gen)].split(batch_size):
                loss = F.cross_entropy(model(_shift(x[idx], MAX_SHIFT, gen)), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xb).argmax(1) for xb in x[test_idx].split(500)])
    acc = model.held_out_accuracy = (pred == y[test_idx]).float().mean().item()
    if verbose:
        secs = time.perf_counter() - start
        print(
            f"digit classifier: held-out accuracy {acc:.4f} on {len(test_idx)} digits "
            f"(trained on {len(train_idx)} in {secs:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return model, acc


_TRAIN_SIGNATURE = inspect.signature(train_digit_classifier)


def _train_options(train_kwargs: dict[str, Any]) -> dict[str, Any]:
    """All training options with defaults filled in, so omitted and explicit defaults match."""
    try:
        bound = _TRAIN_SIGNATURE.bind(None, None, **train_kwargs)
    except TypeError:
        names = [p for p in _TRAIN_SIGNATURE.parameters if p not in ("x", "y", "verbose")]
        raise FeatureError(
            f"unknown digit classifier option(s) {sorted(train_kwargs)}; choose from {names}"
        ) from None
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k not in ("x", "y", "verbose")}


def _cache_key(x: Tensor, y: Tensor, options: dict[str, Any]) -> str:
    h = hashlib.sha256(f"mtgan-digits-v{CLASSIFIER_VERSION}".encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    for t in (x, y):
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _load_cached(weights: Path, meta: Path, key: str) -> DigitClassifier | None:
    if not (weights.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
        if info.get("key") != key or info.get("version") != CLASSIFIER_VERSION:
            return None
        model = DigitClassifier()
        model.load_state_dict(load_file(str(weights)))
        model.held_out_accuracy = float(info["held_out_accuracy"])
    except Exception as e:  # a corrupt or foreign cache entry is rebuilt, not fatal
        warnings.warn(
            f"ignoring unreadable cached classifier {weights} ({e}); retraining", stacklevel=3
        )
        return None
    return model.eval()


def digit_classifier(
    cache_dir: str | Path | None = None,
    data: tuple[Tensor, Tensor] | None = None,
    verbose: bool = True,
    **train_kwargs: Any,
) -> DigitClassifier:
    """The digit classifier for `data` (default: the bundled 5,000 digits), trained once.

    Cached in `cache_dir()` as digits-<key>.safetensors plus a JSON with the held-out accuracy;
    the key hashes the data, the training options and CLASSIFIER_VERSION, so new data or options
    retrain. Returns the module in eval mode with `held_out_accuracy` set; repeated calls in one
    process return the same object.
    """
    if data is None:
        from mtgan.data.mnist import load_mnist5k

        data = load_mnist5k()
    x, y = _check_digits(*data)
    options = _train_options(train_kwargs)
    key = _cache_key(x, y, options)
    if key in _MEMO:
        return _MEMO[key]
    root = _cache_root(cache_dir)
    weights, meta = root / f"digits-{key[:16]}.safetensors", root / f"digits-{key[:16]}.json"
    model = _load_cached(weights, meta, key)
    if model is None:
        if verbose:
            print(f"digit classifier: training once, cached in {root}", file=sys.stderr, flush=True)
        model, acc = train_digit_classifier(x, y, verbose=verbose, **options)
        info = {"key": key, "version": CLASSIFIER_VERSION, "held_out_accuracy": acc}
        info.update(train_options=options, num_digits=len(y))
        try:
            root.mkdir(parents=True, exist_ok=True)
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            _write_atomic(weights, lambda p: save_file(state, str(p)))
            # The JSON goes last: a cache entry counts only once both files are there.
            _write_atomic(meta, lambda p: p.write_text(json.dumps(info, indent=1)))
        except OSError as e:
            warnings.warn(
                f"cannot cache the digit classifier in {root} ({e}); set MTGAN_CACHE to a "
                "writable directory",
                stacklevel=2,
            )
    _MEMO[key] = model
    return model

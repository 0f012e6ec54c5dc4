"""The digit classifier: a LeNet-sized CNN trained once on the bundled digits (or given data),
cached on disk by a hash of its data and options. It classifies samples (class accuracy) and its
penultimate layer gives the `digits` features for FID/KID/PRDC. It is the 1×28×28, 10-class
instance of `mtgan.metrics.classifier`, which trains and caches it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch import Tensor

from mtgan.errors import FeatureError
from mtgan.metrics.classifier import (
    _MEMO,  # noqa: F401  (shared memo: clearing it here clears every classifier)
    HELD_OUT,  # noqa: F401
    MAX_SHIFT,  # noqa: F401
    ImageClassifier,
    Kind,
    cache_key,
    cached_classifier,
    train_classifier,
)

CLASSIFIER_VERSION = 1  # bump whenever the architecture or training changes: it keys the cache
DIGITS = Kind("digits", CLASSIFIER_VERSION, "digit classifier", "digits")
_MNIST_MEAN, _MNIST_STD = 0.1307, 0.3081


class DigitClassifier(ImageClassifier):
    """LeNet-sized CNN for 28×28 digits in [0, 1]: two 5×5 conv + pool stages, a 128-unit hidden
    layer (the features) and 10 logits."""

    def __init__(self) -> None:
        super().__init__(1, 28, 10, mean=_MNIST_MEAN, std=_MNIST_STD)


def _check_digits(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise FeatureError(f"digit images must be a tensor (N, 1, 28, 28) in [0, 1], got {shape}")
    if not isinstance(y, Tensor) or y.shape != (len(x),) or y.is_floating_point():
        raise FeatureError(f"digit labels must be an integer tensor ({len(x)},) of digits 0..9")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise FeatureError("digit labels must be digits 0..9")
    return x.detach().cpu().float().contiguous(), y.detach().cpu().long()


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
    model, acc = train_classifier(DIGITS, DigitClassifier, x, y, 10, seed=seed, epochs=epochs,
                                  batch_size=batch_size, lr=lr, verbose=verbose)  # fmt: skip
    assert isinstance(model, DigitClassifier)
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
    key = cache_key(DIGITS, options, x, y)

    def train() -> tuple[DigitClassifier, float]:  # looked up when called: tests count calls
        return train_digit_classifier(x, y, verbose=verbose, **options)

    info = {"train_options": options, "num_digits": len(y)}
    model = cached_classifier(DIGITS, key, DigitClassifier, train, info, cache_dir, verbose)
    assert isinstance(model, DigitClassifier)
    return model

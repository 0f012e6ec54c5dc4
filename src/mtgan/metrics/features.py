"""Feature extractors for FID/KID/PRDC.

An extractor maps samples to feature vectors (N, D) in batches, without gradients, and returns
float32 on the CPU. Its `name` identifies the features (including the weights behind them), so
cached statistics of real data are keyed by it. Extractors: "digits" (penultimate layer of a
LeNet-sized classifier trained once on the bundled digits and cached on disk), "classifier"
(the same kind of network trained once on a run's own labelled images), "raw" (flattened
input), "inception" (FID Inception-v3 from a local file, in `mtgan.metrics.inception`) and
`ModuleFeatures` for any torch module; `mtgan.metrics.extractors` finds them by name.
"""

from __future__ import annotations

import copy
import hashlib
import re
import warnings

import torch
from torch import Tensor, nn

from mtgan.errors import FeatureError
from mtgan.metrics.cache import cache_dir
from mtgan.metrics.classifier import ImageClassifier
from mtgan.metrics.digits import DigitClassifier, digit_classifier

__all__ = [
    "ClassifierFeatures",
    "DigitClassifier",
    "DigitFeatures",
    "FeatureError",
    "FeatureExtractor",
    "ModuleFeatures",
    "RawFeatures",
    "cache_dir",
    "digit_classifier",
]


def _weights_digest(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class FeatureExtractor:
    """Base: `extractor(x)` → features (N, D) float32 on the CPU, computed in batches on `device`
    under no_grad. Subclasses set `name` and implement `_extract(batch) -> (B, ...)`."""

    name: str = "features"

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 500) -> None:
        if batch_size < 1:
            raise FeatureError(f"batch_size must be ≥ 1, got {batch_size}")
        self.device, self.batch_size = torch.device(device), batch_size

    def _extract(self, batch: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim < 2 or len(x) == 0:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise FeatureError(f"{self.name}: expected a non-empty batch (N, ...), got {got}")
        parts = []
        with torch.no_grad():
            for batch in x.detach().split(self.batch_size):
                out = self._extract(batch.to(self.device, torch.float32))
                if out.shape[0] != len(batch):
                    raise FeatureError(
                        f"{self.name}: {len(batch)} inputs gave {out.shape[0]} outputs"
                    )
                parts.append(out.reshape(len(batch), -1).float().cpu())
        return torch.cat(parts)


class RawFeatures(FeatureExtractor):
    """The input flattened: (N, ...) → (N, prod(...)); for 2D points, the coordinates."""

    name = "raw"

    def _extract(self, batch: Tensor) -> Tensor:
        return batch.reshape(len(batch), -1)


class ClassifierFeatures(FeatureExtractor):
    """Penultimate activations (N, 128) of an image classifier (`mtgan.metrics.classifier`):
    the `classifier` features, from the classifier of the run's own labelled images.

    Takes images (N, 1 or 3, H, W) in [0, 1], brought to the classifier's channels and size
    (bilinear resize) as in its training. `name` carries a digest of the weights."""

    prefix = "classifier"
    antialias = True  # shrinking averages, as the classifier's training images were

    def __init__(
        self,
        classifier: ImageClassifier | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 500,
    ) -> None:
        super().__init__(device, batch_size)
        if classifier is None:
            raise FeatureError(
                "classifier features need the classifier of your labelled images: "
                "mtgan.metrics.image_classifier(x, y), or eval.features=classifier in a run"
            )
        # Channels-last convolutions and pooling are faster on the CPU; a copy, so the
        # shared (memoised) classifier keeps its layout.
        self.classifier = copy.deepcopy(classifier).to(self.device).eval()
        self.classifier.to(memory_format=torch.channels_last)
        self.name = self.name_for(classifier)

    @classmethod
    def name_for(cls, classifier: ImageClassifier) -> str:
        """The extractor's name for these classifier weights (keys the real-feature cache)."""
        return f"{cls.prefix}-{_weights_digest(classifier)[:16]}"

    def _check(self, batch: Tensor) -> Tensor:
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise FeatureError(
                f"{self.prefix} features need images (N, 1 or 3, H, W), got "
                f"{tuple(batch.shape)}; use features=raw for other data"
            )
        return batch

    def _extract(self, batch: Tensor) -> Tensor:
        batch = self.classifier.fit_input(self._check(batch), antialias=self.antialias)
        return self.classifier.features(batch.contiguous(memory_format=torch.channels_last))


class DigitFeatures(ClassifierFeatures):
    """Penultimate activations (N, 128) of the digit classifier (default: `digit_classifier()`).

    Takes images (N, 1 or 3, H, W) in [0, 1]: 3 channels are averaged to one, and sizes other
    than 28×28 are resized bilinearly (with a warning; the classifier only saw 28×28 digits).
    """

    prefix = "digits"
    antialias = False  # as the digit features always resized

    def __init__(
        self,
        classifier: DigitClassifier | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 500,
    ) -> None:
        super().__init__(digit_classifier() if classifier is None else classifier, device,
                         batch_size)  # fmt: skip
        self._warned = False

    def _check(self, batch: Tensor) -> Tensor:
        batch = super()._check(batch)
        if tuple(batch.shape[2:]) != (28, 28) and not self._warned:
            warnings.warn(
                f"digit features: resizing {tuple(batch.shape[2:])} images to 28×28 "
                "(bilinear); the classifier was trained on 28×28 digits",
                stacklevel=4,
            )
            self._warned = True
        return batch


class ModuleFeatures(FeatureExtractor):
    """Features from any torch module: `module(batch)` flattened to (N, D). The module is put in
    eval mode (and moved to `device`); `name` keys the cache of real-data features."""

    def __init__(
        self,
        module: nn.Module,
        name: str,
        device: str | torch.device = "cpu",
        batch_size: int = 500,
    ) -> None:
        super().__init__(device, batch_size)
        if not isinstance(module, nn.Module):
            raise FeatureError(
                f"ModuleFeatures needs a torch.nn.Module, got {type(module).__name__}"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
            raise FeatureError(
                f"feature name {name!r} must be letters, digits, '.', '_' or '-' (it names "
                "cache files); include a version so changed weights get a new name"
            )
        self.module, self.name = module.to(self.device).eval(), name

    def _extract(self, batch: Tensor) -> Tensor:
        return self.module(batch)

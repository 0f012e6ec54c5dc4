"""Inception-v3 pool3 features (2048-d) for FID that compares with published numbers.

The weights are read only from a local file; mtgan never downloads anything. Accepted files:

- `inception-2015-12-05.pt`, the TorchScript FID Inception used by StyleGAN2-ADA's metrics and
  clean-fid, loaded with `torch.jit.load` (TorchScript's own loader, which rebuilds only
  TorchScript code and tensors) and called as `model(img, return_features=True)`;
- `weights-inception-2015-12-05-6726825d.pth`, torch-fidelity's state dict, only when the
  `torch_fidelity` package is importable; it is checked with `torch.load(weights_only=True)`
  before torch-fidelity reads it.

Preprocessing (as StyleGAN2-ADA does): images (N, 1 or 3, H, W) in [0, 1] → 3 channels →
×255 rounded to 8-bit levels, as if saved to PNG → for TorchScript, bilinear resize to 299×299
(align_corners=False, which is the resize the TorchScript model would otherwise do itself) and
the model gets floats in 0..255; torch-fidelity gets uint8 at the original size and resizes
TensorFlow-style itself.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from mtgan.metrics.features import FeatureError, FeatureExtractor

ENV = "MTGAN_INCEPTION_WEIGHTS"
TORCHSCRIPT_FILE = "inception-2015-12-05.pt"
FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
TORCHSCRIPT_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + TORCHSCRIPT_FILE
)
SIZE = 299
DIM = 2048

HOW_TO = (
    f"download {TORCHSCRIPT_FILE} (the TorchScript FID Inception of StyleGAN2-ADA and "
    f"clean-fid, {TORCHSCRIPT_URL}) on a machine with internet access, then pass its path as "
    f"eval.inception_weights=PATH in the config, InceptionFeatures(weights_path=PATH) in Python, "
    f"or set the environment variable {ENV}=PATH. torch-fidelity's {FIDELITY_FILE} is also "
    "accepted when the torch_fidelity package is installed. Or use features=digits or raw"
)


def weights_file(weights_path: str | Path | None = None) -> Path:
    """The Inception weights file: `weights_path`, else ${ENV}; FeatureError if neither names
    an existing file."""
    if weights_path is None or str(weights_path) == "":
        weights_path = os.environ.get(ENV) or None
    if weights_path is None:
        raise FeatureError(
            "Inception features need the FID Inception-v3 weights as a local file and mtgan "
            f"never downloads them: {HOW_TO}"
        )
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FeatureError(f"Inception weights file {path} does not exist; {HOW_TO}")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_fidelity(path: Path, device: torch.device, torchscript_error: str) -> torch.nn.Module:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise FeatureError(
            f"cannot load Inception weights from {path}: it is not the TorchScript FID "
            f"Inception {TORCHSCRIPT_FILE} ({torchscript_error}); a torch-fidelity "
            f"{FIDELITY_FILE} needs the torch_fidelity package, which is not importable"
        ) from None
    try:
        # Refuses pickled code before torch-fidelity calls torch.load on the same file.
        torch.load(path, map_location="cpu", weights_only=True)
        model = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
        )
    except Exception as e:  # corrupt file, pickled objects, or a state dict of another net
        raise FeatureError(
            f"cannot load Inception weights from {path} as the TorchScript {TORCHSCRIPT_FILE} "
            f"({torchscript_error}) nor as torch-fidelity's {FIDELITY_FILE} ({e})"
        ) from None
    return model.to(device).eval()


class InceptionFeatures(FeatureExtractor):
    """Inception-v3 pool3 features (N, 2048) of images (N, 1 or 3, H, W) in [0, 1], from a local
    weights file (`weights_path` or $MTGAN_INCEPTION_WEIGHTS; see the module docstring)."""

    def __init__(
        self,
        weights_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 100,
    ) -> None:
        super().__init__(device, batch_size)
        self.path = weights_file(weights_path)
        try:
            with warnings.catch_warnings():
                # TorchScript is deprecated, but it is the format the reference weights ship in.
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(str(self.path), map_location=self.device).eval()
            self.backend = "torchscript"
        except Exception as e:  # not a TorchScript archive: maybe torch-fidelity's state dict
            self.model = _load_fidelity(self.path, self.device, str(e).splitlines()[0])
            self.backend = "torch-fidelity"
        self.name = f"inception-{_sha256(self.path)[:16]}"

    def resize_mode(self, shape: tuple[int, ...]) -> str:
        """How images of `shape` (C, H, W) are resized for the model (an evaluation's protocol
        records it): "none" at 299×299, else the resize `preprocess` or torch-fidelity does."""
        if tuple(shape[-2:]) == (SIZE, SIZE):
            return "none"
        if self.backend == "torch-fidelity":
            return f"torch-fidelity (TensorFlow-style bilinear to {SIZE}x{SIZE})"
        return f"bilinear to {SIZE}x{SIZE} (align_corners=False)"

    def preprocess(self, batch: Tensor) -> Tensor:
        """Images (B, 1 or 3, H, W) in [0, 1] → what the model takes: float (B, 3, 299, 299) in
        0..255 for TorchScript, uint8 (B, 3, H, W) for torch-fidelity."""
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise FeatureError(
                f"Inception features need images (N, 1 or 3, H, W) in [0, 1], got "
                f"{tuple(batch.shape)}; use features=raw for other data"
            )
        batch = batch.expand(-1, 3, -1, -1)
        levels = (batch.float() * 255).round().clamp(0, 255)
        if self.backend == "torch-fidelity":
            return levels.to(torch.uint8)
        if tuple(levels.shape[2:]) != (SIZE, SIZE):
            levels = F.interpolate(levels, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
            levels = levels.clamp(0, 255)  # float rounding can overshoot by ~1e-5
        return levels

    def _extract(self, batch: Tensor) -> Tensor:
        x = self.preprocess(batch)
        if self.backend == "torch-fidelity":
            out = self.model(x)[0]
        else:
            out = self.model(x, return_features=True)
        out = out.reshape(len(x), -1)
        if out.shape[1] != DIM:
            raise FeatureError(
                f"{self.path} gives {out.shape[1]}-d features, not Inception's {DIM}; "
                f"is it the FID Inception {TORCHSCRIPT_FILE}?"
            )
        return out

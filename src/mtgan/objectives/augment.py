"""Differentiable augmentation, `loss.augment` (DiffAugment, Zhao et al. 2020): random
transforms applied to every image a discriminator sees, real and fake, in every phase that
calls it, so that D cannot memorise a small training set and G still learns the un-augmented
distribution (the transforms are differentiable: G's gradient flows through them).

Each transform is a pure function of the images and its U[0, 1) draws, one row of draws per
sample: the caller (`training.context.StepContext.augmented`) draws them from the step's noise
generator, which keeps resumed, accumulated and multi-process runs equal to a plain one. A new
transform is one entry in `TRANSFORMS`; their order there is the order they are applied in.

As in the reference implementation, on images in [-1, 1]: `color` shifts brightness by
U(−0.5, 0.5), scales saturation by U(0, 2) and contrast by U(0.5, 1.5) (both around the
mean, so the scale of the range does not matter to them); `translation` shifts by up to 1/8 of
the image size, filling with zeros; `cutout` zeroes a square of half the image size centred
anywhere in the image (clipped at its border: on average ~19 % of the pixels, at most 25 %).
Zero is the middle of the range, as in the reference.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from mtgan.errors import ConfigError

TRANSLATION_RATIO = 0.125  # the largest shift, as a fraction of the image size
CUTOUT_RATIO = 0.5  # the side of the cut-out square, as a fraction of the image size


@dataclass(frozen=True)
class Transform:
    """One augmentation: `apply(x, u)` maps images x (N, C, H, W) with their draws u (N, draws),
    U[0, 1) each, to images of the same shape, differentiably in x."""

    draws: int
    apply: Callable[[Tensor, Tensor], Tensor]


def _integers(u: Tensor, count: int) -> Tensor:
    """U[0, 1) draws (N,) → integers uniform in 0 … count − 1 (N,)."""
    return (u * count).long().clamp_(max=count - 1)


def _scalars(u: Tensor, x: Tensor) -> Tensor:
    """Per-sample numbers (N,) shaped to broadcast over images x (N, C, H, W)."""
    return u.to(x.dtype).view(-1, 1, 1, 1)


def color(x: Tensor, u: Tensor) -> Tensor:
    """Brightness + U(−0.5, 0.5), saturation × U(0, 2) around each pixel's channel mean,
    contrast × U(0.5, 1.5) around the image's mean; in this order, as in the reference."""
    x = x + _scalars(u[:, 0] - 0.5, x)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _scalars(u[:, 1] * 2, x) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _scalars(u[:, 2] + 0.5, x) + mean


def translation(x: Tensor, u: Tensor) -> Tensor:
    """Shift by whole pixels, up to 1/8 of the size each way (rows and columns drawn apart);
    what comes in from outside the image is zero."""
    n, c, h, w = x.shape
    reach_h, reach_w = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _integers(u[:, 0], 2 * reach_h + 1) - reach_h
    dx = _integers(u[:, 1], 2 * reach_w + 1) - reach_w
    rows = torch.arange(h, device=x.device) + dy[:, None]  # the source of each output row
    cols = torch.arange(w, device=x.device) + dx[:, None]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    index = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]
    # one gather over the flattened pixels (its backward scatters the gradient back)
    moved = x.reshape(n, c, h * w).gather(2, index.reshape(n, 1, h * w).expand(n, c, h * w))
    return moved.reshape(n, c, h, w).masked_fill(~inside[:, None], 0)


def cutout(x: Tensor, u: Tensor) -> Tensor:
    """Zero a square of half the image size whose centre is anywhere in the image."""
    n, c, h, w = x.shape
    size_h, size_w = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = _integers(u[:, 0], h + 1 - size_h % 2) - size_h // 2
    left = _integers(u[:, 1], w + 1 - size_w % 2) - size_w // 2
    rows = torch.arange(h, device=x.device)[None] - top[:, None]
    cols = torch.arange(w, device=x.device)[None] - left[:, None]
    cut = ((rows >= 0) & (rows < size_h))[:, :, None] & ((cols >= 0) & (cols < size_w))[:, None, :]
    return x.masked_fill(cut[:, None], 0)


# Applied in this order (the reference's "color,translation,cutout": the padding and the
# cut-out square stay exactly zero).
TRANSFORMS: dict[str, Transform] = {
    "color": Transform(3, color),
    "translation": Transform(2, translation),
    "cutout": Transform(2, cutout),
}


def check_names(names: list[str]) -> list[str]:
    """`loss.augment` as saved: registered names, each once, in the order they are applied."""
    for name in names:
        if name not in TRANSFORMS:
            close = difflib.get_close_matches(name, TRANSFORMS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{name!r} is not an augmentation{hint}; choose from {', '.join(TRANSFORMS)}"
            )
    return [name for name in TRANSFORMS if name in names]


ADA_INTERVAL = 4  # steps between adjustments of p (StyleGAN2-ADA's)


class Augment:
    """The chosen transforms as one function of images (ND, n, C, H, W) and their draws
    (ND, n, draws): vectorised over every sample of every discriminator.

    With a strength p below 1, or a `target` for ADA's heuristic, each transform applies to a
    sample only where one more draw of its own is below p (ADA's gating, StyleGAN2-ADA:
    Karras et al. 2020); p is a tensor on the device, adjusted there without a host sync:
    `observe` adds up sign(D(real)) over D's real batches, and every ADA_INTERVAL steps
    `adjust` moves p by ADA_INTERVAL / ramp towards r_t = E[sign(D(real))] = target."""

    def __init__(
        self, names: list[str], p: float = 1.0, target: float | None = None, ramp: int = 2000
    ):
        self.names = check_names(names)
        self.transforms = [TRANSFORMS[name] for name in self.names]
        self.target, self.ramp = target, ramp
        self.gated = target is not None or p < 1.0  # p = 1 draws as ever: old runs stay exact
        self.draws = sum(t.draws + self.gated for t in self.transforms)
        self.p = torch.tensor(float(p))
        self.signs = torch.zeros(2)  # Σ sign(D(real)), count, since the last adjustment
        self.rt = torch.zeros(())  # r_t at the last adjustment (logged)

    def to(self, device: torch.device | str) -> Augment:
        self.p, self.signs, self.rt = (t.to(device) for t in (self.p, self.signs, self.rt))
        return self

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        if u.shape != (*x.shape[:2], self.draws):
            raise ValueError(f"draws {tuple(u.shape)} do not fit images {tuple(x.shape)}")
        images, rows = x.reshape(-1, *x.shape[2:]), u.reshape(-1, self.draws)
        start = 0
        for transform in self.transforms:
            moved = transform.apply(images, rows[:, start : start + transform.draws])
            start += transform.draws
            if self.gated:  # the transform where the sample's own draw is below p
                hit = (rows[:, start] < self.p).view(-1, *[1] * (images.dim() - 1))
                moved = torch.where(hit, moved, images)
                start += 1
            images = moved
        return images.reshape(x.shape)

    @property
    def adaptive(self) -> bool:
        return self.target is not None

    def observe(self, real_logits: Tensor) -> None:
        """D's adversarial logits on a batch of (augmented) real images, as D is trained."""
        if self.adaptive:
            signs = real_logits.detach().float().sign()
            self.signs += torch.stack([signs.sum(), signs.new_tensor(signs.numel())])

    def adjust(self, step: int, sum_over_ranks: Callable[[Tensor], Tensor]) -> None:
        """After step `step` (counted from 0): every ADA_INTERVAL steps, p one notch towards
        r_t = target, in [0, 1]; the signs of all ranks first (exact: they are integers)."""
        if not self.adaptive or (step + 1) % ADA_INTERVAL:
            return
        assert self.target is not None
        total, count = sum_over_ranks(self.signs).unbind()
        # sign(Σ − target·count), not of a ratio: the same on any split of the batch
        direction = torch.sign(total - self.target * count)
        self.p = (self.p + direction * (ADA_INTERVAL / self.ramp)).clamp(0.0, 1.0)
        self.rt = total / count.clamp(min=1.0)
        self.signs = torch.zeros_like(self.signs)

    def state_dict(self) -> dict[str, Tensor]:
        return {"p": self.p.cpu(), "signs": self.signs.cpu(), "rt": self.rt.cpu()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        device = self.p.device
        self.p, self.signs, self.rt = (state[k].to(device) for k in ("p", "signs", "rt"))


def build_augment(
    names: list[str],
    data_shape: tuple[int, ...],
    p: float = 1.0,
    target: float | None = None,
    ramp: int = 2000,
) -> Augment | None:
    """`loss.augment` (with its strength: augment_p, augment_target, augment_ramp) for data of
    `data_shape`: None when empty; a ConfigError unless the data are images (C, H, W)."""
    if not names:
        return None
    if len(data_shape) != 3:
        raise ConfigError(
            f"loss.augment={names} transforms images, but the data are samples of shape "
            f"{tuple(data_shape)} (2D points?); use loss.augment=[]"
        )
    return Augment(names, p, target, ramp)

"""Memorisation: are generated samples nearer the rows the model trained on than the real rows
it never saw (`data.heldout`)? The held-out rows were chosen at random, so to a generator that
models the distribution without copying, the two sets are alike: the real rows nearest its
samples are training rows in the proportion p0 = M_train / (M_train + M_heldout), the training
set's share. A copier's samples are all nearest to training rows.

Three choices make the number mean something with a few hundred rows per task:
- The evidence is counted in real rows, not samples: each real row that is nearest to some
  sample counts once (all of a sample's nearest rows on a tie). Thousands of a poor or
  collapsed generator's samples often share one or two "hub" rows, which would otherwise
  decide the score alone: a coin toss, tossed towards training rows by their share.
- The share f of those rows that are training rows is balanced for the set sizes,
  f·(1−p0) / (f·(1−p0) + (1−f)·p0): 0.5 at chance, 1 for a copier, f itself when both sets
  have the same size. Subsampling the larger set to the smaller one's size instead would keep
  one training row in nine at data.heldout=0.1, and a copier of the others would look like
  chance.
- The excess over chance is read from the lower end of f's 95 % (Wilson) interval, so that a
  verdict resting on a few rows does not count: 0 unless the rows rule chance out.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CHUNK = 1 << 24  # difference-tensor elements per chunk: bounded memory for large sets
Z = 1.96  # the excess reads the lower end of a 95 % interval


def nearest_rows(fake: Tensor, real: Tensor) -> Tensor:
    """Which rows of real (M, D) are nearest to some row of fake (N, D), all of them on a tie,
    (M,) bool. Distances come from differences, not the ‖a‖² − 2ab + ‖b‖² expansion: a copy is
    at exactly 0 and equal distances compare equal."""
    hit = torch.zeros(len(real), dtype=torch.bool)
    rows = max(1, CHUNK // max(1, len(real) * fake.shape[1]))
    for part in fake.split(rows):
        dist = torch.cdist(part, real, compute_mode="donot_use_mm_for_euclid_dist")
        hit |= (dist == dist.min(dim=1, keepdim=True).values).any(dim=0).cpu()
    return hit


def balanced(fraction: float, train: int, heldout: int) -> float:
    """`fraction` of rows that are training rows, reweighted as if the `train` and `heldout`
    sets had the same size: 0.5 when it is the training set's share, 1 when 1."""
    p0 = train / (train + heldout)
    num = fraction * (1 - p0)
    return num / (num + (1 - fraction) * p0)


def wilson_lower(hits: int, n: int, z: float = Z) -> float:
    """The lower end of the Wilson score interval of a proportion hits / n."""
    centre = hits + z * z / 2
    half = z * math.sqrt(hits * (n - hits) / n + z * z / 4)
    return max(0.0, (centre - half) / (n + z * z))


def memorisation(fake: Tensor, train: Tensor, heldout: Tensor) -> dict[str, float]:
    """Samples fake (N, D) against training rows (M, D) and held-out rows (M', D).

    `memorisation`: the balanced share of training rows among the real rows nearest to some
    sample, ≈ 0.5 for a generator of the distribution, 1 for a copier. `memorisation_rows`: how
    many real rows that rests on. `memorisation_excess`: max(0, 2·(b − 0.5)) for b the balanced
    lower end of the share's 95 % interval, 0 when chance cannot be ruled out."""
    hit = nearest_rows(fake, torch.cat([train, heldout]))
    n, hits = int(hit.sum()), int(hit[: len(train)].sum())
    value = balanced(hits / n, len(train), len(heldout))
    low = balanced(wilson_lower(hits, n), len(train), len(heldout))
    return {
        "memorisation": value,
        "memorisation_rows": float(n),
        "memorisation_excess": max(0.0, 2 * (low - 0.5)),
    }

"""The floor each metric can reach on the bundled data: real data against real data.

    python benchmarks/metric_floor.py [--seed 0]

Digits: each class's 500 digits are split into two seeded halves (250 "held out" vs 250
"training"), scored with the digit features exactly as `mtgan eval` scores a generator's
samples against a task (FID, KID, PRDC per class and averaged; FID pooled over all classes).
2D mixtures: 2,500 samples of the true mixture scored by the PacGAN protocol. A generator cannot
be expected to beat these numbers at these sample sizes.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from mtgan.data.mnist import load_mnist5k
from mtgan.data.toy2d import sample_mixture
from mtgan.metrics import fid, kid, mode_stats_for, prdc
from mtgan.metrics.digits import digit_classifier
from mtgan.metrics.features import DigitFeatures


def digits_floor(seed: int) -> dict[str, float]:
    x, y = load_mnist5k()
    classifier = digit_classifier()
    features = DigitFeatures(classifier)
    gen = torch.Generator().manual_seed(seed)
    per_class: dict[str, list[float]] = {}
    halves_a, halves_b = [], []
    for c in range(10):
        idx = (y == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=gen)]
        a, b = (
            features(x[idx[: len(idx) // 2]]).double(),
            features(x[idx[len(idx) // 2 :]]).double(),
        )
        halves_a.append(a)
        halves_b.append(b)
        k_mean, _ = kid(a, b, subsets=100, subset_size=min(len(a), 1000), generator=gen)
        scores = {"fid": fid(a, b), "kid": k_mean, **prdc(a, b, k=5)}
        for key, value in scores.items():
            per_class.setdefault(key, []).append(value)
    out = {key: float(np.mean(values)) for key, values in per_class.items()}
    out["fid_pooled"] = fid(torch.cat(halves_a), torch.cat(halves_b))
    out["classifier_held_out_accuracy"] = classifier.held_out_accuracy
    return out


def mixture_floor(name: str, seed: int) -> dict[str, float]:
    points, _ = sample_mixture(name, 2500, torch.Generator().manual_seed(seed))
    stats = mode_stats_for(name, points)
    return {key: stats[key] for key in ("modes", "hq", "rkl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = {
        "digits (250 vs 250 per class)": digits_floor(args.seed),
        "ring8 (2,500 true samples)": mixture_floor("ring8", args.seed),
        "grid25 (2,500 true samples)": mixture_floor("grid25", args.seed),
    }
    for section, values in result.items():
        print(section)
        for key, value in values.items():
            print(f"  {key:30s} {value:.4f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

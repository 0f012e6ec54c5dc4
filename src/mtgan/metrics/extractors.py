"""The feature extractors by name: what `eval.features` and `mtgan eval --features` choose from."""

from __future__ import annotations

import inspect
from typing import Any

from mtgan.errors import FeatureError
from mtgan.metrics.features import DigitFeatures, FeatureExtractor, RawFeatures
from mtgan.metrics.inception import InceptionFeatures

EXTRACTORS: dict[str, type[FeatureExtractor]] = {
    "digits": DigitFeatures,
    "inception": InceptionFeatures,
    "raw": RawFeatures,
}
AUTO = "auto"  # chosen from the data (evaluate.EvalContext.features_name)
FEATURE_CHOICES: tuple[str, ...] = (AUTO, *EXTRACTORS)


def check_features(name: str) -> str:
    if name not in FEATURE_CHOICES:
        raise ValueError(f"unknown features {name!r}; choose from {', '.join(FEATURE_CHOICES)}")
    return name


def get_extractor(name: str, **options: Any) -> FeatureExtractor:
    """The extractor called `name`, built with `options` (e.g. device, batch_size,
    weights_path for inception)."""
    if name not in EXTRACTORS:
        raise FeatureError(f"unknown feature extractor {name!r}; choose from {list(EXTRACTORS)}")
    cls = EXTRACTORS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise FeatureError(
            f"unknown option(s) {unknown} for {name} features; choose from {accepted}"
        )
    return cls(**options)

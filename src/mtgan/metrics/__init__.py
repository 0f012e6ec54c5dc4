"""Sample-quality and training metrics: FID/KID, PRDC, 2D mode coverage, pixel agreement,
stability summaries (plain functions of tensors or metrics.jsonl records), and the feature
extractors they run on. Each registered metric is a record in `mtgan.metrics.registry`, in a
file of its own under `mtgan.metrics.catalog`; run-level evaluation lives in
`mtgan.metrics.evaluate`."""

from mtgan.metrics import catalog  # noqa: F401  (registers the metrics)
from mtgan.metrics.agreement import pixel_agreement
from mtgan.metrics.data_classifier import image_classifier
from mtgan.metrics.extractors import get_extractor
from mtgan.metrics.features import (
    ClassifierFeatures,
    DigitFeatures,
    FeatureExtractor,
    ModuleFeatures,
    RawFeatures,
    digit_classifier,
)
from mtgan.metrics.fid import feature_stats, fid, fid_from_stats, kid
from mtgan.metrics.modes2d import mode_stats, mode_stats_for
from mtgan.metrics.prdc import prdc
from mtgan.metrics.stability import stability_stats

__all__ = [
    "ClassifierFeatures",
    "DigitFeatures",
    "FeatureExtractor",
    "ModuleFeatures",
    "RawFeatures",
    "digit_classifier",
    "get_extractor",
    "image_classifier",
    "feature_stats",
    "fid",
    "fid_from_stats",
    "kid",
    "mode_stats",
    "mode_stats_for",
    "pixel_agreement",
    "prdc",
    "stability_stats",
]

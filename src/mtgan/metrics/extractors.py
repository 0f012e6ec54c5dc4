"""The feature extractors by name: what `eval.features` and `mtgan eval --features` choose from,
and what `auto` chooses for a data set."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from mtgan.errors import FeatureError
from mtgan.metrics.features import ClassifierFeatures, DigitFeatures, FeatureExtractor, RawFeatures
from mtgan.metrics.inception import InceptionFeatures, weights_file

if TYPE_CHECKING:
    from mtgan.config import EvalConfig
    from mtgan.data import TaskSet

EXTRACTORS: dict[str, type[FeatureExtractor]] = {
    "classifier": ClassifierFeatures,
    "digits": DigitFeatures,
    "inception": InceptionFeatures,
    "raw": RawFeatures,
}
AUTO = "auto"  # chosen from the data (choose_features)
FEATURE_CHOICES: tuple[str, ...] = (AUTO, *EXTRACTORS)
NO_FEATURES = (
    "set eval.inception_weights=PATH (the FID Inception-v3 weights file) or ask for raw pixels "
    "with eval.features=raw"
)


def check_features(name: str) -> str:
    if name not in FEATURE_CHOICES:
        raise ValueError(f"unknown features {name!r}; choose from {', '.join(FEATURE_CHOICES)}")
    return name


def choose_features(config: EvalConfig, data: TaskSet) -> tuple[str | None, str | None]:
    """(the extractor `config.features` means for `data`, None), or (None, why none fits).

    `auto`: raw coordinates for points, the digit classifier for 1×28×28 images, Inception when
    eval.inception_weights is set, else the classifier of the data's own labelled images.
    Unlabelled (or one-class) images with no Inception weights get no default: raw pixels are
    a poor feature space (slow, and FID on them says little), so they must be asked for."""
    from mtgan.metrics.data_classifier import problem

    name = config.features
    images = data.kind == "image" and len(data.shape) == 3 and data.shape[0] in (1, 3)
    if name == AUTO:
        if data.kind == "points":
            return "raw", None
        if tuple(data.shape) == (1, 28, 28):
            return "digits", None
        if config.inception_weights is not None:
            name = "inception"
        else:
            why = problem(data)
            return ("classifier", None) if why is None else (None, f"{why}; {NO_FEATURES}")
    if name in ("digits", "inception") and not images:
        return None, f"{name} features need images with 1 or 3 channels"
    if name == "inception":
        try:
            weights_file(config.inception_weights)
        except FeatureError as e:
            return None, str(e)
    if name == "classifier":
        why = problem(data)
        if why is not None:
            return None, f"{why}; {NO_FEATURES}"
    return name, None


def get_extractor(name: str, **options: Any) -> FeatureExtractor:
    """The extractor called `name`, built with `options` (e.g. device, batch_size,
    weights_path for inception, classifier for classifier)."""
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

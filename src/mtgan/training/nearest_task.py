"""`train.init_task=nearest`: which of a source run's tasks a new task's own layers copy.

A user adding a task to a trained run rarely knows which old task is the best start; the
natural guess is the one whose data looks most like the new task's (whether it is the best
start is E2-long's question). "Looks like" is measured where the run's KID and FID are: in the
evaluation's feature space (`eval.features`), as the squared distance between the mean feature
of the new run's training images (every new task pooled) and the mean feature of each source
task's training images: FID's first term, the part that a handful of images (k = 5) estimates
without the rank-deficient covariance. Both sides are the training rows only (`data.heldout`
and `data.per_task` applied as each run drew them), so the reference KID is scored against plays
no part in the choice; at most `eval.n` rows a side. The choice and every distance go to
RUN/init.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mtgan.config import ExperimentConfig
from mtgan.data import TaskSet
from mtgan.data.tasks import build_tasks
from mtgan.errors import ConfigError

if TYPE_CHECKING:
    from mtgan.metrics.features import FeatureExtractor
    from mtgan.run import Run

NEAREST = "nearest"


def _extractor(config: ExperimentConfig, data: TaskSet) -> FeatureExtractor:
    from mtgan.metrics.data_classifier import classifier_for
    from mtgan.metrics.extractors import choose_features, get_extractor

    name, why = choose_features(config.eval, data)
    if name is None:
        raise ConfigError(
            f"train.init_task={NEAREST} compares tasks in the evaluation's features, and "
            f"eval.features={config.eval.features} has none for the source run's "
            f"{data.describe()}: {why}"
        )
    options: dict[str, Any] = {}
    if name == "inception":
        options["weights_path"] = config.eval.inception_weights
    if name == "classifier":
        options["classifier"] = classifier_for(data)
    return get_extractor(name, **options)


def _mean_feature(extractor: FeatureExtractor, data: TaskSet, x: Tensor, n: int) -> Tensor:
    """The mean feature of rows x, of at most n of them (a seeded subset: a large source's
    tasks cost what the evaluation's reference does)."""
    if len(x) > n:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]]
    return extractor(data.to_display(x)).double().mean(0)


def nearest_task(config: ExperimentConfig, data: TaskSet, source: Run) -> tuple[int, list[float]]:
    """(the source task nearest the new run's training data, the distance to every source task),
    on the CPU: each rank computes the same choice from the same rows."""
    new = data.to("cpu")
    with torch.random.fork_rng(devices=[]):  # building the source's data seeds nothing of ours
        old = build_tasks(source.config.data, source.config.seed)
    if tuple(old.shape) != tuple(new.shape):
        raise ConfigError(
            f"train.init_task={NEAREST}: the source run's data are {tuple(old.shape)} and this "
            f"run's {tuple(new.shape)}; name a task (train.init_task=T) instead"
        )
    # the features the source's data can give (eval.features=classifier trains on its many
    # labelled tasks, where a new task alone may hold one class)
    with torch.random.fork_rng(devices=[]):
        extractor = _extractor(config, old)
    n = config.eval.n
    target = _mean_feature(extractor, new, new.x, n)
    distances = [
        float((_mean_feature(extractor, old, old.task(k), n) - target).square().sum())
        for k in range(old.num_tasks)
    ]
    return min(range(len(distances)), key=distances.__getitem__), distances

"""Evaluate generators against their tasks' real data: the context every metric reads.

The metrics themselves are records in `mtgan.metrics.registry`, one file each under
`mtgan.metrics.catalog`. The context generates each task's samples once, extracts features
once, and caches the real data's features on disk per data set and extractor.

The real set is `eval.reference`: the training rows, the held-out split (`data.heldout`) or
both. Each evaluation states its protocol (`EvalContext.protocol`, eval.json's `protocol`), and
FID from a reference too small to trust gets a warning that names KID.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mtgan.config import EvalConfig, ExperimentConfig
from mtgan.data import TaskSet
from mtgan.data.toy2d import MIXTURES
from mtgan.errors import ConfigError
from mtgan.metrics.classifier import ImageClassifier
from mtgan.metrics.data_classifier import classifier_for
from mtgan.metrics.digits import digit_classifier
from mtgan.metrics.extractors import choose_features, get_extractor
from mtgan.metrics.features import ClassifierFeatures, FeatureExtractor, cache_dir
from mtgan.metrics.inception import InceptionFeatures
from mtgan.metrics.registry import METRICS, check_names
from mtgan.nets.routing import share_per_generator, task_samples

# z (NG, n, z_dim), class labels (NG, n) or None → samples (NG, n, *shape), display range
Generate = Callable[..., Tensor]
# Per-class FID from fewer real images than this is strongly biased (Chong & Forsyth, 2020).
PER_CLASS_MIN = 500
CLASSIFIERS = ("digits", "classifier")  # the extractors that are a classifier's features


class EvalContext:
    """What metrics need, computed lazily and at most once per evaluation."""

    def __init__(
        self,
        data: TaskSet,
        config: EvalConfig,
        generate: Generate,
        z_dim: int,
        generator_tasks: list[int],
        mixture: str | None = None,
        num_classes: int = 0,
        records: list[dict[str, Any]] | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        extractor: FeatureExtractor | None = None,
    ):
        if sorted(set(generator_tasks)) != list(range(data.num_tasks)):
            raise ConfigError(
                f"evaluation needs a generator for each of the {data.num_tasks} tasks; the "
                f"generators serve tasks {sorted(set(generator_tasks))}"
            )
        if config.reference == "heldout" and data.heldout is None:
            raise ConfigError(
                "eval.reference=heldout compares against rows set aside before training, but "
                "data.heldout=0 sets none aside; set data.heldout to a fraction (e.g. 0.1) or "
                "use eval.reference=train"
            )
        self.data, self.config, self.generate_fn = data, config, generate
        self.z_dim, self.mixture, self.num_classes = z_dim, mixture, num_classes
        self.generator_tasks = generator_tasks
        self.num_generators = len(generator_tasks)
        self.records, self.seed, self.device = records or [], seed, torch.device(device)
        self._samples: list[Tensor] | None = None
        self._fake_features: dict[int, Tensor] = {}
        self._real_features: dict[int, Tensor] = {}
        self._head_on_features: dict[int, bool] = {}  # id(classifier) → FID features are its own
        self._own_classifier: ImageClassifier | None = None  # trained on this data's images
        self._extractor = extractor  # a user's own features (e.g. ModuleFeatures) if given
        self._reference: dict[int, tuple[Tensor, Tensor]] = {}

    @property
    def tasks(self) -> range:
        return range(self.data.num_tasks)

    # -------------------------------------------------------------- samples and features

    def noise(self, n: int, same_for_all: bool = False, salt: int = 0) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed + salt)
        shape = (1 if same_for_all else self.num_generators, n, self.z_dim)
        z = torch.randn(shape, generator=gen)
        return z.expand(self.num_generators, n, self.z_dim) if same_for_all else z

    def labels(self, n: int) -> Tensor:
        """The classes a conditional model is asked for, (NG, n): 0, 1, …, C−1, 0, … per
        generator, so every class is equally represented (zeros if not conditional)."""
        return (torch.arange(n) % max(self.num_classes, 1)).expand(self.num_generators, n)

    def generate(self, z: Tensor, batch: int = 1000, labels: Tensor | None = None) -> Tensor:
        """Samples for noise z (NG, n, z_dim), generated in chunks, on the CPU; conditional
        models get `labels` (NG, n), by default every class in turn."""
        labels = self.labels(z.shape[1]) if labels is None else labels
        parts = []
        for i in range(0, z.shape[1], batch):
            chunk = z[:, i : i + batch].to(self.device)
            if self.num_classes:
                out = self.generate_fn(chunk, labels=labels[:, i : i + batch].to(self.device))
            else:
                out = self.generate_fn(chunk)
            parts.append(out.cpu())
        return torch.cat(parts, dim=1)

    def sample_labels(self, k: int) -> Tensor:
        """The class each of `samples(k)` was generated for (conditional models), (n,)."""
        m = share_per_generator(self.config.n, self.generator_tasks)
        return task_samples(self.labels(m), self.generator_tasks, k, self.config.n)

    def samples(self, k: int) -> Tensor:
        """`config.n` samples of task k (display range), all tasks generated together once;
        a task served by several generators (MGAN) pools equal shares of each."""
        if self._samples is None:
            out = self.generate(
                self.noise(share_per_generator(self.config.n, self.generator_tasks))
            )
            self._samples = [
                task_samples(out, self.generator_tasks, t, self.config.n) for t in self.tasks
            ]
        return self._samples[k]

    def reference_rows(self, k: int) -> tuple[Tensor, Tensor]:
        """Task k's whole reference set on the CPU, `eval.reference`'s split: (rows (M, *shape)
        at the stored scale, their classes (M,))."""
        if k not in self._reference:
            train = (self.data.task(k).cpu(), self.data.task_labels(k).cpu())
            held = self.data.heldout
            if held is None or self.config.reference == "train":
                self._reference[k] = train
            elif self.config.reference == "heldout":
                self._reference[k] = (held.task(k).cpu(), held.task_labels(k).cpu())
            else:  # all
                x = torch.cat([train[0], held.task(k).cpu()])
                self._reference[k] = (x, torch.cat([train[1], held.task_labels(k).cpu()]))
        return self._reference[k]

    def _real_subset(self, k: int) -> Tensor | None:
        """Rows of task k's reference set that `real(k)` keeps (a seeded subset), None for all."""
        count = len(self.reference_rows(k)[1])
        if count <= self.config.n:
            return None
        gen = torch.Generator().manual_seed(self.seed + 1)
        return torch.randperm(count, generator=gen)[: self.config.n]

    def real(self, k: int) -> Tensor:
        """Task k's real data (display range) from `eval.reference`'s split, at most `config.n`
        samples (seeded subset)."""
        x = self.data.to_display(self.reference_rows(k)[0])
        keep = self._real_subset(k)
        return x if keep is None else x[keep]

    def real_labels(self, k: int) -> Tensor:
        """The class of each row of `real(k)`."""
        y = self.reference_rows(k)[1]
        keep = self._real_subset(k)
        return y if keep is None else y[keep]

    def reference_size(self, k: int) -> int:
        """How many real rows `real(k)` holds."""
        return min(len(self.reference_rows(k)[1]), self.config.n)

    def class_features(self, k: int, c: int) -> Tensor:
        """Features of `config.n` samples of task k generated for class c (conditional models)."""
        m = share_per_generator(self.config.n, self.generator_tasks)
        labels = torch.full((self.num_generators, m), c, dtype=torch.long)
        out = self.generate(self.noise(m, salt=4 + c), labels=labels)
        return self.extractor(task_samples(out, self.generator_tasks, k, self.config.n)).double()

    @property
    def extractor(self):
        if self._extractor is None:
            options = {"device": self.device, **self._extractor_options()}
            self._extractor = get_extractor(self.features_name, **options)
        return self._extractor

    @property
    def features_name(self) -> str:
        """`auto`: raw coordinates for points, the digit classifier for 1×28×28 images,
        Inception when weights are configured, the classifier of the run's own labelled images
        otherwise (`extractors.choose_features`); a ConfigError when none fits."""
        if self._extractor is not None:
            return self._extractor.name
        name, why = choose_features(self.config, self.data)
        if name is None:  # checked before training (registry.check_fits); a guard
            raise ConfigError(
                f"eval.features={self.config.features}: {self.data.describe()}: {why}"
            )
        return name

    def _extractor_options(self) -> dict[str, Any]:
        name = self.features_name
        if name == "inception" and self.config.inception_weights is not None:
            return {"weights_path": self.config.inception_weights}
        if name == "classifier":
            return {"classifier": self.own_classifier()}
        return {}

    def own_classifier(self) -> ImageClassifier:
        """The classifier trained once on this data's own labelled training images (cached)."""
        if self._own_classifier is None:
            self._own_classifier = classifier_for(self.data)
        return self._own_classifier

    def classifier(self) -> ImageClassifier:
        """The classifier of this data's classes (class accuracy): the digit classifier for
        1×28×28 digits (unless eval.features=classifier), else `own_classifier()`."""
        digits = tuple(self.data.shape) == (1, 28, 28) and self.config.features != "classifier"
        return digit_classifier() if digits else self.own_classifier()

    @property
    def resize(self) -> str:
        """How the extractor resizes this data's images, "none" when it does not (or when no
        features were extracted)."""
        ext, shape = self._extractor, tuple(self.data.shape)
        if isinstance(ext, InceptionFeatures):
            return ext.resize_mode(shape)
        if isinstance(ext, ClassifierFeatures) and len(shape) == 3:
            size = ext.classifier.size
            if shape[1:] != (size, size):
                how = ", antialias" if ext.antialias else ""
                return f"bilinear to {size}x{size} (align_corners=False{how})"
        return "none"

    def protocol(self) -> dict[str, Any]:
        """What this evaluation compared (eval.json's `protocol`): generated samples per task,
        the reference split and its size per task, the feature extractor (its name carries a
        digest of its weights) and width, and the resize mode."""
        sizes = [self.reference_size(k) for k in self.tasks]
        features = next(iter(self._real_features.values()), None)
        return {
            "generated_per_task": self.config.n,
            "reference": self.config.reference,
            "reference_per_task": sizes,
            "reference_total": sum(sizes),
            "features": self._extractor.name if self._extractor is not None else self.features_name,
            "feature_dim": None if features is None else int(features.shape[1]),
            "resize": self.resize,
        }

    def warn_small_reference(self) -> None:
        """Warn when FID's reference cannot be trusted: fewer real rows than feature dimensions
        (a rank-deficient covariance), or per-class sets under PER_CLASS_MIN images."""
        small = {k: len(f) for k, f in self._real_features.items() if len(f) < f.shape[1]}
        if small:
            width = next(iter(self._real_features.values())).shape[1]
            sizes = ", ".join(f"task {k}: {n}" for k, n in sorted(small.items()))
            warnings.warn(
                f"FID reference ({self.config.reference} split) smaller than the {width}-d "
                f"{self.features_name} features ({sizes}): the covariance is rank-deficient and "
                "FID is biased; KID (eval.metrics=[kid]) is the unbiased alternative",
                stacklevel=3,
            )
        if not self.num_classes:
            return
        counts = [
            int(n)
            for k in self.tasks
            for n in torch.unique(self.real_labels(k), return_counts=True)[1]
        ]
        if counts and min(counts) < PER_CLASS_MIN:
            warnings.warn(
                f"per-class FID from {min(counts)}–{max(counts)} real images per class "
                f"(< {PER_CLASS_MIN}, {self.config.reference} split) is strongly biased; KID "
                "(eval.metrics=[kid]) is the unbiased alternative",
                stacklevel=3,
            )

    def fake_features(self, k: int) -> Tensor:
        if k not in self._fake_features:
            self._fake_features[k] = self.extractor(self.samples(k)).double()
        return self._fake_features[k]

    def class_logits(self, k: int, classifier: ImageClassifier) -> Tensor:
        """A classifier's logits for task k's samples (N, classes). When the FID features are
        that classifier's penultimate layer, its head runs on them: one forward pass serves both."""
        if id(classifier) not in self._head_on_features:  # hashes the weights: once, not per task
            ext = self._extractor
            if ext is None and choose_features(self.config, self.data)[0] in CLASSIFIERS:
                ext = self.extractor  # a copy of a classifier: cheap, and FID may want it
            same = isinstance(ext, ClassifierFeatures) and ext.name == ext.name_for(classifier)
            self._head_on_features[id(classifier)] = same
        with torch.no_grad():
            if self._head_on_features[id(classifier)]:
                # the extractor's own copy of the same weights, on the extractor's device
                ext = self.extractor
                return ext.classifier.head(self.fake_features(k).float().to(ext.device)).cpu()
            device = next(classifier.parameters()).device
            fit = classifier.fit_input
            return torch.cat(
                [classifier(fit(b.to(device))).cpu() for b in self.samples(k).split(1000)]
            )

    def real_features(self, k: int) -> Tensor:
        """Features of task k's real data, cached on disk by data content and extractor."""
        if k not in self._real_features:
            self._real_features[k] = self.cached_features(self.real(k))
        return self._real_features[k]

    def cached_features(self, real: Tensor) -> Tensor:
        """Features (N, D) float64 of real rows (N, *shape) in display range, cached on disk by
        their content and the extractor: real data is extracted once, not at every evaluation."""
        digest = hashlib.sha256(real.numpy().tobytes()).hexdigest()[:24]
        path = cache_dir() / f"real-{self.extractor.name}-{digest}.safetensors"
        if path.exists():
            feats = load_file(str(path))["features"]
        else:
            feats = self.extractor(real).float().contiguous()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"features": feats}, str(tmp))
            tmp.replace(path)
        return feats.double()


def mixture_name(config: ExperimentConfig) -> str | None:
    """The bundled 2D mixture a run trains on, if any (for the mode-counting metric)."""
    if config.data.path is None and config.data.name in MIXTURES:
        return config.data.name
    return None


def evaluate(ctx: EvalContext, metrics: list[str]) -> dict[str, float]:
    """Run the named metrics; returns one flat dict of values."""
    try:
        check_names(metrics)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    out: dict[str, float] = {}
    for name in metrics:
        out.update(METRICS[name].fn(ctx))
    if "fid" in metrics:
        ctx.warn_small_reference()
    return out

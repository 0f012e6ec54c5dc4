"""The experiment schema: one strict pydantic model, loaded from presets, YAML files, dicts and
dotted command-line overrides.

Every field has a default, so a preset or YAML file only says what differs. Unknown keys are
rejected with the nearest valid name; wrong types and ranges name the field and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import importlib.resources
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    field_validator,
    model_validator,
)

from mtgan.errors import ConfigError

DomainName = Literal["identity", "edges", "negative", "rot90", "rot180", "rot270"]
ShareSpec = (
    NonNegativeInt | list[int] | Literal["none", "all", "trunk", "all_but_first", "all_but_last"]
)


class Strict(BaseModel):
    """Base: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    """Where the tasks come from. Images are scaled to [-1, 1]; 2D points are kept raw."""

    name: Literal["mnist", "ring8", "grid25"] | None = Field(
        default="mnist", description="bundled data; none when data.path gives the user's own"
    )
    path: Path | None = None
    format: Literal["auto", "idx", "folder", "npz"] = "auto"
    tasks: Literal["single", "classes"] | list[list[int]] = "single"
    domains: list[DomainName] = Field(default_factory=lambda: ["identity"], min_length=1)
    split_domains: bool = True
    image_size: int | None = Field(default=None, ge=4, le=1024)
    n_points: int = Field(default=100_000, ge=100)
    limit: int | None = Field(
        default=None, ge=1, description="a plain cap on each task's training rows (seeded)"
    )
    per_task: int | None = Field(
        default=None,
        ge=1,
        description="exactly N real training rows per task, balanced over the task's labels "
        "(seeded), taken after data.heldout so the held-out reference is the same for every N; "
        "the low-data regime's knob. null: all rows",
    )
    skip_invalid: bool = Field(
        default=False, description="skip unreadable images (and report how many) instead of failing"
    )
    heldout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="fraction of each label's rows set aside before training and never trained "
        "on, the real set of eval.reference=heldout (seeded, stratified by label; taken before "
        "data.per_task or data.limit take the training rows); 0: none",
    )

    @model_validator(mode="after")
    def _one_cap(self) -> DataConfig:
        # Two caps would each silently change what the other means: refuse rather than order.
        if self.per_task is not None and self.limit is not None:
            raise ValueError(
                f"per_task={self.per_task} and limit={self.limit} both set how many rows each "
                "task trains on; set one (per_task: exactly N, balanced over labels; limit: a "
                "plain cap)"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _path_replaces_name(cls, data: Any) -> Any:
        # A preset names its bundled data; the user's data.path replaces it, and config.yaml
        # must not claim the run trained on the bundled set.
        if isinstance(data, dict) and data.get("path") is not None:
            return {**data, "name": None}
        return data


class ShareConfig(Strict):
    """Hard parameter sharing across the task copies of each network family.

    `generator`/`discriminator`: an int n shares the first n layers (counted from the network's
    input), a list names layer indices (negative counts from the end), or one of `none`, `all`,
    `trunk` (all but the first and last), `all_but_first`, `all_but_last`. With one task per
    class, a discriminator sharing `all_but_last` is a projection discriminator (Miyato & Koyama
    2018): D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ is a shared φ and a task-own last linear layer
    w_y = ψ + embed(y) (preset `cgan`).
    `cross`: groups of layers shared between a generator and a discriminator, as `g.I` / `d.J`
    references; the layers must have identical shapes.
    """

    generator: ShareSpec = "none"
    discriminator: ShareSpec = "none"
    cross: list[list[str]] = Field(default_factory=list)

    @field_validator("cross")
    @classmethod
    def _refs(cls, groups: list[list[str]]) -> list[list[str]]:
        for group in groups:
            if len(group) < 2:
                raise ValueError(f"a cross-sharing group needs two layers or more, got {group}")
            for ref in group:
                net, _, idx = ref.partition(".")
                if net not in ("g", "d") or not idx.lstrip("-").isdigit():
                    raise ValueError(f"layer reference {ref!r} must look like 'g.1' or 'd.-2'")
        return groups


class ModelConfig(Strict):
    """Network shapes. `mlp`: fully connected; `dcgan`: strided (transposed) convolutions."""

    arch: str = Field(
        default="mlp",
        description="mlp or dcgan (built from layer plans: g_hidden, d_hidden, share), resnet "
        "(SNGAN-style residual networks for 32×32 / 28×28 images), or your own networks as "
        "'package.module:factory' (mtgan.nets.protocol; its options in model.options)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword options for a factory arch (resnet: width), passed as given",
    )
    d_arch: Literal["mlp", "dcgan"] | None = Field(
        default=None,
        description="the discriminators' family when it differs from the generators' (e.g. "
        "an MLP generator judged by a convolutional discriminator); null: model.arch",
    )
    z_dim: int = Field(default=100, ge=1)
    g_hidden: list[int] = Field(default_factory=lambda: [256, 512], min_length=0)
    d_hidden: list[int] = Field(default_factory=lambda: [512, 256], min_length=0)
    g_out_kernel: int | None = Field(
        default=None,
        ge=1,
        description="the generator's output layer as a stride-1 convolution with this (odd) "
        "kernel size on a full-size hidden map: dcgan upsamples its last g_hidden channels to "
        "full size, mlp reads its last g_hidden width as C×H×W (a multiple of H·W). null: a "
        "deconvolution (dcgan) or linear layer (mlp). A small kernel keeps a task-own output "
        "layer local (CoGAN's coupling)",
    )
    g_norm: Literal["none", "batch", "conditional"] = Field(
        default="batch",
        description="the generators' hidden-layer norm: batch (statistics per task; γ, β "
        "per task in task-own layers, shared in shared ones), conditional (conditional batch "
        "norm: γ, β per task in shared layers too, so a fully shared generator still differs "
        "by task, as in a class-conditional GAN) or none",
    )
    d_norm: Literal["none", "spectral"] = "none"
    d_activation: Literal["leaky_relu", "relu", "maxout"] = "leaky_relu"
    maxout_pieces: int = Field(default=5, ge=2, description="pieces per unit with maxout")
    generators: int | None = Field(default=None, ge=1, description="default: one per task")
    discriminators: int | None = Field(default=None, ge=1, description="default: one per task")
    heads: dict[str, int] = Field(
        default_factory=dict,
        description="extra discriminator heads on its trunk, name → outputs (e.g. generator: 10)",
    )
    share: ShareConfig = Field(default_factory=ShareConfig)
    shared_noise: bool = Field(
        default=False, description="one noise batch for all generators (CoGAN's coupling)"
    )
    conditional: bool = Field(
        default=False,
        description="generators take a class label too, one-hot after z (AC-GAN); needs "
        "labelled data",
    )
    freeze: list[str] = Field(
        default_factory=list,
        description="parameters no phase updates (FreezeD: a discriminator's lower layers): "
        "fnmatch patterns over parameter names or layer prefixes as `mtgan describe` lists "
        "them, e.g. [discriminator.blocks.0]; a pattern that matches nothing is an error",
    )

    @field_validator("arch", mode="before")
    @classmethod
    def _arch(cls, arch: Any) -> str:
        from mtgan.nets.factory import check_arch  # nets build on this module

        return check_arch(arch)

    @model_validator(mode="after")
    def _plans_or_factory(self) -> ModelConfig:
        from mtgan.nets.factory import is_factory

        if not is_factory(self.arch):
            if self.options:
                raise ValueError(
                    f"options={self.options} are for a factory arch (resnet or "
                    f"'package.module:factory'); model.arch={self.arch} is built from g_hidden "
                    "and d_hidden"
                )
            return self
        if self.d_arch is not None:
            raise ValueError(f"d_arch chooses a built-in discriminator; {self.arch} builds both")
        if self.share.cross:
            raise ValueError(f"share.cross ties built-in layers; {self.arch} builds its own")
        return self

    @field_validator("g_out_kernel")
    @classmethod
    def _odd(cls, k: int | None) -> int | None:
        if k is not None and k % 2 == 0:
            raise ValueError(f"{k} is even; expected an odd size (it keeps the image size)")
        return k


class LossConfig(Strict):
    """Adversarial loss and regularisers (see mtgan.objectives for the formulas)."""

    adversarial: Literal["minimax", "nonsaturating", "hinge", "wasserstein", "lsgan", "none"] = (
        Field(
            default="nonsaturating",
            description="none: no real/fake term (MAD-GAN's source head replaces it)",
        )
    )
    gp: float = Field(default=0.0, ge=0.0, description="WGAN-GP weight λ")
    gp_every: int = Field(
        default=1, ge=1, description="lazy GP: its own phase every N steps (weight × N)"
    )
    r1: float = Field(default=0.0, ge=0.0, description="R1 weight γ (loss γ/2 · ‖∇D‖²)")
    r1_every: int = Field(
        default=16, ge=1, description="lazy R1: its own phase every N steps (weight × N)"
    )
    rotation_d: float = Field(
        default=0.0, ge=0.0, description="SS-GAN: D's rotation-prediction weight on real images"
    )
    rotation_g: float = Field(
        default=0.0, ge=0.0, description="SS-GAN: G's rotation-prediction weight on its fakes"
    )
    classes: float = Field(
        default=0.0,
        ge=0.0,
        description="AC-GAN: weight of the class cross-entropy that D (real and fake) and G "
        "(fake) minimise (needs model.conditional; the class head is built for it)",
    )
    source: float = Field(
        default=0.0,
        ge=0.0,
        description="MAD-GAN: weight of D's (generators + 1)-way 'real, or which generator' "
        "cross-entropy; each generator's fakes aim at 'real' (needs model.generators; the "
        "source head is built for it)",
    )
    generator_id: float = Field(
        default=0.0,
        ge=0.0,
        description="MGAN β: weight of the 'which generator made this' cross-entropy "
        "(its generator head is built for it)",
    )
    augment: list[str] = Field(
        default_factory=list,
        description="DiffAugment: random differentiable transforms of every image any "
        "discriminator sees, real and fake, in every phase: any of color, translation, cutout "
        "(applied in that order); []: none",
    )

    @field_validator("augment")
    @classmethod
    def _transforms(cls, names: list[str]) -> list[str]:
        from mtgan.objectives.augment import check_names  # the objectives read this module

        return check_names(names)


class BalanceConfig(Strict):
    """How the objectives of a family's phases become one loss (see mtgan.balance).

    Options are kept under the name of the balancer they are for, `g_options: {gman: {lam:
    1}}`, so that a preset's options for its own balancer do not follow a user who picks
    another; a mapping without balancer names (`g_options: {lam: 1}`) is the chosen one's."""

    d: str = "fixed"
    g: str = "fixed"
    d_options: dict[str, Any] = Field(default_factory=dict)
    g_options: dict[str, Any] = Field(default_factory=dict)


class UntilConfig(Strict):
    """Stop before `train.steps` once `metric` has stopped improving: `patience` evaluations
    (eval.every) in a row without a gain larger than `min_delta`; or, with `diverge`, as soon as
    it is that factor worse than its best. The best checkpoint is kept as `checkpoints/best`."""

    metric: str = Field(description="a reported value: fid, fid_pooled, fid/task3, modes, ...")
    patience: int = Field(default=5, ge=1, description="evaluations without improvement")
    min_delta: float = Field(default=0.0, ge=0, description="the least change that counts")
    diverge: float | None = Field(default=None, gt=1, description="stop when this factor worse")

    @field_validator("metric")
    @classmethod
    def _tracked(cls, key: str) -> str:
        from mtgan.metrics.registry import direction, metric_of  # it imports this module

        if metric_of(key) is None or direction(key) is None:
            raise ValueError(
                f"{key!r} is not a value with a better side that a metric reports (e.g. fid, "
                "fid_pooled, fid/task0, kid, modes, accuracy, agreement, precision)"
            )
        return key


class TrainConfig(Strict):
    """The phase loop, optimisation and run-directory output."""

    steps: int = Field(default=2000, ge=1, description="the cap when `until` is set")
    batch_size: int = Field(default=64, ge=1, description="per task")
    accumulate: int = Field(
        default=1,
        ge=1,
        description="gradient accumulation: each process's batch as N micro-batches, one "
        "after the other, their gradients summed and applied once (the same step as one "
        "batch, in less memory); needs balancers whose weights do not read the step's "
        "losses or gradients",
    )
    lr_g: float = Field(default=2e-4, gt=0)
    lr_d: float = Field(default=2e-4, gt=0)
    lr_schedule: str = Field(
        default="constant",
        description="the learning rates over the run, a function of the step (exact under "
        "resume): constant, linear (to 0 at train.steps, as SNGAN) or cosine (to 0 at "
        "train.steps); times the rollback factor after non-finite streaks",
    )
    lr_warmup: int = Field(
        default=0, ge=0, description="steps of linear warm-up from lr/N to lr before the schedule"
    )
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = Field(default=1, ge=1, description="D updates per G update")
    schedule: Literal["alternating", "simultaneous"] = "alternating"
    ema: float | None = Field(default=None, ge=0.0, lt=1.0, description="EMA decay of G")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1)
    log_every: int = Field(default=50, ge=1)
    sample_every: int = Field(default=500, ge=1)
    checkpoint_every: int = Field(default=1000, ge=1)
    keep_checkpoints: int = Field(default=3, ge=1)
    samples_per_task: int = Field(default=64, ge=1, le=1024)
    loggers: list[str] | None = Field(
        default=None,
        description="metric sinks: jsonl (metrics.jsonl, always on), tensorboard (RUN/tb), csv "
        "(RUN/metrics.csv), wandb (offline, RUN/wandb), mlflow (file store RUN/mlruns); each "
        "needs its package installed. null: jsonl, and tensorboard where it is installed",
    )
    progress: bool = True
    nan_patience: int = Field(
        default=5, ge=1, description="consecutive non-finite steps before rolling back"
    )
    nan_lr_factor: float = Field(default=0.5, gt=0, le=1, description="lr factor per rollback")
    max_rollbacks: int = Field(default=3, ge=0)
    dist_timeout: float = Field(default=300.0, gt=0, description="seconds a rank waits for peers")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="bf16: autocast matrix products to bfloat16 (weights stay fp32); "
        "fp16: to float16, with a dynamic loss scale per phase (GPUs without bf16); "
        "auto: bf16 (fp16 on a GPU without bf16) where whole training steps of the run "
        "measure it faster than fp32 on this machine (cached per machine and run shapes), fp32 "
        "elsewhere",
    )
    compile: bool = Field(default=False, description="torch.compile the networks")
    channels_last: bool | Literal["auto"] = Field(
        default="auto",
        description="convolutions in NHWC memory; auto: where whole training steps of the run "
        "measure it faster on this machine (cached)",
    )
    sync_bn: bool = Field(
        default=False,
        description="under --nproc: batch-norm statistics of the global batch (one all-reduce "
        "per norm layer and pass), so that N processes normalise as one does",
    )
    keep_heap: bool | Literal["auto"] = Field(
        default="auto",
        description="glibc: no mmap for large blocks, no heap trimming (fewer page faults, "
        "the peak heap kept); auto: where whole training steps measure it faster on this "
        "machine; applied by mtgan train (api.train) for its process",
    )
    until: UntilConfig | None = Field(default=None, description="stop once converged")
    init_from: str | None = Field(
        default=None,
        description="start from a finished run's weights: a run directory (its latest "
        "checkpoint) or one checkpoint (RUN/checkpoints/step-N); tensors whose names and shapes "
        "match are loaded (model and EMA; not optimizers, step or RNG), the rest start fresh "
        "(RUN/init.json lists which). null: a fresh start",
    )
    init_task: int | None = Field(
        default=None,
        ge=0,
        description="with init_from: task-own layers whose copy count differs from the "
        "source's start as copies of this source task's layers instead of fresh",
    )

    @model_validator(mode="before")
    @classmethod
    def _tensorboard_alias(cls, data: Any) -> Any:
        # Deprecated `train.tensorboard` (before train.loggers; every config.yaml written then
        # has it): false keeps TensorBoard out of the default sinks, true is the default.
        if not isinstance(data, dict) or "tensorboard" not in data:
            return data
        data = dict(data)
        flag = data.pop("tensorboard")
        if not isinstance(flag, bool):
            raise ValueError(
                f"tensorboard: {flag!r} is not allowed; expected true or false (deprecated: "
                "list the sinks in train.loggers instead)"
            )
        if not flag:
            warnings.warn(
                "train.tensorboard=false is deprecated; use train.loggers=[jsonl]",
                DeprecationWarning,
                stacklevel=2,
            )
            if data.get("loggers") is None:
                data["loggers"] = ["jsonl"]
        return data

    @field_validator("loggers")
    @classmethod
    def _sinks(cls, names: list[str] | None) -> list[str] | None:
        from mtgan.training.loggers import check_names  # it reads this module's classes

        return None if names is None else check_names(names)

    @field_validator("lr_schedule")
    @classmethod
    def _schedule(cls, name: str) -> str:
        from mtgan.training.lr_schedule import SCHEDULES

        if name not in SCHEDULES:
            close = difflib.get_close_matches(name, SCHEDULES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{name!r} is not a schedule{hint}; one of {', '.join(SCHEDULES)}")
        return name

    @model_validator(mode="after")
    def _warmup_ends(self) -> TrainConfig:
        if self.lr_warmup and self.lr_warmup >= self.steps:
            raise ValueError(
                f"lr_warmup={self.lr_warmup} must end before steps={self.steps}; lower it"
            )
        return self


class EvalConfig(Strict):
    """Metrics computed during training (every `every` steps) and at the end of the run."""

    metrics: list[str] = Field(default_factory=list, description="mtgan.metrics.registry names")
    every: int | None = Field(default=None, ge=1, description="null: only at the end")
    features: str = Field(default="auto", description="mtgan.metrics.extractors names")
    n: int = Field(default=5000, ge=10, description="generated samples per task")
    k: int = Field(default=5, ge=1, description="neighbours for precision/recall/density/coverage")
    kid_subsets: int = Field(default=100, ge=1)
    kid_subset_size: int = Field(default=1000, ge=2)
    stability_window: int = Field(default=200, ge=1, description="steps of recent history")
    inception_weights: Path | None = None
    reference: Literal["train", "heldout", "all"] = Field(
        default="train",
        description="the real set metrics compare against: each task's training rows, the "
        "held-out split (data.heldout), or both",
    )

    @field_validator("metrics")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        from mtgan.metrics.registry import check_names  # the registry imports this module

        return check_names(names)

    @field_validator("features")
    @classmethod
    def _extractor(cls, name: str) -> str:
        from mtgan.metrics.extractors import check_features  # it imports this module

        return check_features(name)


class ExperimentConfig(Strict):
    """A whole experiment: what a preset or YAML file describes."""

    description: str = ""
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _heldout_reference_needs_a_split(self) -> ExperimentConfig:
        if self.eval.reference == "heldout" and self.data.heldout == 0:
            raise ValueError(
                "eval.reference=heldout compares against rows set aside before training, but "
                "data.heldout=0 sets none aside; set data.heldout (e.g. 0.1) or use "
                "eval.reference=train"
            )
        return self

    @model_validator(mode="after")
    def _until_is_evaluated(self) -> ExperimentConfig:
        until = self.train.until
        if until is None:
            return self
        from mtgan.metrics.registry import metric_of

        name = metric_of(until.metric)
        if name not in self.eval.metrics:
            raise ValueError(
                f"train.until.metric={until.metric} is reported by the metric {name}, which is "
                f"not in eval.metrics={self.eval.metrics}; add it there"
            )
        if self.eval.every is None:
            raise ValueError("train.until needs evaluations during training: set eval.every")
        return self

    @model_validator(mode="after")
    def _augment_needs_images(self) -> ExperimentConfig:
        # bundled 2D points refused here; a user's data when the trainer is built (build_augment)
        if self.loss.augment and self.data.path is None and self.data.name != "mnist":
            raise ValueError(
                f"loss.augment={self.loss.augment} transforms images, but data.name="
                f"{self.data.name} is 2D points; use loss.augment=[]"
            )
        return self

    @model_validator(mode="after")
    def _dcgan_needs_square_images(self) -> ExperimentConfig:
        if self.data.path is not None or self.data.name == "mnist":
            return self
        for field in ("arch", "d_arch"):
            if getattr(self.model, field) == "dcgan":
                raise ValueError(
                    f"model.{field}: dcgan needs image data, but data.name={self.data.name} is "
                    "2D points; use mlp"
                )
        return self


# ---------------------------------------------------------------- loading and overrides


def preset_names() -> list[str]:
    """Names of the presets shipped inside the package."""
    files = importlib.resources.files("mtgan.presets").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def preset_descriptions() -> dict[str, str]:
    """Preset name → its one-line description."""
    return {name: _read_preset(name).get("description", "") for name in preset_names()}


def _read_preset(name: str) -> dict[str, Any]:
    text = importlib.resources.files("mtgan.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` → (["a", "b", "c"], value parsed as YAML: numbers, lists, null, ...)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the nested dict `data` with dotted overrides applied."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else child
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return out


def load_config(
    source: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    overrides: list[str] | None = None,
) -> ExperimentConfig:
    """Build a validated config from a preset name, a YAML path, a dict or a config.

    `None` gives the default preset (`pertask`). Overrides are dotted `key=value` strings.
    Raises ConfigError with a readable message on any problem.
    """
    if source is None:
        source = "pertask"
    if isinstance(source, ExperimentConfig):
        data = source.model_dump(mode="json")
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    elif isinstance(source, Path) or str(source).endswith((".yaml", ".yml")):
        data = _read_yaml(Path(source))
    elif str(source) in preset_names():
        data = _read_preset(str(source))
    else:
        close = difflib.get_close_matches(str(source), preset_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown preset or config file {str(source)!r}{hint}; "
            f"presets: {', '.join(preset_names())}"
        )
    given = apply_overrides(data, overrides or [])
    return validate(_describe_data_change(data, given, source))


def _describe_data_change(
    before: dict[str, Any], after: dict[str, Any], source: Any
) -> dict[str, Any]:
    """A description written for a config's own data, marked as such when overrides train it
    on other data (config.yaml otherwise says "The 10 digit classes…" of a run on shapes)."""
    old, new, text = before.get("data"), after.get("data"), after.get("description")
    if not (isinstance(old, dict) and isinstance(new, dict) and text):
        return after  # nothing to mark, or a shape the schema will name
    where = [f"data.{k}={new.get(k)}" for k in ("path", "name") if old.get(k) != new.get(k)]
    if not where:
        return after
    preset = isinstance(source, str) and source in preset_names()
    what = f"the {source} preset" if preset else "this config"
    return {**after, "description": f"{what} on {where[0]}; written for its own data: {text}"}


def validate(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a nested dict, turning pydantic's errors into one readable ConfigError."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def format_validation_error(error: ValidationError) -> str:
    """One line per wrong field: the dotted field, what is wrong, what is allowed."""
    by_field: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for err in error.errors():
        parts = [str(p) for p in err["loc"]]
        # An unknown key's location is the user's own path: never strip any part of it.
        if err["type"] != "extra_forbidden":
            parts = [p for p in parts if not _is_union_branch(p)]
        by_field.setdefault(tuple(parts), []).append(err)
    lines = []
    for loc, errs in by_field.items():
        field = ".".join(loc) or "config"
        if errs[0]["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(list(loc)))
        elif len(errs) > 1:  # a union (e.g. a sharing spec): say every form it accepts
            forms = "; or ".join(dict.fromkeys(_expected(e) for e in errs))
            lines.append(f"{field}: {_short(errs[0]['input'])} is not allowed; expected {forms}")
        elif errs[0]["type"] == "value_error":
            text = errs[0]["msg"].removeprefix("Value error, ")
            lines.append(f"{field}: {text}" if loc else text)
        elif errs[0]["type"] == "missing":
            lines.append(f"{field}: required, and not given")
        else:
            got = _short(errs[0]["input"])
            lines.append(f"{field}: {got} is not allowed; expected {_expected(errs[0])}")
    return "invalid config:\n  " + "\n  ".join(lines)


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "string_type": "a string",
    "model_type": "a mapping",
    "path_type": "a file or folder path",
}


def _expected(err: dict[str, Any]) -> str:
    """What a failed check wanted, in words: 'one of ...', 'an integer', 'a number >= 1'."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    bounds = {
        "greater_than_equal": ">= {ge}",
        "greater_than": "> {gt}",
        "less_than_equal": "<= {le}",
        "less_than": "< {lt}",
    }
    if kind == "too_short":
        return f"a list with at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"a list with at most {ctx.get('max_length')} item(s)"
    if kind in bounds:
        return "a value " + bounds[kind].format(**ctx)
    return _EXPECTED.get(kind, err["msg"][0].lower() + err["msg"][1:])


def _is_union_branch(part: str) -> bool:
    # pydantic names the union member it tried ("int", "list[list[int]]", "literal[...]",
    # "constrained-int") in the error location; config keys never look like that.
    return part in ("int", "str", "float", "bool", "constrained-int") or "[" in part


def _unknown_key_message(loc: list[str]) -> str:
    model: type[BaseModel] = ExperimentConfig
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    valid = list(model.model_fields)
    key = loc[-1]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    where = ".".join(loc)
    hint = f"did you mean {'.'.join([*loc[:-1], close[0]])!r}? " if close else ""
    return f"{where}: unknown key; {hint}valid keys here: {', '.join(valid)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def save_config(config: ExperimentConfig, path: Path) -> None:
    """Write the resolved config as YAML (every field, defaults included)."""
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))

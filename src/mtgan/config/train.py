"""The schema's sections for the phase loop (`train`, `train.until`) and evaluation (`eval`)."""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from mtgan.config.sections import Strict


class UntilConfig(Strict):
    """Stop before `train.steps` once `metric` has stopped improving: `patience` evaluations
    (eval.every) in a row without a gain larger than both `min_delta` and `min_rel_delta` × the
    best value (an EMA generator's curve creeps down by a hair long after it has levelled off);
    or, with `diverge`, as soon as it is that factor worse than its best. The best checkpoint is
    kept as `checkpoints/best`."""

    metric: str = Field(description="a reported value: fid, fid_pooled, fid/task3, modes, ...")
    patience: int = Field(default=5, ge=1, description="evaluations without improvement")
    min_delta: float = Field(default=0.0, ge=0, description="the least change that counts")
    min_rel_delta: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="the least change that counts, as a fraction of the best value (0.01: 1 %)",
    )
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
    ema_rampup: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="the EMA's half-life at most this fraction of the steps so far (StyleGAN2-"
        "ADA's ema_rampup, e.g. 0.05): a short run's average forgets its start",
    )
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
    init_task: Annotated[int, Field(ge=0)] | Literal["nearest"] | None = Field(
        default=None,
        description="with init_from: task-own layers whose copy count differs from the "
        "source's start as copies of this source task's layers instead of fresh; nearest: of "
        "the source task whose training images' mean feature (eval.features) is nearest this "
        "run's",
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
    def _rampup_needs_ema(self) -> TrainConfig:
        if self.ema_rampup is not None and not self.ema:
            raise ValueError(
                f"ema_rampup={self.ema_rampup} ramps up an EMA, but train.ema is off; set "
                "train.ema (e.g. 0.999) or drop ema_rampup"
            )
        return self

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

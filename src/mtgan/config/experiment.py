"""The whole experiment: every section, and the rules that join them."""

from __future__ import annotations

from pydantic import (
    Field,
    model_validator,
)

from mtgan.config.sections import (
    BalanceConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    Strict,
)
from mtgan.config.train import EvalConfig, TrainConfig


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

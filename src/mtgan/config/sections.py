"""The schema's sections for the data, the networks, the losses and the balancers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    field_validator,
    model_validator,
)

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
    task_id: float = Field(
        default=0.0,
        ge=0.0,
        description="AC-GAN's auxiliary classifier with the task as the class (TAC-GAN's "
        "setting): weight of the task cross-entropy that D (real and fake) and G (fake) "
        "minimise; needs two tasks or more and tells them apart where D's head is shared "
        "(model.share.discriminator=all; the task head is built for it)",
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

    augment_p: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="probability that each transform of loss.augment applies to a sample "
        "(ADA's p); with augment_target, the p a run starts from; null: 1, or 0 with "
        "augment_target (where ADA starts)",
    )
    augment_target: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="ADA: every 4 steps p moves up when r_t = E[sign(D(real))] over D's real "
        "batches is above this value (D too sure of the reals: over-fitting), down when below "
        "(StyleGAN2-ADA: 0.6); null: p stays augment_p",
    )
    augment_ramp: int = Field(
        default=2000,
        ge=1,
        description="with augment_target: steps p takes to move by 1 at most (ADA's speed)",
    )

    @field_validator("augment")
    @classmethod
    def _transforms(cls, names: list[str]) -> list[str]:
        from mtgan.objectives.augment import check_names  # the objectives read this module

        return check_names(names)

    @model_validator(mode="after")
    def _strength_needs_transforms(self) -> LossConfig:
        asked = [f"augment_p={self.augment_p:g}"] if self.augment_p is not None else []
        asked += [f"augment_target={self.augment_target:g}"] if self.augment_target else []
        if asked and not self.augment:
            raise ValueError(
                f"{' and '.join(asked)} set how often loss.augment's transforms apply, but "
                "loss.augment is []; name the transforms (e.g. loss.augment=[translation,cutout])"
            )
        return self


class BalanceConfig(Strict):
    """How the objectives of a family's phases become one loss (see mtgan.balance).

    Options are kept under the name of the balancer they are for, `g_options: {gman: {lam:
    1}}`, so that a preset's options for its own balancer do not follow a user who picks
    another; a mapping without balancer names (`g_options: {lam: 1}`) is the chosen one's."""

    d: str = "fixed"
    g: str = "fixed"
    d_options: dict[str, Any] = Field(default_factory=dict)
    g_options: dict[str, Any] = Field(default_factory=dict)

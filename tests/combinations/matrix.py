"""The pairings the combination matrix tries, read from the registries: a new preset, balancer
or penalty joins every sweep by existing. Shared by the tests and the torchrun worker."""

from __future__ import annotations

from mtgan.balance import BALANCERS
from mtgan.balance.base import Balancer
from mtgan.config import load_config, preset_names
from mtgan.objectives.augment import TRANSFORMS

PRESETS = preset_names()
BALANCER_NAMES = sorted(BALANCERS)
PENALTIES = {"none": [], "r1": ["loss.r1=1", "loss.r1_every=2"], "gp": ["loss.gp=1"]}
SCHEDULES = ["alternating", "simultaneous"]
# loss.augment with every transform (DiffAugment), for the presets on images
AUGMENT = f"loss.augment=[{','.join(TRANSFORMS)}]"
# one stateful balancer of each kind (learned logits and loss memory; learned weights from
# gradient norms), set on both phases
STATEFUL = {"loss-based": "famo", "gradient-based": "gradnorm"}

COMMON = [
    "train.batch_size=20",  # divides over 2 processes, 4, 5 and 10 networks
    "train.log_every=1",
    "train.sample_every=1000",
    "train.checkpoint_every=1000",
    "train.samples_per_task=4",
    "train.loggers=[jsonl]",
    "train.progress=false",
    "train.device=cpu",
    "train.precision=fp32",  # bit-exact comparisons
    "train.keep_heap=false",  # no tuner races before each run (conftest.TINY says why)
    "train.threads=1",
    "eval.metrics=[]",
]


def _narrow(widths: list[int], keep_last: bool) -> list[int]:
    """Hidden widths / 32 (at least 4); a last width read as a C×H×W map is kept."""
    out = [max(4, w // 32) for w in widths]
    if keep_last and widths:
        out[-1] = widths[-1]
    return out


def tiny(preset: str, *extra: str) -> list[str]:
    """Overrides that keep a preset's structure (networks, sharing, heads, terms) and make it
    small enough to train a few steps in a fraction of a second."""
    config = load_config(preset)
    model, data = config.model, config.data
    out = [*COMMON, "train.steps=4"]
    if data.name == "mnist" and data.path is None:
        out.append("data.limit=20")
        out.append("model.z_dim=8")
    else:
        out.append("data.n_points=200")
    g = _narrow(model.g_hidden, keep_last=model.g_out_kernel is not None)
    out += [f"model.g_hidden={g}", f"model.d_hidden={_narrow(model.d_hidden, False)}"]
    return [*out, *extra]


def on_images(preset: str) -> bool:
    """Whether a preset trains on images (the bundled digits), not on 2D points."""
    return load_config(preset).data.name == "mnist"


def refuses(balancer: str) -> bool:
    """Whether a balancer declares pairings it refuses (its own `check`)."""
    return BALANCERS[balancer].check is not Balancer.check


# 2 processes vs 1: each gradient source (sources.py) reduces its own way
DDP_SETUPS = {
    "pertask": ("pertask", []),  # shared trunks: the activation tape
    "independent": ("independent", []),  # nothing shared: the disjoint Jacobian
    "pertask-gp": ("pertask", ["loss.gp=1"]),  # a penalty: the batched parameter Jacobian
    "pertask-r1": ("pertask", ["loss.r1=1", "loss.r1_every=2"]),  # a lazy regulariser phase
    "gman": ("gman", ["data.tasks=single"]),  # 5 discriminators splitting one task's batch
}


def ddp_config(setup: str, balancer: str):
    """The 2-process vs 1-process comparison: 4 tasks (so that every balancer has several
    objectives), no batch norm (its statistics are per process), fp32; `balancer` on both
    phases."""
    preset, extra = DDP_SETUPS[setup]
    overrides = tiny(preset, "data.tasks=[[0],[1],[7],[9]]", "model.g_norm=none", *extra)
    return load_config(preset, [*overrides, f"balance.d={balancer}", f"balance.g={balancer}"])


def sync_bn_config(preset: str):
    """A preset with train.sync_bn and its own norms (batch norm in most generators), for the
    2-process vs 1-process comparison."""
    return load_config(preset, tiny(preset, "train.sync_bn=true"))

"""`train.channels_last` is an axis of the combination matrix: every preset on images trains
in either layout to the same weights (up to float summation order: NHWC kernels add in another
order), and a run stopped, checkpointed and resumed in channels-last ends bit for bit as the
uninterrupted one. An MLP preset on images runs as model.arch=dcgan and as the resnet factory
here (its heads, sharing and terms kept), unless its sharing cannot be convolutional (a clear
ConfigError); a preset on 2D points has no convolutions, ignores the switch and says so. The
switch lays out the task-stacked convolutions: one that shares every convolution (cgan as
dcgan) trains the same either way."""

from __future__ import annotations

import math

import pytest
import torch
from matrix import PRESETS, tiny
from resume import assert_resume_bit_exact
from torch import nn

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.training import Trainer

STEPS = 4
DCGAN = ["model.arch=dcgan", "model.g_hidden=[16,8]", "model.d_hidden=[8,16]"]
RESNET = ["model.arch=resnet", "model.options.width=8"]  # a factory on the protocol
ARCHS = {"dcgan": DCGAN, "resnet": RESNET}


def _convolutional(preset: str, arch: str) -> list[str]:
    config = load_config(preset)
    return ARCHS[arch] if config.data.name == "mnist" and config.model.arch == "mlp" else []


def _trained(config, steps: int, trainer: Trainer | None = None) -> tuple[Trainer, dict]:
    trainer = trainer or Trainer(config)
    record: dict[str, float] = {}
    for _ in range(steps):
        record = trainer.train_step(record=True)
    return trainer, record


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("preset", PRESETS)
def test_either_layout_trains_to_the_same_weights(tmp_path, preset, arch):
    arch = _convolutional(preset, arch)
    try:
        nhwc = load_config(preset, tiny(preset, *arch, "train.channels_last=true"))
        contiguous = load_config(preset, tiny(preset, *arch, "train.channels_last=false"))
        probe = Trainer(nhwc)
    except ConfigError as e:  # seed-gd: G–D shared layers need equal shapes, built-in ones
        assert arch and "share" in str(e), str(e)
        pytest.skip(f"{preset} cannot be convolutional: {e}")
    layout = probe.verdicts["channels_last"]
    if layout.reason.startswith("no convolutions"):
        assert not layout.value and load_config(preset).data.name != "mnist"
        return
    convs = [m for m in probe.model.modules() if hasattr(m, "channels_last")]
    # the switch lays out the task-stacked grouped convolutions; a model that shares every
    # convolution (cgan) has only torch's own layers, which it leaves to torch
    plain = [m for m in probe.model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert (convs or plain) and all(c.channels_last for c in convs)
    last, record = _trained(nhwc, STEPS, probe)
    assert last.skipped == 0 and all(math.isfinite(v) for v in record.values())
    base, base_record = _trained(contiguous, STEPS)
    for key, value in base_record.items():
        assert record[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key
    a, b = base.weights().state_dict(), last.weights().state_dict()
    # Adam moves a parameter by about lr a step whatever the size of its gradient: one that is
    # 0 up to rounding (a layer's bias before batch norm) moves by ±lr in either layout.
    lr = max(nhwc.train.lr_g, nhwc.train.lr_d)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=2 * lr * STEPS, msg=key)
    # resume in channels-last: bit for bit
    assert_resume_bit_exact(last, nhwc, STEPS, tmp_path)

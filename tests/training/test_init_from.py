"""A new task from a trained run (`train.init_from`, `--init-from`) and frozen layers
(`model.freeze`): what is loaded, copied, left fresh and kept fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mtgan import api
from mtgan.cli import main
from mtgan.config import load_config
from mtgan.data.tasks import build_tasks
from mtgan.errors import ConfigError, RunError
from mtgan.metrics import get_extractor
from mtgan.training import Trainer
from mtgan.training.init_from import Networks, plan, split_size, start_from

SMALL = [
    "model.z_dim=8",
    "model.g_hidden=[32,32]",
    "model.d_hidden=[32,32]",
    "model.share.generator=trunk",
    "model.share.discriminator=trunk",
    "train.batch_size=8",
    "train.steps=4",
    "train.log_every=2",
    "train.sample_every=4",
    "train.checkpoint_every=4",
    "train.samples_per_task=4",
    "train.loggers=[jsonl]",
    "train.progress=false",
    "train.device=cpu",
    "train.precision=fp32",
    "train.channels_last=false",
    "train.keep_heap=false",
]
NINE = [*SMALL, "data.tasks=[[0],[1],[2],[3],[4],[5],[6],[7],[8]]", "data.limit=16"]
TENTH = [*SMALL, "data.tasks=[[9]]", "data.per_task=5"]
OWN = [
    "generator.blocks.0",
    "generator.blocks.2",
    "discriminator.blocks.0",
    "discriminator.blocks.2",
]
TRUNK = ["generator.blocks.1.affine", "discriminator.blocks.1.affine"]


@pytest.fixture(scope="module")
def nine(tmp_path_factory) -> Path:
    """A finished pertask run on the digits 0-8 (with EMA, as the preset has it)."""
    out = tmp_path_factory.mktemp("init") / "nine"
    api.train("pertask", NINE, out=out, quiet=True)
    return out


def _source(run: Path) -> dict[str, torch.Tensor]:
    return api.Run(run).weights().state_dict()


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The model's and the EMA copy's tensors as loaded (`weights()` would recompute the
    EMA's batch-norm statistics first)."""
    return torch.nn.ModuleDict({"model": trainer.model, "ema": trainer.ema}).state_dict()


def _under(state: dict[str, torch.Tensor], prefixes: list[str], root: str = "model."):
    return {k: v for k, v in state.items() if any(k.startswith(root + p) for p in prefixes)}


def test_shared_trunk_is_loaded_and_the_new_tasks_own_layers_start_fresh(nine):
    config = load_config("pertask", [*TENTH, f"train.init_from={nine}"])
    fresh = _state(Trainer(config))  # the same seed, nothing loaded
    trainer = Trainer(config)
    report = start_from(trainer, api.Run(nine))
    now, source = _state(trainer), _source(nine)
    trunk = _under(now, TRUNK)
    assert len(trunk) == 4
    for name, value in trunk.items():
        assert torch.equal(value, source[name]), name
    for name, value in _under(now, TRUNK, "ema.net.").items():  # the source's EMA, too
        assert torch.equal(value, source[name]), name
    own = _under(now, [f"{p}.affine" for p in OWN])
    assert len(own) == 8
    for name, value in own.items():
        assert torch.equal(value, fresh[name]), name
        assert name in report.fresh and "train.init_task" in report.fresh[name]
    assert set(report.loaded) >= set(trunk) and not report.copied
    assert report.step == 4 and report.source.endswith("step-0000004")


def test_init_task_copies_that_tasks_slice_into_every_new_copy(nine):
    config = load_config("pertask", [*TENTH, f"train.init_from={nine}", "train.init_task=3"])
    trainer = Trainer(config)
    report = start_from(trainer, api.Run(nine))
    now, source = _state(trainer), _source(nine)
    own = {
        **_under(now, OWN),
        **_under(now, [p.removeprefix("generator.") for p in OWN[:2]], "ema.net."),
    }
    assert len(own) >= 16
    for name, value in own.items():
        if name.endswith("num_batches_tracked"):
            continue
        old = source[name]
        assert value.shape[0] == old.shape[0] // 9
        assert torch.equal(value, old.unflatten(0, (9, -1))[3]), name
    assert not report.fresh and len(report.copied) >= 16
    beyond = load_config("pertask", [*TENTH, f"train.init_from={nine}", "train.init_task=9"])
    with pytest.raises(ConfigError, match=r"train.init_task=9: .* has tasks 0..8"):
        start_from(Trainer(beyond), api.Run(nine))


def test_nearest_copies_the_source_task_whose_images_are_nearest(nine, tmp_path):
    # the new task is digit 4 from 5 images: of digits 0-8, the nearest mean digit feature is
    # digit 4's own, and each distance is the one computed directly from the images
    four = [*SMALL, "data.tasks=[[4]]", "data.per_task=5", f"train.init_from={nine}"]
    config = load_config("pertask", [*four, "train.init_task=nearest"])
    trainer = Trainer(config)
    report = start_from(trainer, api.Run(nine))
    assert report.task == 4 and report.copied and not report.fresh
    extractor = get_extractor("digits")
    new_data, old_data = (
        build_tasks(config.data, config.seed),
        build_tasks(api.Run(nine).config.data, api.Run(nine).config.seed),
    )
    target = extractor(new_data.to_display(new_data.x)).double().mean(0)
    direct = [
        float((extractor(old_data.to_display(old_data.task(k))).double().mean(0) - target)
              .square().sum())
        for k in range(9)
    ]  # fmt: skip
    assert report.distances == pytest.approx(direct, rel=1e-9)
    assert min(direct) == direct[4] and sorted(direct)[1] > 1.05 * direct[4]
    # the same weights as naming task 4
    named = Trainer(load_config("pertask", [*four, "train.init_task=4"]))
    start_from(named, api.Run(nine))
    assert all(torch.equal(a, b) for a, b in zip(_state(trainer).values(), _state(named).values()))
    assert (
        main(["train", "pertask", *four, "train.init_task=nearest", "--out", str(tmp_path / "r")])
        == 0
    )
    record = json.loads((tmp_path / "r" / "init.json").read_text())
    assert record["init_task"] == 4 and record["nearest_distances"] == pytest.approx(direct)
    assert main(["describe", "pertask", *four, "train.init_task=nearest"]) == 0
    points = [*SMALL, "data.name=ring8", "data.tasks=[[0]]", f"train.init_from={nine}"]
    ring = load_config("pertask", [*points, "train.init_task=nearest"])
    with pytest.raises(ConfigError, match=r"source run's data are \(1, 28, 28\) and this run's"):
        start_from(Trainer(ring), api.Run(nine))


def test_copies_are_split_generically_by_shape_alone():
    # A user's network with no stacking of ours: a grouped convolution (K·8, 3, 3, 3) and a
    # shared tensor; task 2 of a 4-task source into a 2-task model.
    before, after = Networks((0, 1, 2, 3), (0, 1, 2, 3), 4), Networks((0, 1), (0, 1), 2)
    source = {
        "model.discriminator.conv.weight": torch.randn(4 * 8, 3, 3, 3),
        "model.discriminator.shared.weight": torch.randn(5, 5),
        "model.generator.odd": torch.randn(12, 2),
    }
    target = {
        "model.discriminator.conv.weight": torch.zeros(2 * 8, 3, 3, 3),
        "model.discriminator.shared.weight": torch.zeros(5, 5),
        "model.generator.odd": torch.zeros(7, 2),
        "model.generator.new": torch.zeros(3),
    }
    values, report = plan(target, source, before, after, task=2)
    slice2 = source["model.discriminator.conv.weight"].unflatten(0, (4, 8))[2]
    assert torch.equal(values["model.discriminator.conv.weight"], torch.cat([slice2, slice2]))
    assert (
        values["model.discriminator.shared.weight"] is source["model.discriminator.shared.weight"]
    )
    assert "no per-network split fits" in report.fresh["model.generator.odd"]
    assert report.fresh["model.generator.new"] == "not in the source"
    assert split_size(torch.Size([36, 4]), torch.Size([4, 4]), 9, 1) == 4
    assert split_size(torch.Size([36, 4]), torch.Size([4, 5]), 9, 1) is None


def _params(trainer: Trainer) -> dict[str, torch.Tensor]:
    named = trainer.model.named_parameters(remove_duplicate=False)
    return {n: p.detach().clone() for n, p in named}


@pytest.mark.parametrize("balancer", ["fixed", "mgda"])
def test_frozen_layers_stay_bit_identical_while_the_rest_trains(tiny, balancer):
    frozen = "model.freeze=[discriminator.blocks.0,generator.blocks.1.affine.*]"
    config = load_config("pertask", [*tiny, frozen, "train.ema=0.9", f"balance.g={balancer}"])
    trainer = Trainer(config)
    held = {id(p) for phase in trainer.phases for p in phase.params}
    # a gradient balancer weighs the gradients of what its phase updates, not the frozen ones
    sources = [phase.source for phase in trainer.phases if phase.source is not None]
    assert len(sources) == (balancer == "mgda")
    assert all(id(p) in held for source in sources for p in source.params)
    before = _params(trainer)
    for _ in range(4):
        trainer.train_step()
    after = _params(trainer)
    fixed = [
        n for n in before if n.startswith(("discriminator.blocks.0.", "generator.blocks.1.af"))
    ]
    assert len(fixed) == 4
    for name in before:
        param = dict(trainer.model.named_parameters())[name]
        if name in fixed:
            assert torch.equal(before[name], after[name]), name
            assert id(param) not in held and not param.requires_grad
        else:
            assert not torch.equal(before[name], after[name]), name
    ema = dict(trainer.ema.net.named_parameters())
    assert not torch.equal(
        ema["blocks.2.affine.weight"], before["generator.blocks.2.affine.weight"]
    )


def test_freeze_pattern_that_matches_nothing_names_it_and_the_layers(tiny):
    with pytest.raises(ConfigError) as e:
        Trainer(load_config("pertask", [*tiny, "model.freeze=[discriminator.block.0]"]))
    assert "'discriminator.block.0'" in str(e.value)
    assert "discriminator.blocks.0, discriminator.blocks.1" in str(e.value)
    with pytest.raises(ConfigError, match="freezes every parameter that phase 'g'"):
        Trainer(load_config("pertask", [*tiny, "model.freeze=[generator]"]))


def test_init_from_with_resume_is_refused_and_bad_sources_are_clear(nine, tmp_path, capsys):
    assert main(["train", "--resume", str(nine), "--init-from", str(nine)]) == 2
    err = capsys.readouterr().err
    assert "--init-from cannot be combined with --resume" in err and "Traceback" not in err

    out = tmp_path / "ten"
    assert (
        main(["train", "pertask", *TENTH, "--init-from", str(tmp_path / "nope"), "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err
    assert "train.init_from:" in err and "does not exist" in err and "Traceback" not in err
    assert not out.exists()

    (tmp_path / "empty").mkdir()
    assert main(["train", "pertask", *TENTH, "train.init_from=" + str(tmp_path / "empty")]) == 2
    assert "neither a run directory" in capsys.readouterr().err

    with pytest.raises(ConfigError, match="train.init_task=2 .* names no source run"):
        api.train("pertask", [*TENTH, "train.init_task=2"], out=tmp_path / "x", quiet=True)
    with pytest.raises(ConfigError, match="train.init_task=2 .* names no source run"):
        api.describe("pertask", [*TENTH, "train.init_task=2"])
    with pytest.raises(RunError, match="does not exist"):
        api.describe("pertask", [*TENTH, f"train.init_from={tmp_path / 'nope'}"])


def test_nine_digits_then_the_tenth_is_two_commands(nine, tmp_path, capsys):
    ten = tmp_path / "ten"
    step = nine / "checkpoints" / "step-0000004"  # a checkpoint works as well as the run
    freeze = "model.freeze=[discriminator.blocks.0]"
    args = ["train", "pertask", *TENTH, freeze, "--init-from", str(step), "--out", str(ten)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"init from {step} (step 4): 14 tensor(s) loaded" in err
    assert "new weights: generator.blocks.0, generator.blocks.2, discriminator.blocks.0" in err
    record = json.loads((ten / "init.json").read_text())
    assert record["source"] == str(step) and record["init_task"] is None
    assert "model.generator.blocks.1.affine.weight" in record["loaded"]
    assert record["frozen"] == [
        "discriminator.blocks.0.affine.weight",
        "discriminator.blocks.0.affine.bias",
    ]
    config = api.Run(ten).config
    assert config.train.init_from == str(step.absolute())  # config.yaml records the source

    # The frozen new layer keeps its fresh initialisation through training; the loaded trunk
    # has moved on from the source's.
    trained, source = _source(ten), _source(nine)
    fresh = Trainer(load_config("pertask", TENTH)).model.state_dict()
    for name in ("discriminator.blocks.0.affine.weight", "discriminator.blocks.0.affine.bias"):
        assert torch.equal(trained["model." + name], fresh[name]), name
    assert not torch.equal(
        trained["model.generator.blocks.1.affine.weight"],
        source["model.generator.blocks.1.affine.weight"],
    )

    # A resume continues the run (its recorded source is not loaded again).
    assert main(["train", "--resume", str(ten), "train.steps=6"]) == 0
    assert "init from" not in capsys.readouterr().err

    assert main(["describe", "pertask", *TENTH, freeze, f"train.init_from={nine}"]) == 0
    text = capsys.readouterr().out
    assert "frozen (model.freeze): 25,120 of" in text and "layers discriminator.blocks.0" in text
    assert f"init from {nine / 'checkpoints' / 'step-0000004'} (step 4): 8 tensor(s) loaded" in text


@pytest.mark.slow
def test_two_processes_start_from_the_same_weights_as_one(nine, tmp_path):
    """Every rank loads the source into the same seeded model: 2 processes train as one does."""
    import subprocess
    import sys

    from safetensors.torch import load_file
    from two_processes import max_diff

    flat = [*TENTH, "model.g_norm=none", "train.threads=1", f"train.init_from={nine}"]
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "mtgan", "train", "pertask", *flat, "--nproc", "2"]
    result = subprocess.run([*cmd, "--out", str(ddp)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    api.train("pertask", flat, out=tmp_path / "one", quiet=True)
    weights = [load_file(str(r / "checkpoints" / "step-0000004" / "weights.safetensors"))
               for r in (ddp, tmp_path / "one")]  # fmt: skip
    assert max_diff(*weights) < 1e-5

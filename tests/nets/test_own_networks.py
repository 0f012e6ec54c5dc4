"""A user's own networks through `model.arch: "package.module:factory"` (tests/combinations/
own_nets.py, outside the package): built, trained, resumed, sampled, evaluated and described
through the CLI and the API, beside balancers, precisions, accumulation and 2 processes."""

from __future__ import annotations

import numpy as np
import own_nets
import pytest
import torch
from own_nets_worker import SETUPS, STEPS
from own_nets_worker import config as worker_config
from two_processes import assert_two_equal_one, max_diff, trained

from mtgan import api
from mtgan.cli import main
from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.rundir import RunDir
from mtgan.training import Trainer

OWN = ["model.arch=own_nets:build", "model.options.width=16"]


def _config(tiny, *more: str):
    return load_config("pertask", [*tiny, *OWN, *more])


def test_the_cli_trains_resumes_samples_evaluates_and_describes_own_networks(
    tmp_path, tiny, capsys
):
    out = tmp_path / "run"
    assert (
        main(["train", "pertask", *tiny, *OWN, "train.steps=4", "--out", str(out), "--quiet"]) == 0
    )
    recorded = RunDir(out).load_config()
    assert recorded.model.arch == "own_nets:build" and recorded.model.options == {"width": 16}
    assert main(["train", "--resume", str(out), "train.steps=6", "--quiet"]) == 0
    assert RunDir(out).read_metrics()[-1]["step"] == 6
    npz = tmp_path / "s.npz"
    assert main(["sample", str(out), "--n", "4", "--out", str(npz), "--quiet"]) == 0
    with np.load(npz) as samples:
        images = [samples[k] for k in samples.files]
    assert images and all(np.isfinite(a).all() for a in images)
    assert main(["eval", str(out), "--metrics", "fid", "--n", "20"]) == 0
    assert "fid" in RunDir(out).read_eval()
    capsys.readouterr()
    assert main(["describe", "pertask", *tiny, *OWN]) == 0
    text = capsys.readouterr().out
    model = Trainer(_config(tiny)).model
    shared = sum(
        p.numel()
        for n in ("generator", "discriminator")
        for p in getattr(model, n).shared_parameters()
    )
    total = sum(p.numel() for p in model.parameters())
    assert f"{shared:,d} shared, {total - shared:,d} task-own" in text
    assert "g.trunk.0" in text and "shared by G0–G2" in text and "own (3 copies)" in text


def test_resume_is_bit_exact(tiny, interrupted):
    last, again = interrupted([*tiny, *OWN], 3, 3)
    assert last == again


@pytest.mark.parametrize(
    "extra",
    [
        ["balance.g=pcgrad"],
        ["balance.d=mgda"],
        ["train.precision=bf16"],
        ["train.precision=fp16"],
        ["loss.r1=1"],
    ],
    ids=["pcgrad", "mgda", "bf16", "fp16", "r1"],
)
def test_own_networks_train_beside_balancers_precisions_and_penalties(tiny, extra):
    trainer = Trainer(_config(tiny, *extra))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    records = [trainer.train_step(record=True) for _ in range(3)]
    assert records[-1]["skipped"] == 0
    assert all(np.isfinite(v) for r in records for v in r.values())
    after = trainer.model.state_dict()
    # the shared trunk and the task-own layers both learn
    for key in (
        "generator.trunk.0.linear.weight",
        "generator.inp.weight",
        "discriminator.mid.weight",
    ):
        assert not torch.equal(before[key], after[key]), key


def test_accumulating_two_micro_batches_equals_one_batch():
    # without batch norm: its statistics are per micro-batch
    one = trained(worker_config("plain"), STEPS)
    two = trained(worker_config("accumulate"), STEPS)
    assert max_diff(one, two) < 1e-5


@pytest.mark.slow
def test_two_processes_equal_one_with_own_networks(tmp_path):
    configs = {setup: worker_config(setup) for setup in SETUPS}
    assert_two_equal_one("own_nets_worker.py", tmp_path, configs, STEPS, 1e-5, "own networks")


def test_the_python_api_takes_the_factory_itself_and_records_its_path(tmp_path, tiny):
    config = load_config("pertask", tiny).model_dump()
    config["model"].update(arch=own_nets.build, options={"width": 16})
    run = api.train(config, ["train.steps=2"], out=tmp_path / "run", quiet=True)
    assert RunDir(run.path).load_config().model.arch == "own_nets:build"
    local = {**config, "model": {**config["model"], "arch": lambda spec: None}}
    with pytest.raises(ConfigError, match="cannot be imported by that path"):
        load_config(local)


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("no_such_module:build", "cannot import no_such_module:build: ModuleNotFoundError"),
        ("own_nets:missing", "cannot import own_nets:missing: AttributeError"),
        ("own_nets:not_a_pair", "must return \\(generators, discriminators\\)"),
        (
            "own_nets:no_protocol",
            "do not follow mtgan.nets.protocol: the generators \\(Linear\\) lack copies",
        ),
    ],
)
def test_a_broken_factory_is_a_clear_error_through_the_cli(tmp_path, tiny, capsys, arch, message):
    out = tmp_path / "run"
    assert main(["train", "pertask", *tiny, f"model.arch={arch}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not out.exists()


def test_unknown_factory_options_name_the_known_ones(tiny, capsys):
    assert main(["describe", "pertask", *tiny, *OWN, "model.options.colour=3"]) == 2
    assert "unknown model.options ['colour']; known: width, depth, norm" in capsys.readouterr().err


@pytest.mark.slow
def test_mtgan_train_nproc_2_imports_the_factory_in_every_process(tmp_path, tiny):
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = Path(own_nets.__file__).parent  # where a user's module lives: on their path
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "mtgan", "train", "pertask", *tiny, *OWN, "train.steps=2"]
    result = subprocess.run(
        [*cmd, "--nproc", "2", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert RunDir(out).load_config().model.arch == "own_nets:build"
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-0000002"

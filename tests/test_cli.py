"""The command line end to end on a tiny config: train, resume, sample, describe, presets, and
clear errors for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mtgan.cli import main, parse


def test_train_resume_sample_describe(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    assert main(["train", "pertask", *tiny, "train.steps=24", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"run directory: {out}" in err and "finished 24 steps" in err
    assert (out / "config.yaml").exists() and (out / "checkpoints" / "latest").exists()
    grids = {p.name for p in (out / "samples").glob("step-0000024-*.png")}
    assert grids == {f"step-0000024-task{k:02d}.png" for k in range(3)} | {"step-0000024-all.png"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(2, 25, 2))
    assert {"d/loss", "g/loss", "d/adversarial/task2", "d/grad_norm"} <= records[0].keys()

    assert main(["train", "--resume", str(out), "train.steps=36"]) == 0
    assert "finished step 36 (from 24)" in capsys.readouterr().err
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-0000036"
    assert len(list((out / "checkpoints").glob("step-*"))) == 3  # train.keep_checkpoints

    assert (
        main(
            ["sample", str(out), "--task", "digit 7", "--n", "6", "--out", str(tmp_path / "s.png")]
        )
        == 0
    )
    image = Image.open(tmp_path / "s.png")
    assert image.size[0] > 28 * 2
    assert (
        main(["sample", str(out), "--task", "1", "--n", "5", "--out", str(tmp_path / "s.npz")]) == 0
    )
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["x"].shape == (5, 28, 28, 1)  # NHWC uint8, as external FID tools read it
    assert arrays["x"].dtype == np.uint8

    assert main(["describe", "pertask", *tiny]) == 0
    text = capsys.readouterr().out
    assert "shared by G0–G2" in text and "own (3 copies)" in text


def test_sample_needs_no_training_data(tmp_path, tiny, monkeypatch):
    out = tmp_path / "run"
    main(["train", "pertask", *tiny, "--out", str(out), "--quiet"])
    import mtgan.data

    def refuse(*args, **kwargs):
        raise AssertionError("sampling must not load the training data")

    monkeypatch.setattr(mtgan.data, "build_tasks", refuse)
    monkeypatch.setattr("mtgan.training.trainer.build_tasks", refuse)
    assert main(["sample", str(out), "--n", "3", "--out", str(tmp_path / "x.npz")]) == 0


def test_presets_lists_every_preset_with_a_description(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines}
    assert {"baseline", "seed", "pertask", "independent"} <= names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_user_mistakes_give_one_clear_message_and_exit_2(tmp_path, tiny, capsys):
    assert main(["train", "pertask", "train.step=5", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "train.step" in err and "train.steps" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()

    assert main(["train", "pertsk"]) == 2
    assert "pertask" in capsys.readouterr().err

    assert main(["sample", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a run directory" in capsys.readouterr().err

    out = tmp_path / "run"
    main(["train", "pertask", *tiny, "--out", str(out), "--quiet"])
    assert main(["train", "pertask", *tiny, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["sample", str(out), "--task", "digit 5", "--out", str(tmp_path / "x.png")]) == 2
    assert "digit 7" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mtgan", "presets"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "pertask" in result.stdout


def test_conditional_run_samples_one_class_and_refuses_others(tmp_path, capsys):
    out = tmp_path / "acgan"
    small = ["data.limit=40", "model.g_hidden=[16,16]", "model.d_hidden=[16,16]", "model.z_dim=8"]
    small += ["train.steps=4", "train.batch_size=10", "train.loggers=[jsonl]", "eval.metrics=[]"]
    assert main(["train", "acgan", *small, "train.progress=false", "--out", str(out)]) == 0
    assert (
        main(["sample", str(out), "--label", "3", "--n", "4", "--out", str(tmp_path / "3.npz")])
        == 0
    )
    assert np.load(tmp_path / "3.npz")["x"].shape == (4, 28, 28, 1)
    capsys.readouterr()
    assert main(["sample", str(out), "--label", "12", "--out", str(tmp_path / "x.npz")]) == 2
    assert "classes 0..9" in capsys.readouterr().err


def test_presets_balancers_lists_the_registry(capsys):
    assert main(["presets", "--balancers"]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert {"fixed", "pcgrad", "mgda", "cagrad", "uncertainty", "rlw", "gman"} <= names


def test_overrides_may_follow_the_options(capsys):
    ns = parse(["train", "pertask", "--out", "x", "train.steps=3", "seed=1"])
    assert ns.args == ["pertask", "train.steps=3", "seed=1"] and str(ns.out) == "x"
    with pytest.raises(SystemExit):  # not a key=value: still refused, by name
        parse(["train", "pertask", "--out", "x", "stray"])
    assert "unrecognized arguments: stray" in capsys.readouterr().err

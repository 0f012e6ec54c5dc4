"""No lost work: an evaluation that fails after training leaves the run complete and says how to
evaluate it again; a resume past its steps changes nothing; progress in a log file is plain
lines. (Issue 23's walkthrough, each case as a new user met it.)"""

from __future__ import annotations

import pytest

import mtgan
from mtgan.errors import FeatureError, RunError
from mtgan.metrics.registry import METRICS, Metric
from mtgan.rundir import RunDir
from mtgan.training.checkpoint import latest_checkpoint


def _failing_metric(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """A metric that fits every config and fails when it runs (as a metric whose needs cannot
    be checked before training would)."""

    def fn(ctx):
        raise error

    monkeypatch.setitem(METRICS, "boom", Metric("boom", fn, {"boom": "min"}, place=99))


def test_a_failing_final_evaluation_keeps_the_trained_steps(tmp_path, tiny, monkeypatch):
    _failing_metric(monkeypatch, FeatureError("no features for these images"))
    with pytest.raises(RunError) as info:
        mtgan.train("pertask", [*tiny, "eval.metrics=[boom]"], out=tmp_path / "run", quiet=True)
    message = str(info.value)
    assert "evaluation at step 6 failed: no features for these images" in message
    assert f"mtgan eval {tmp_path / 'run'} --metrics boom" in message
    assert "--resume" not in message  # the training is finished; only the evaluation is not
    assert latest_checkpoint(RunDir(tmp_path / "run").checkpoints).name == "step-0000006"


def test_a_bug_in_an_evaluation_still_saves_first(tmp_path, tiny, monkeypatch, capsys):
    _failing_metric(monkeypatch, RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):  # a bug keeps its traceback
        mtgan.train("pertask", [*tiny, "eval.metrics=[boom]"], out=tmp_path / "run")
    assert latest_checkpoint(RunDir(tmp_path / "run").checkpoints).name == "step-0000006"
    assert "evaluation at step 6 failed: a bug" in capsys.readouterr().err


def test_a_failing_evaluation_mid_run_saves_that_step(tmp_path, tiny, monkeypatch):
    _failing_metric(monkeypatch, FeatureError("no features"))
    overrides = [*tiny, "eval.metrics=[boom]", "eval.every=4", "train.checkpoint_every=100"]
    with pytest.raises(RunError) as info:
        mtgan.train("pertask", overrides, out=tmp_path / "run", quiet=True)
    assert f"continue with `mtgan train --resume {tmp_path / 'run'}`" in str(info.value)
    assert latest_checkpoint(RunDir(tmp_path / "run").checkpoints).name == "step-0000004"


def test_resume_past_its_steps_changes_nothing(tmp_path, tiny):
    run = tmp_path / "run"
    mtgan.train("pertask", tiny, out=run, quiet=True)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(RunError, match=r"at step 6, past train.steps=3: nothing to train"):
        mtgan.train(resume=run, overrides=["train.steps=3"], quiet=True)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_progress_in_a_log_file_is_a_few_plain_lines(tmp_path, tiny, capsys):
    overrides = [o for o in tiny if not o.startswith("train.progress")]
    mtgan.train("pertask", [*overrides, "train.steps=40"], out=tmp_path / "run")
    err = capsys.readouterr().err  # captured: not a terminal
    lines = [line for line in err.splitlines() if line.startswith("train ")]
    assert "\r" not in err
    assert len(lines) == 10 and lines[-1].startswith("train 40/40 (100 %)")
    assert "finished 40 steps" in err


def test_a_run_on_own_data_does_not_claim_the_bundled_data(tmp_path):
    from mtgan.config import load_config

    config = load_config("pertask", [f"data.path={tmp_path}"])
    assert config.data.name is None
    assert config.description.startswith(f"the pertask preset on data.path={tmp_path}; ")
    assert load_config("pertask").description.startswith("The 10 digit classes")


def test_the_api_docstring_names_functions_that_exist():
    import re

    import mtgan.api

    for name in re.findall(r"mtgan\.(\w+)\(", mtgan.api.__doc__):
        assert callable(getattr(mtgan, name)), name

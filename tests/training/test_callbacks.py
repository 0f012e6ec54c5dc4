"""Python-API callbacks: each hook fires as often as its event happens, with the values the run
directory records; missing hooks are skipped; one that raises stops the run with a RunError
naming it, the last checkpoint intact and resumable."""

from __future__ import annotations

import pytest
from test_loggers import SMALL

from mtgan import api
from mtgan.errors import ConfigError, RunError
from mtgan.training.checkpoint import latest_checkpoint


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []

    def on_log(self, record):
        self.calls.append(("log", dict(record)))

    def on_eval(self, step, result):
        self.calls.append(("eval", step, dict(result)))

    def on_checkpoint(self, step, path):
        complete = (path / "weights.safetensors").exists() and (path / "state.pt").exists()
        latest = latest_checkpoint(path.parent) == path
        self.calls.append(("checkpoint", step, path.name, complete and latest))

    def on_stop(self, reason, step):
        self.calls.append(("stop", reason, step))


def _train(tmp_path, callbacks, *extra):
    return api.train(
        "gan-2d", [*SMALL, *extra], out=tmp_path / "run", quiet=True, callbacks=callbacks
    )


def test_every_hook_fires_with_what_the_run_records(tmp_path):
    recorder = Recorder()
    run = _train(tmp_path, [recorder])  # 6 steps: logs at 2, 4, 6; evaluations at 3, 6
    kinds = [c[0] for c in recorder.calls]
    assert kinds.count("log") == 3 and kinds.count("eval") == 2 and kinds[-1] == "stop"
    logs = [c[1] for c in recorder.calls if c[0] == "log"]
    assert logs == [r for r in run.metrics() if "d/loss" in r]
    assert all("lr/d" in r and "lr/g" in r for r in logs)
    evals = [(c[1], c[2]) for c in recorder.calls if c[0] == "eval"]
    recorded = [r for r in run.metrics() if "eval/modes" in r]
    assert [s for s, _ in evals] == [r["step"] for r in recorded] == [3, 6]
    assert [res["modes"] for _, res in evals] == [r["eval/modes"] for r in recorded]
    # the first checkpoint (step 0), the interval one (3), the last one (6): each complete
    checkpoints = [c[1:] for c in recorder.calls if c[0] == "checkpoint"]
    assert checkpoints == [(s, f"step-{s:07d}", True) for s in (0, 3, 6)]
    assert recorder.calls[-1] == ("stop", "steps", 6)


class OnlyStop:
    def __init__(self):
        self.stops = []

    def on_stop(self, reason, step):
        self.stops.append((reason, step))


def test_missing_hooks_are_skipped_and_until_stops_are_reported(tmp_path):
    only = OnlyStop()
    until = ["train.steps=30", "train.until.metric=hq", "train.until.patience=1"]
    run = _train(tmp_path, [only], "train.checkpoint_every=1000", *until)
    (stop,) = [r for r in run.metrics() if r.get("event") == "stop"]
    assert only.stops == [(stop["reason"], stop["step"])]


def test_an_object_with_no_hook_is_refused_before_anything_is_built(tmp_path):
    class Typo:
        def on_logs(self, record): ...

    with pytest.raises(ConfigError, match=r"callbacks\[1\] \(Typo\).*did you mean on_log"):
        _train(tmp_path, [OnlyStop(), Typo()])
    assert not (tmp_path / "run").exists()


class Explodes:
    def __init__(self, at: int):
        self.at = at

    def on_log(self, record):
        if record["step"] == self.at:
            raise ValueError("no space for my plot")


def test_a_raising_callback_stops_the_run_cleanly_and_it_resumes(tmp_path):
    with pytest.raises(RunError) as info:
        _train(tmp_path, [Explodes(at=4)], "train.loggers=[csv]")
    message = str(info.value)
    assert "callback Explodes.on_log raised ValueError: no space for my plot" in message
    assert "its last checkpoint, step-0000003, is intact" in message and "resume=" in message
    assert isinstance(info.value.__cause__, ValueError)  # the user's traceback is kept
    run = tmp_path / "run"
    assert latest_checkpoint(run / "checkpoints").name == "step-0000003"
    resumed = api.train(resume=run, quiet=True)
    logged = [r["step"] for r in resumed.metrics() if "d/loss" in r]
    assert resumed.step == 6 and logged == [2, 4, 6]

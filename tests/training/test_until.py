"""`train.until`: a run stops when its tracked metric has stopped improving, keeps the best
checkpoint, records why, and a resume of a stopped run is a no-op unless asked for more."""

from __future__ import annotations

import json
import math

import pytest

from mtgan import api
from mtgan.config import UntilConfig, load_config
from mtgan.errors import ConfigError
from mtgan.training.until import CONVERGED, DIVERGED, Until


def _observe(until: Until, values: list[float], key: str) -> list[tuple[bool, str | None]]:
    return [until.observe(10 * (i + 1), {key: v}) for i, v in enumerate(values)]


def test_lower_is_better_metric_converges_after_patience_without_gain():
    until = Until(UntilConfig(metric="fid", patience=2, min_delta=0.5))
    seen = _observe(until, [10.0, 8.0, 7.8, 7.9], "fid")  # 7.8 is no gain of more than 0.5
    assert [best for best, _ in seen] == [True, True, False, False]
    assert seen[-1][1] == CONVERGED and until.best == 8.0 and until.best_step == 20


def test_a_relative_least_gain_scales_with_the_best_value():
    # 1 % of the best: from 200, 199 and 198.5 are no gain (2 needed) and 197.9 is; from
    # 197.9, 196.5 and 196.0 are none (1.979 needed)
    until = Until(UntilConfig(metric="kid", patience=3, min_rel_delta=0.01))
    seen = _observe(until, [200.0, 199.0, 198.5, 197.9, 196.5, 196.0, 196.0], "kid")
    assert [best for best, _ in seen] == [True, False, False, True, False, False, False]
    assert seen[-1][1] == CONVERGED and until.best == 197.9 and until.best_step == 40
    assert "by more than 1.979 " in until.describe(CONVERGED, 70)
    # the larger of the two wins: an absolute 5 beats 1 % of 200
    both = Until(UntilConfig(metric="kid", patience=1, min_delta=5.0, min_rel_delta=0.01))
    assert _observe(both, [200.0, 196.0], "kid")[-1] == (False, CONVERGED)
    # higher is better: 1 % of 0.9 must be gained upwards
    up = Until(UntilConfig(metric="accuracy", patience=1, min_rel_delta=0.01))
    assert _observe(up, [0.9, 0.905], "accuracy")[-1] == (False, CONVERGED)
    assert _observe(Until(up.config), [0.9, 0.91], "accuracy")[-1] == (True, None)


def test_higher_is_better_metric_and_divergence_by_factor():
    until = Until(UntilConfig(metric="accuracy", patience=10, diverge=2.0))
    seen = _observe(until, [0.5, 0.9, 0.6, 0.44], "accuracy")  # 0.44 < 0.9 / 2
    assert [reason for _, reason in seen] == [None, None, None, DIVERGED]
    nan = Until(UntilConfig(metric="fid", patience=10, diverge=3.0))
    assert _observe(nan, [5.0, math.nan], "fid")[-1] == (False, DIVERGED)


def test_a_metric_never_finite_is_a_divergence_not_a_convergence():
    until = Until(UntilConfig(metric="kid", patience=2))
    seen = _observe(until, [math.nan, math.inf], "kid")
    assert seen == [(False, None), (False, DIVERGED)] and until.best is None
    assert until.describe(DIVERGED, 20) == (
        "diverged at step 20: kid was not finite in any of its 2 evaluations"
    )


def test_state_round_trip_continues_the_count():
    until = Until(UntilConfig(metric="fid", patience=3))
    _observe(until, [3.0, 4.0], "fid")
    again = Until(UntilConfig(metric="fid", patience=3))
    again.load_state_dict(until.state_dict())
    assert again.observe(30, {"fid": 4.0}) == (False, None)
    assert again.observe(40, {"fid": 4.0}) == (False, CONVERGED)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.until.metric=fid"], "not in eval.metrics"),
        (["train.until.metric=fid", "eval.metrics=[fid]"], "set eval.every"),
        (["train.until.metric=kid_std", "eval.metrics=[kid]", "eval.every=5"], "better side"),
        (["train.until.patience=2"], "train.until.metric: required"),
        (["train.until.metric=fid", "train.until.patience=0"], "train.until.patience"),
        (["train.until.metric=fid", "train.until.min_rel_delta=1.5"], "min_rel_delta"),
    ],
)
def test_wrong_until_names_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("pertask", overrides)


RUN = [
    "data.n_points=400",
    "model.g_hidden=[32,32]",
    "model.d_hidden=[32,32]",
    "train.batch_size=32",
    "train.log_every=10",
    "train.checkpoint_every=20",
    "train.keep_checkpoints=1",
    "train.sample_every=1000",
    "train.progress=false",
    "train.loggers=[jsonl]",
    "eval.metrics=[modes]",
    "eval.n=300",
    "eval.every=20",
    "train.until.metric=hq",
    "train.until.patience=2",
    "train.steps=2000",
]


def test_a_run_stops_keeps_its_best_checkpoint_and_resumes_only_when_asked(tmp_path):
    out = tmp_path / "run"
    run = api.train("gan-2d", RUN, out=out, quiet=True)
    stops = [r for r in run.metrics() if r.get("event") == "stop"]
    assert len(stops) == 1
    stop = stops[0]
    assert stop["reason"] == CONVERGED and stop["step"] < 2000 and stop["metric"] == "hq"
    evals = [r for r in run.metrics() if "eval/hq" in r]
    best = max(evals, key=lambda r: (r["eval/hq"], -r["step"]))  # the first best one
    assert stop["best_step"] == best["step"] and stop["best_value"] == best["eval/hq"]
    # patience 2: the stop comes two evaluations after the best
    assert stop["step"] == best["step"] + 2 * 20
    final = json.loads((out / "eval.json").read_text())
    assert final["step"] == stop["step"] and final["stop"]["reason"] == CONVERGED
    # keep_checkpoints=1 prunes everything else, but not the best one
    best_dir = (out / "checkpoints" / "best").read_text().strip()
    assert best_dir == f"step-{stop['best_step']:07d}" and (out / "checkpoints" / best_dir).is_dir()
    assert api.Run(out, checkpoint="best").step == stop["best_step"]
    assert api.Run(out).step == stop["step"]

    records = len(run.metrics())
    again = api.train(resume=out, quiet=True)
    assert again.step == stop["step"] and len(again.metrics()) == records  # a no-op

    more = api.train(resume=out, overrides=["train.until.patience=3"], quiet=True)
    stops = [r for r in more.metrics() if r.get("event") == "stop"]
    assert len(stops) == 2 and stops[-1]["step"] >= stop["step"] + 20


def test_evaluating_the_best_checkpoint_keeps_the_final_record(tmp_path):
    from mtgan import cli

    out = tmp_path / "run"
    api.train("gan-2d", [*RUN, "train.until.patience=1"], out=out, quiet=True)
    final = json.loads((out / "eval.json").read_text())
    assert cli.main(["eval", str(out), "--checkpoint", "best", "--n", "100"]) == 0
    best = json.loads((out / "eval-best.json").read_text())
    assert best["step"] == final["stop"]["best_step"]
    assert json.loads((out / "eval.json").read_text()) == final  # untouched
    assert cli.main(["eval", str(out), "--n", "100"]) == 0  # the latest: eval.json, stop kept
    assert json.loads((out / "eval.json").read_text())["stop"] == final["stop"]

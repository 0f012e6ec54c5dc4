"""`train.until` beside every preset: tracking the first value with a better side that the
preset's default metrics report, a run stops, keeps its best checkpoint, records why, resumes
as a no-op, and `sample` / `eval --checkpoint best` read that checkpoint."""

from __future__ import annotations

import json

import pytest
from matrix import PRESETS, tiny

from mtgan import api, cli
from mtgan.config import load_config
from mtgan.metrics.registry import METRICS, default_metrics
from mtgan.training.until import CONVERGED

# The tiny runs' references are far smaller than any feature width: the warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore:.*(strongly biased|rank-deficient):UserWarning")
EVERY = 2
# min_delta so large that no evaluation after the first counts as a gain: the stop comes at
# the second evaluation whatever the curves do, so the test pins the bookkeeping, not training.
UNTIL = ["train.until.patience=1", "train.until.min_delta=1e9", f"eval.every={EVERY}"]
EVAL = ["eval.n=40", "eval.kid_subsets=4", "eval.kid_subset_size=20", "eval.k=3"]


def tracked(preset: str) -> tuple[str, str]:
    """(metric, value key): the first default metric with a directed value."""
    for name in default_metrics(load_config(preset)):
        for key, direction in METRICS[name].directions.items():
            if direction is not None:
                return name, key
    raise AssertionError(f"{preset}: no default metric has a better side")


@pytest.mark.parametrize("preset", PRESETS)
def test_until_stops_every_preset_and_keeps_its_best(tmp_path, capsys, preset):
    metric, key = tracked(preset)
    overrides = tiny(preset, *EVAL, *UNTIL, f"eval.metrics=[{metric}]", "train.steps=8")
    overrides.remove("eval.metrics=[]")
    out = tmp_path / "run"
    run = api.train(preset, [*overrides, f"train.until.metric={key}"], out=out, quiet=True)
    stops = [r for r in run.metrics() if r.get("event") == "stop"]
    assert [(s["reason"], s["step"], s["best_step"]) for s in stops] == [
        (CONVERGED, 2 * EVERY, EVERY)
    ]
    assert json.loads((out / "eval.json").read_text())["stop"]["step"] == 2 * EVERY
    assert api.Run(out, checkpoint="best").step == EVERY
    again = api.train(resume=out, quiet=True)
    assert again.step == 2 * EVERY and len(again.metrics()) == len(run.metrics())

    samples = tmp_path / "best.npz"
    assert (
        cli.main(["sample", str(out), "--checkpoint", "best", "--n", "4", "--out", str(samples)])
        == 0
    )
    capsys.readouterr()
    assert cli.main(["eval", str(out), "--checkpoint", "best", "--n", "40"]) == 0
    assert json.loads((out / "eval-best.json").read_text())["step"] == EVERY

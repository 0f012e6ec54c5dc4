"""`describe`, `sample` and `eval` (with its default metrics) for every preset, through the
command line, on a run of a few steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matrix import PRESETS, tiny

from mtgan import api, cli
from mtgan.metrics.registry import METRICS, default_metrics, metric_of

EVAL = ["eval.kid_subsets=4", "eval.kid_subset_size=20", "eval.k=3"]


@pytest.mark.parametrize("preset", PRESETS)
def test_describe_sample_and_eval(tmp_path, capsys, preset):
    overrides = tiny(preset, *EVAL)
    assert cli.main(["describe", preset, *overrides]) == 0
    described = capsys.readouterr().out
    assert "phases:" in described and "phase d:" in described and "phase g:" in described
    run = api.train(preset, overrides, out=tmp_path / "run", quiet=True)
    out = tmp_path / "samples.npz"
    assert cli.main(["sample", str(run.path), "--n", "6", "--out", str(out)]) == 0
    with np.load(out) as arrays:
        samples = next(iter(arrays.values()))
    assert samples.shape[0] == 6 and np.isfinite(samples).all()
    capsys.readouterr()
    assert cli.main(["eval", str(run.path), "--n", "40"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((run.path / "eval.json").read_text())
    expected = default_metrics(run.config)
    assert written["n"] == 40 and set(printed) <= set(written)
    for metric in expected:  # each default metric reported, under the keys it registered
        assert set(METRICS[metric].directions) & set(written), (metric, sorted(written))
    numbers = {k for k, v in written.items() if type(v) in (int, float)} - {"step", "n"}
    assert {metric_of(k) for k in numbers} == set(expected)  # nothing unregistered reported

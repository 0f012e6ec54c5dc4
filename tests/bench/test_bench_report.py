"""The bench report's header and the evaluation protocol it shows beside the table and curves."""

from __future__ import annotations

import re
from pathlib import Path

from mtgan import api
from mtgan.bench.plan import BenchRun, Protocol
from mtgan.bench.suite import write_outputs
from mtgan.report.history import RunResult, describe_protocol, protocol_lines
from mtgan.report.pages import shown_path

# The tiny fixture's settings of the machine and the sinks, kept for a gan-2d run.
MACHINE = ("train.device", "train.precision", "train.progress", "train.tensorboard",
           "train.loggers")  # fmt: skip

PROTOCOL = {"generated_per_task": 500, "reference": "heldout", "reference_per_task": [25, 40],
            "reference_total": 65, "features": "digits-abc", "feature_dim": 128,
            "resize": "none"}  # fmt: skip


def evaluated(label: str, seed: int, protocol: dict) -> RunResult:
    final = {"step": 100, "fid": 30.0, "protocol": protocol}
    return RunResult(label, seed, Path(f"/nowhere/{label}/{seed}"), final, curves={}, train=[],
                     seconds_at={})  # fmt: skip


def test_a_directory_under_the_working_directory_is_named_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runs/bench") == "runs/bench"
    assert shown_path(Path("runs/bench")) == "runs/bench"  # relative: as given
    assert shown_path(Path("../elsewhere/bench")) == "../elsewhere/bench"
    outside = tmp_path.parent / "elsewhere/bench"
    assert shown_path(outside) == str(outside)  # not under it: as given


def test_the_protocol_reads_as_one_line_per_distinct_protocol():
    text = describe_protocol(PROTOCOL)
    assert text == ("500 generated per task against 25–40 real per task (65 in all) from the "
                    "heldout split; features digits-abc (128-d), resize none")  # fmt: skip
    single = {**PROTOCOL, "reference_per_task": [2000], "reference_total": 2000}
    assert describe_protocol(single).startswith("500 generated against 2,000 real from")
    assert describe_protocol({}) == ""

    same = {"a": [evaluated("a", 0, PROTOCOL)], "b": [evaluated("b", 0, PROTOCOL)]}
    assert protocol_lines(same) == [f"Evaluation protocol: {text}."]
    other = {**PROTOCOL, "reference": "train"}
    differ = {"a": same["a"], "b": [evaluated("b", 0, other), evaluated("b", 1, {})]}
    lines = protocol_lines(differ)
    assert lines[0] == f"Evaluation protocol of a: {text}."
    assert lines[1].startswith("Evaluation protocol of b seed 0: 500 generated")
    assert "from the train split" in lines[1]
    assert lines[2] == "Evaluation protocol of b seed 1: not recorded."
    assert protocol_lines({"a": [evaluated("a", 0, {})]}) == []  # older runs: nothing to say


def test_bench_report_header_is_relative_and_the_protocol_is_shown(tmp_path, monkeypatch, tiny):
    bench = tmp_path / "bench"
    run = bench / "runs/gan-2d/seed0"
    machine = [o for o in tiny if o.startswith(MACHINE)]
    overrides = [*machine, "train.steps=6", "train.log_every=2", "eval.every=3", "eval.n=200",
                 "eval.metrics=[modes,stability]", "data.n_points=1000", "model.g_hidden=[16]",
                 "model.d_hidden=[16]", "train.batch_size=16", "train.sample_every=3"]  # fmt: skip
    api.train("gan-2d", overrides, out=run, quiet=True)
    monkeypatch.chdir(tmp_path)
    write_outputs(bench, [BenchRun("gan-2d", "gan-2d", 0, run)], Protocol(overrides, ["modes"], 3))

    page = (bench / "report.html").read_text()
    assert re.search(r'<p class="sub">bench · 1 runs', page)
    assert str(tmp_path) not in page.split("<section>")[0]  # no machine path in the header
    protocol = "Evaluation protocol: 200 generated against 200 real from the train split"
    assert page.count(protocol) == 2  # under the table and under the metric curves
    assert protocol in (bench / "summary.md").read_text()
    assert "The same throughout every run, not drawn: d/nonfinite = 0, g/nonfinite = 0" in page
    assert sorted(p.name for p in (bench / "figures").iterdir()) == [
        "grad_norms.png", "losses.png", "metrics.png"
    ]  # fmt: skip

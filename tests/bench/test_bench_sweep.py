"""`mtgan bench --sweep KEY=V1,V2,...`: every preset at every value, a table per value and each
metric drawn against the value; a tiny real sweep end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from mtgan.bench import run_bench
from mtgan.bench.plan import plan_runs, resolve_protocol
from mtgan.bench.suite import build_table
from mtgan.bench.sweep import _reference_note, parse_sweep, sweep_charts
from mtgan.cli import main
from mtgan.errors import ConfigError
from mtgan.report.curves import plot_sweep
from mtgan.report.history import RunResult

# gan-2d and mgan-2d in a few steps: small nets, few points, the machine of the tiny fixture.
TINY_2D = ["train.steps=6", "train.log_every=2", "train.batch_size=16", "train.sample_every=3",
           "train.checkpoint_every=3", "train.loggers=[jsonl]", "train.progress=false",
           "train.device=cpu", "train.precision=fp32", "model.g_hidden=[16]",
           "model.d_hidden=[16]", "eval.n=200", "data.n_points=1000", "data.heldout=0.1",
           "eval.reference=heldout"]  # fmt: skip


def test_a_sweep_spec_splits_at_top_level_commas_and_bad_specs_are_config_errors():
    sweep = parse_sweep("data.per_task=10, 25,100")
    assert sweep.key == "data.per_task" and sweep.values == ("10", "25", "100")
    assert sweep.settings() == ("data.per_task=10", "data.per_task=25", "data.per_task=100")
    assert parse_sweep("model.g_hidden=[16,16],[32]").values == ("[16,16]", "[32]")
    for text, needle in [("data.per_task", "expected KEY=V1,V2"), ("=1,2", "expected KEY"),
                         ("data.per_task=1,,2", "expected KEY"), ("seed=1,1", "twice"),
                         ("data.path=a/b,c", "cannot name a run directory")]:  # fmt: skip
        with pytest.raises(ConfigError, match=needle):
            parse_sweep(text)


def test_the_swept_key_is_refused_as_an_override_too_and_every_value_is_validated():
    with pytest.raises(ConfigError, match="also given as the override data.per_task=5"):
        resolve_protocol(
            ["gan-2d"], ["data.per_task=5"], None, None, parse_sweep("data.per_task=1,2")
        )
    with pytest.raises(ConfigError, match="data.per_task"):  # 0 is not a count
        resolve_protocol(["gan-2d"], [], None, None, parse_sweep("data.per_task=0,2"))
    with pytest.raises(ConfigError, match="--sweep seed: the bench sets it .* use --seeds"):
        resolve_protocol(["gan-2d"], [], None, None, parse_sweep("seed=1,2"))
    protocol, configs = resolve_protocol(["gan-2d"], [], None, None, parse_sweep("train.lr_g=1,2"))
    assert protocol.sweep == "train.lr_g"
    assert {k: c.train.lr_g for k, c in configs.items()} == {
        "gan-2d@train.lr_g=1": 1.0, "gan-2d@train.lr_g=2": 2.0
    }  # fmt: skip


def test_a_sweep_figure_draws_each_preset_at_the_swept_values():
    lines = {"a": [[1.0, 3.0], [2.0], []], "b": [[4.0], [5.0], [6.0]]}
    fig = plot_sweep("fid", "data.per_task", ["10", "25", "500"], [10, 25, 500], lines, True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "data.per_task"
    means = [line for line in ax.lines if line.get_label() in ("a", "b")]
    assert [list(line.get_xdata()) for line in means] == [[10, 25, 500]] * 2
    assert list(means[0].get_ydata()[:2]) == [2.0, 2.0] and math.isnan(means[0].get_ydata()[2])
    words = plot_sweep("fid", "train.schedule", ["alternating", "simultaneous"], None,
                       {"a": [[1.0], [2.0]]})  # fmt: skip
    assert [t.get_text() for t in words.axes[0].get_xticklabels()] == [
        "alternating",
        "simultaneous",
    ]


def test_a_tiny_sweep_trains_presets_by_values_then_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["bench", "gan-2d", "mgan-2d", *TINY_2D, "--sweep", "data.per_task=100,10",
            "--seed-list", "0", "--jobs", "2", "--eval-every", "3", "--baseline", "gan-2d",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    names = ["gan-2d@data.per_task=10", "gan-2d@data.per_task=100", "mgan-2d@data.per_task=10",
             "mgan-2d@data.per_task=100"]  # fmt: skip
    assert sorted(p.name for p in (out / "runs").iterdir()) == names  # 2 presets × 2 values
    assert all((out / "runs" / n / "seed0/eval.json").exists() for n in names)
    tasks = json.loads((out / "runs/mgan-2d@data.per_task=10/seed0/tasks.json").read_text())
    assert tasks["counts"] == [10]  # the real points it trained on

    # one table per value, the smaller value first, each with every preset and Δm
    summary = (out / "summary.md").read_text()
    heads = [line for line in summary.splitlines() if line.startswith("### ")]
    assert heads == ["### data.per_task=10", "### data.per_task=100"]
    assert printed.count("| preset | seeds | steps | modes") == 2
    for part in summary.split("### ")[1:]:
        rows = [line.split("|")[1].strip() for line in part.splitlines() if line.startswith("| ")]
        assert rows == ["preset", "gan-2d", "mgan-2d"]
        assert "Δm % vs gan-2d" in part
    assert "Real training points per task: 10 (data.per_task=10" in summary
    assert "differs across the values" not in summary  # one held-out reference for every N
    with (out / "summary.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [(r["data.per_task"], r["preset"]) for r in lines] == [
        ("10", "gan-2d"), ("10", "mgan-2d"), ("100", "gan-2d"), ("100", "mgan-2d")
    ]  # fmt: skip

    # a figure per metric, its x data the swept values, on a log axis (they span 10×)
    assert (out / "figures/sweep-modes.png").exists()
    sweep = parse_sweep("data.per_task=100,10")
    runs = plan_runs(out, ["gan-2d", "mgan-2d"], [0], sweep)
    tables = {v: build_table([r for r in runs if r.setting == f"data.per_task={v}"], None,
                             None).rows for v in sweep.values}  # fmt: skip
    fig = sweep_charts(sweep.key, tables, ["modes"])["modes"]
    drawn = [line for line in fig.axes[0].lines if line.get_label() in ("gan-2d", "mgan-2d")]
    assert [list(line.get_xdata()) for line in drawn] == [[10.0, 100.0]] * 2
    assert fig.axes[0].get_xscale() == "log"
    page = (out / "report.html").read_text()
    assert "Metrics against data.per_task" in page and "data.per_task=100: results" in page

    # again: every run is finished, nothing is trained; the report is rebuilt alike
    logs = {p: p.stat().st_size for p in (out / "logs").iterdir()}
    assert len(logs) == 4
    again = run_bench(["gan-2d", "mgan-2d"], TINY_2D, [0], jobs=2, out=out, eval_every=3,
                      quiet=True, sweep="data.per_task=10,100")  # fmt: skip
    assert not again.failed and {p: p.stat().st_size for p in logs} == logs
    assert main(["report", str(out), "--baseline", "mgan-2d"]) == 0
    assert (out / "summary.md").read_text().count("Δm % vs mgan-2d") == 4  # 2 tables, 2 notes
    # runs with another sweep, or none, would not compare: refused before training
    for other in ({"sweep": "train.lr_g=1e-4,2e-4"}, {}):
        with pytest.raises(ConfigError, match="sweep=data.per_task, not"):
            run_bench(["gan-2d"], TINY_2D, [0], out=out, eval_every=3, quiet=True, **other)


def test_a_bench_directory_without_a_sweep_refuses_one(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "bench.json").write_text(json.dumps(
        {"overrides": TINY_2D, "metrics": ["modes", "stability"], "eval_every": 3,
         "presets": ["gan-2d"]}))  # fmt: skip
    with pytest.raises(ConfigError, match="sweep=None, not data.per_task"):
        run_bench(["gan-2d"], TINY_2D, [0], out=out, eval_every=3, quiet=True,
                  sweep="data.per_task=10")  # fmt: skip
    assert not (out / "runs").exists()


def test_run_names_make_the_value_visible(tmp_path: Path):
    runs = plan_runs(tmp_path, ["gan-2d", "x.yaml"], [0, 1], parse_sweep("data.per_task=5,50"))
    assert [(r.name, r.seed) for r in runs][:3] == [
        ("gan-2d@data.per_task=5", 0), ("gan-2d@data.per_task=5", 1), ("gan-2d@data.per_task=50", 0)
    ]  # fmt: skip
    assert runs[-1].path == tmp_path / "runs/x@data.per_task=50/seed1"
    assert runs[-1].extra == ("data.per_task=50",)


def test_cli_bench_reports_a_bad_sweep_in_one_line(tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["bench", "gan-2d", "--sweep", "data.per_task", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "--sweep data.per_task: expected KEY=V1,V2" in err and "Traceback" not in err
    code = main(["bench", "gan-2d", "data.limit=40", "--sweep", "data.per_task=5,50", "--out",
                 str(out), "--quiet"])  # fmt: skip
    assert code == 2 and "per_task=5 and limit=40" in capsys.readouterr().err


def test_a_preset_judged_against_other_real_sets_at_other_values_is_pointed_out():
    def table(*per_seed: tuple[str, list[int]]) -> SimpleNamespace:
        protocols = [{"reference": split, "reference_per_task": n} for split, n in per_seed]
        results = [RunResult("a", seed, Path("."), {"protocol": p}, {}, [], {})
                   for seed, p in enumerate(protocols)]  # fmt: skip
        return SimpleNamespace(groups={"a": results})

    # seeds may differ (a 2D mixture is drawn per seed); one seed across values may not
    same = {"10": table(("heldout", [50]), ("heldout", [49])),
            "100": table(("heldout", [50]), ("heldout", [49]))}  # fmt: skip
    assert _reference_note("data.per_task", same) == []
    differ = {"10": table(("train", [10])), "100": table(("train", [100]))}
    (note,) = _reference_note("data.per_task", differ)
    assert "differs across the values of data.per_task" in note

"""The bench table: targets, time to target, mean ± std and stability columns."""

from __future__ import annotations

import math
from pathlib import Path

from mtgan.bench.summary import (
    default_targets,
    markdown_table,
    reached,
    summarise,
    summary_csv,
    table_columns,
)
from mtgan.report.history import RunResult, metric_keys


def result(label: str, seed: int, fid_curve: list[float], accuracy: float = 0.5) -> RunResult:
    steps = [100 * (i + 1) for i in range(len(fid_curve))]
    final = {"step": steps[-1], "ema": True, "fid": fid_curve[-1], "fid/task0": fid_curve[-1],
             "accuracy": accuracy, "nonfinite": seed, "diverged": 1, "g/loss_std": 0.1}  # fmt: skip
    return RunResult(
        label, seed, Path(f"/nowhere/{label}/{seed}"), final,
        curves={"fid": list(zip(steps, fid_curve))}, train=[],
        seconds_at={s: s / 10 for s in steps}, wall_s=5.0,
    )  # fmt: skip


def test_metric_keys_leave_out_per_task_bookkeeping_and_stability():
    assert metric_keys([result("a", 0, [50.0])]) == ["fid", "accuracy"]


def test_reached_is_the_first_evaluation_at_least_as_good_as_the_target():
    r = result("a", 0, [90.0, 70.0, 75.0, 40.0])
    assert reached(r, "fid", 75.0) == (200, 20.0)  # lower is better for FID
    assert reached(r, "fid", 10.0) is None
    r.curves["accuracy"] = [(100, 0.2), (200, 0.9)]
    assert reached(r, "accuracy", 0.5) == (200, 20.0)  # higher is better


def test_default_target_is_the_worst_presets_final_mean():
    groups = {
        "good": [result("good", 0, [80.0, 30.0]), result("good", 1, [80.0, 50.0])],
        "bad": [result("bad", 0, [90.0, 60.0]), result("bad", 1, [90.0, 80.0])],
    }
    assert default_targets(groups, ["fid"]) == {"fid": 70.0}
    rows = summarise(groups, ["fid", "accuracy"], {"fid": 70.0})
    good, bad = rows
    assert good.reach["fid"] == [(200, 20.0), (200, 20.0)]
    assert bad.reach["fid"] == [(200, 20.0), None]  # seed 1 ended at 80 > 70


def test_markdown_and_csv_hold_mean_std_and_reach_counts():
    groups = {"a": [result("a", 0, [60.0, 40.0]), result("a", 1, [60.0, 50.0])]}
    rows = summarise(groups, ["fid"], {"fid": 45.0})
    text = markdown_table(rows, ["fid"], {"fid": 45.0})
    header, _, line = text.splitlines()
    assert header.count("|") == len(table_columns(["fid"], {"fid": 45.0})) + 1
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:4] == ["a", "2", "200", "45 ± 7.1"]
    assert cells[4] == "200 ± 0 (1/2)" and cells[5] == "20 ± 0 (1/2)"
    assert cells[8] == "2" and cells[9] == "1"  # spikes summed (1 + 1), non-finite (0 + 1)
    csv_lines = summary_csv(rows, ["fid"], {"fid": 45.0}).splitlines()
    head = csv_lines[0].split(",")
    values = dict(zip(head, csv_lines[1].split(",")))
    assert math.isclose(float(values["fid_mean"]), 45.0)
    assert values["fid_reached"] == "1"


def evaluated(label: str, seed: int, values: dict[str, float], **protocol) -> RunResult:
    """A finished run whose eval.json holds `values` (and a protocol record, if given)."""
    final = {"step": 100, "ema": False, **values}
    if protocol:
        final["protocol"] = protocol
    return RunResult(label, seed, Path(f"/nowhere/{label}/{seed}"), final, curves={}, train=[],
                     seconds_at={}, wall_s=1.0)  # fmt: skip


def test_fid_cells_say_the_reference_size_and_split():
    protocol = {"reference": "heldout", "reference_per_task": [25, 40], "reference_total": 65}
    groups = {"a": [evaluated("a", s, {"fid": 30.0 + s, "fid_pooled": 20.0, "accuracy": 0.5},
                              **protocol) for s in (0, 1)]}  # fmt: skip
    keys = ["fid", "fid_pooled", "accuracy"]
    rows = summarise(groups, keys, {})
    line = markdown_table(rows, keys, {}).splitlines()[2]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3] == "30.5 ± 0.71 (N=25–40, heldout)"
    assert cells[4] == "20 ± 0 (N=65, heldout)"
    assert cells[5] == "0.5 ± 0"  # not an FID: no reference size
    csv_lines = summary_csv(rows, keys, {}).splitlines()
    values = dict(zip(csv_lines[0].split(","), csv_lines[1].split(",")))
    assert values["fid_reference_n"] == "25" and values["fid_pooled_reference_n"] == "65"
    assert values["reference"] == "heldout"
    assert groups["a"][0].reference_sizes("fid/task1") == [40]
    assert evaluated("old", 0, {"fid": 1.0}).reference_sizes("fid") == []  # no protocol record

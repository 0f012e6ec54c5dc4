"""The bench table: targets, time to target, mean ± std and stability columns."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mtgan.bench.summary import (
    default_targets,
    delta_m,
    delta_notes,
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


def test_delta_m_signs_follow_each_metrics_better_side():
    base = {"fid/task0": 50.0, "fid/task1": 40.0, "accuracy/task0": 0.5, "accuracy/task1": 0.8}
    # FID lower is better: 40 against 50 is a 20 % gain; accuracy higher is better: 0.6 vs 0.5 too
    better = delta_m({"fid/task0": 40.0, "fid/task1": 32.0, "accuracy/task0": 0.6,
                      "accuracy/task1": 0.96}, base)  # fmt: skip
    assert better.value == pytest.approx(20.0) and better.count == 4 and not better.pooled
    worse = delta_m({"fid/task0": 60.0, "fid/task1": 48.0, "accuracy/task0": 0.4,
                     "accuracy/task1": 0.64}, base)  # fmt: skip
    assert worse.value == pytest.approx(-20.0)
    mixed = delta_m({"fid/task0": 60.0, "fid/task1": 40.0, "accuracy/task0": 0.6,
                     "accuracy/task1": 0.8}, base)  # fmt: skip
    assert mixed.value == pytest.approx((-20.0 + 0.0 + 20.0 + 0.0) / 4)
    assert delta_m(base, base).value == 0.0


def test_delta_m_leaves_out_values_without_a_better_side_and_summaries():
    base = {"fid/task0": 50.0, "kid_std/task0": 1.0, "fid": 50.0, "fid_per_class/task0/class1": 9}
    mine = {"fid/task0": 25.0, "kid_std/task0": 3.0, "fid": 99.0, "fid_per_class/task0/class1": 1}
    result = delta_m(mine, base)
    assert result.count == 1 and result.value == pytest.approx(50.0)


def test_a_single_task_baseline_is_compared_through_its_pooled_value():
    base = {"fid/task0": 50.0, "fid": 50.0, "accuracy/task0": 0.5, "accuracy": 0.5}
    mine = {"fid/task0": 40.0, "fid/task1": 60.0, "fid/task2": 25.0, "fid": 41.7,
            "accuracy/task0": 0.6, "accuracy/task1": 0.6, "accuracy/task2": 0.6}  # fmt: skip
    result = delta_m(mine, base)
    assert result.pooled == ["fid", "accuracy"] and result.count == 6
    assert result.value == pytest.approx((20.0 - 20.0 + 50.0 + 20.0 * 3) / 6)


def two_tasks(fid: float, accuracy: float) -> dict[str, float]:
    """Two tasks' values, both tasks alike, and their means."""
    values = {"fid": fid, "accuracy": accuracy}
    return {**values, **{f"{key}/task{k}": v for key, v in values.items() for k in (0, 1)}}


def test_delta_m_column_cells_and_notes():
    single = {"fid/task0": 50.0, "fid": 50.0, "accuracy/task0": 0.5, "accuracy": 0.5}
    groups = {
        "baseline": [evaluated("baseline", s, single) for s in (0, 1)],
        "pertask": [
            evaluated("pertask", 0, two_tasks(40.0, 0.6)),  # +20 %
            evaluated("pertask", 1, two_tasks(45.0, 0.55)),  # +10 %
        ],
        "pairs": [evaluated("pairs", 0, {"agreement/task0-task1": 0.9, "agreement": 0.9})],
    }
    keys = ["fid", "accuracy"]
    rows = summarise(groups, keys, {}, baseline="baseline")
    text = markdown_table(rows, keys, {}, baseline="baseline")
    header, _, base_line, pertask_line, pairs_line = text.splitlines()
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[3:6] == ["fid", "accuracy", "Δm % vs baseline"]
    # percentages to one decimal, signed; the baseline's own row exactly 0 (never 5e-16)
    assert [c.strip() for c in base_line.strip("|").split("|")][5] == "0.0 ± 0.0"
    assert [c.strip() for c in pertask_line.strip("|").split("|")][5] == "+15.0 ± 7.1"  # 20, 10
    assert [c.strip() for c in pairs_line.strip("|").split("|")][5] == "—"
    notes = delta_notes(rows, "baseline")
    assert any("pertask" in n and "pooled value" in n and "accuracy, fid" in n for n in notes)
    assert any(n.startswith("pairs: no per-task value lines up") for n in notes)
    csv_lines = summary_csv(rows, keys, {}, baseline="baseline").splitlines()
    values = dict(zip(csv_lines[0].split(","), csv_lines[2].split(",")))
    assert float(values["delta_m_mean"]) == pytest.approx(15.0)
    assert values["delta_m_values"] == "4" and values["delta_m_pooled"] == "accuracy fid"
    assert "Δm" not in markdown_table(rows, keys, {})  # no baseline, no column


def test_tasks_that_do_not_line_up_with_a_multi_task_baseline_give_a_dash():
    base = {"fid/task0": 50.0, "fid/task1": 50.0, "fid": 50.0}
    mine = {"fid/task0": 40.0, "fid/task1": 40.0, "fid/task2": 40.0, "fid": 40.0}
    result = delta_m(mine, base)
    assert math.isnan(result.value) and result.unmatched == ["fid"]


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

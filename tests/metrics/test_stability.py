import math

import pytest

from mtgan.metrics.stability import stability_stats


def _records() -> list[dict[str, float]]:
    d_loss = [9.0, 9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    g_loss = [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, math.nan, 1.5, 1.5, 0.5]
    records = []
    for i in range(10):
        records.append(
            {
                "step": i + 1,
                "d/loss": d_loss[i],
                "g/loss": g_loss[i],
                "d/grad_norm": 50.0 if i == 2 else 1.0,  # a spike at step 3: 50 > 10 x median 1
                "g/grad_norm": 2.0,
                "time": 0.1 * i,
            }
        )
    return records


def test_hand_made_run_with_a_nan_and_a_spike():
    out = stability_stats(_records(), window=5)  # steps 6..10
    assert out["nonfinite"] == 1
    assert out["diverged"] == 1
    # d/loss over steps 6..10: 1..5 -> mean 3, population std sqrt(2)
    assert out["d/loss_mean"] == pytest.approx(3.0)
    assert out["d/loss_std"] == pytest.approx(math.sqrt(2.0))
    # g/loss: the NaN at step 7 is skipped -> 0.5, 1.5, 1.5, 0.5: mean 1, std 0.5
    assert out["g/loss_mean"] == pytest.approx(1.0)
    assert out["g/loss_std"] == pytest.approx(0.5)
    # the spike at step 3 lies outside the window
    assert out["d/grad_norm_mean"] == pytest.approx(1.0)
    assert out["d/grad_norm_std"] == 0.0
    assert out["g/grad_norm_mean"] == pytest.approx(2.0)


def test_window_is_counted_in_steps_and_absent_keys_are_skipped():
    records = [{"step": s, "d/loss": float(s)} for s in range(0, 100, 10)]
    out = stability_stats(records, window=20)  # steps 80, 90 (70 is not > 90 - 20)
    assert out["d/loss_mean"] == pytest.approx(85.0)
    assert out["d/loss_std"] == pytest.approx(5.0)
    assert "g/loss_mean" not in out and "g/grad_norm_std" not in out
    assert out["nonfinite"] == 0 and out["diverged"] == 0


def test_empty_run_has_no_incidents():
    assert stability_stats([]) == {"nonfinite": 0, "diverged": 0}


def test_nonfinite_ignores_evaluation_records():
    # A reverse KL of inf (a mode never hit) is a metric value, not a sick training step.
    records = [
        {"step": 10, "d/loss": 1.0, "g/loss": 1.0},
        {"step": 10, "eval/rkl": float("inf"), "eval/fid": float("nan")},
        {"step": 20, "d/loss": float("nan"), "g/loss": 1.0},
    ]
    assert stability_stats(records)["nonfinite"] == 1

"""Report curves: short runs keep their points, distances span a log axis, all-zero panels fold
into a line of text, and a real short run's report has data in every chart."""

from __future__ import annotations

import math
from pathlib import Path

from mtgan import api
from mtgan.report.curves import (
    FEW_POINTS,
    SMOOTH,
    SMOOTH_MIN,
    eval_series,
    fold_constant,
    log_axis,
    plot_panels,
    train_series,
)
from mtgan.report.history import RunResult, load_result, metric_keys
from mtgan.report.pages import curve_charts

# The tiny fixture's settings of the machine and the sinks, kept for a gan-2d run.
MACHINE = ("train.device", "train.precision", "train.progress", "train.tensorboard",
           "train.loggers")  # fmt: skip


def logged(values: list[float], key: str = "d/loss", step: int = 2) -> RunResult:
    train = [{"step": step * (i + 1), key: v} for i, v in enumerate(values)]
    return RunResult("a", 0, Path("/nowhere"), {}, curves={}, train=train, seconds_at={})


def evaluated(curves: dict[str, list[float]]) -> RunResult:
    steps = {k: list(zip(range(100, 100 * (len(v) + 1), 100), v)) for k, v in curves.items()}
    return RunResult("a", 0, Path("/nowhere"), {}, curves=steps, train=[], seconds_at={})


def drawn_points(fig) -> list[list[int]]:
    """Per axes, the number of points of each line drawn in it."""
    return [[len(line.get_xdata()) for line in ax.lines] for ax in fig.axes]


def test_curves_too_short_to_smooth_are_drawn_as_logged_with_markers():
    short = logged([4.0, 3.0, 2.0, 1.0, 0.5])
    assert train_series("d/loss")(short) == [(2, 4.0), (4, 3.0), (6, 2.0), (8, 1.0), (10, 0.5)]
    long = logged([float(i) for i in range(SMOOTH_MIN * SMOOTH)])
    smoothed = train_series("d/loss")(long)
    assert len(smoothed) == SMOOTH_MIN * SMOOTH - SMOOTH + 1 and smoothed[0] == (10, 2.0)

    fig = plot_panels({"a": [short]}, [("d/loss", train_series("d/loss"))])
    (line,) = fig.axes[0].lines
    assert len(line.get_xdata()) == 5 and line.get_marker() == "o"
    single = plot_panels({"a": [logged([1.0])]}, [("d/loss", train_series("d/loss"))])
    assert single.axes[0].lines[0].get_marker() == "o"  # one point: a marker, not nothing
    many = logged([1.0] * (FEW_POINTS + 30))
    fig = plot_panels({"a": [many]}, [("d/loss", train_series("d/loss"))])
    assert fig.axes[0].lines[0].get_marker() in ("None", None, "")  # dense: a plain line


def test_distances_spanning_a_decade_go_on_a_log_axis_and_scores_stay_linear():
    assert log_axis("fid", [1100.0, 300.0, 40.0]) and log_axis("fid/task2", [500.0, 20.0])
    assert log_axis("kid", [0.5, 0.01])
    assert not log_axis("fid", [60.0, 40.0])  # less than a decade reads fine linearly
    assert not log_axis("kid", [0.5, -0.001])  # KID's unbiased estimate can dip below 0
    assert not log_axis("accuracy", [0.01, 0.9])  # a score, not a distance
    assert not log_axis("rkl", [math.inf, 5.0])  # only one finite value: no span
    assert not log_axis("d/loss", [100.0, 1.0])  # not a metric of the registry

    result = evaluated({"fid": [1100.0, 300.0, 80.0, 40.0], "accuracy": [0.01, 0.5, 0.9, 0.95]})
    panels = [(k, eval_series(k)) for k in ("fid", "accuracy")]
    fig = plot_panels({"a": [result]}, panels)
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"]
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels(which="both") if t.get_text()]
    assert {"50", "100", "1000"} <= set(ticks)  # plain FID values, between decades too
    fig = plot_panels({"a": [result]}, panels, log_scale=True)  # given: every panel
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]


def test_panels_constant_in_every_run_fold_into_their_titles():
    runs = [logged([0.0, 0.0, 0.0], "d/nonfinite"), logged([1.0, 0.5], "d/loss")]
    for run in runs[1:]:
        run.train += [{"step": 20, "d/nonfinite": 0.0, "g/nonfinite": 0.0}]
    panels = [(k, train_series(k)) for k in ("d/loss", "d/nonfinite", "g/nonfinite", "g/loss")]
    drawn, zero = fold_constant({"a": runs}, panels)
    assert [title for title, _ in drawn] == ["d/loss", "g/loss"]  # g/loss: no data, not zero
    assert zero == ["d/nonfinite = 0", "g/nonfinite = 0"]
    one_nonzero = logged([0.0, 2.0, 0.0], "d/nonfinite")
    assert fold_constant({"a": [*runs, one_nonzero]}, panels)[1] == ["g/nonfinite = 0"]
    rates = [logged([2e-4, 2e-4], "lr/d"), logged([2e-4], "lr/d")]  # a constant schedule
    assert fold_constant({"a": rates}, [("lr/d", train_series("lr/d"))])[1] == ["lr/d = 0.0002"]
    rates.append(logged([1e-4], "lr/d"))  # another run's rate: worth a panel
    assert fold_constant({"a": rates}, [("lr/d", train_series("lr/d"))])[1] == []


def test_a_short_real_run_has_data_in_every_chart_and_says_what_it_compared(tmp_path, tiny):
    run = tmp_path / "run"
    machine = [o for o in tiny if o.startswith(MACHINE)]  # CPU, fp32, no progress bar, ...
    api.train("gan-2d", [*machine, "train.steps=10", "train.log_every=2", "eval.every=4",
                         "eval.n=200", "eval.metrics=[modes,stability]", "data.n_points=1000",
                         "model.g_hidden=[16,16]", "model.d_hidden=[16,16]",
                         "train.batch_size=16", "train.sample_every=5"],
              out=run, quiet=True)  # fmt: skip
    result = load_result("run", 0, run)
    assert len(result.train) == 5  # 5 logged points: a 5-point running mean would leave one

    charts = curve_charts({"run": [result]}, metric_keys([result]))
    assert [c.name for c in charts if c.figure is not None] == ["metrics", "losses", "grad_norms"]
    for chart in (c for c in charts if c.figure is not None):
        for ax, counts in zip(chart.figure.axes, drawn_points(chart.figure)):
            assert counts and min(counts) >= 3, (chart.name, ax.get_title())
            assert all(line.get_marker() == "o" for line in ax.lines)
    losses = next(c for c in charts if c.name == "losses")
    assert losses.zero == ["d/nonfinite = 0", "g/nonfinite = 0", "lr/d = 0.0005", "lr/g = 0.0005"]
    assert "d/nonfinite" not in [ax.get_title() for ax in losses.figure.axes]

    page = api.report(run).read_text()
    assert "The same throughout every run, not drawn: d/nonfinite = 0, g/nonfinite = 0" in page
    protocol = "200 generated against 200 real from the train split; features raw"
    assert page.count(f"Evaluation protocol: {protocol}") == 2  # final table and metric curves


def test_adas_strength_gets_a_chart_of_its_own_as_logged():
    # p moves by whole notches: drawn as logged (no running mean), never among the losses
    p = [0.0, 0.002, 0.004, 0.006, 0.004, 0.006, 0.008, 0.01, 0.012, 0.014, 0.016, 0.018, 0.02,
         0.022, 0.024, 0.026]  # fmt: skip
    train = [
        {"step": 4 * (i + 1), "d/loss": 1.0 + i, "augment/p": v, "augment/rt": 0.7}
        for i, v in enumerate(p)
    ]
    result = RunResult("a", 0, Path("/nowhere"), {}, curves={}, train=train, seconds_at={})
    charts = {c.name: c for c in curve_charts({"a": [result]}, [])}
    augment = charts["augment"]
    assert [ax.get_title() for ax in augment.figure.axes] == ["augment/p"]
    assert augment.zero == ["augment/rt = 0.7"]
    (line,) = augment.figure.axes[0].lines
    assert list(line.get_ydata()) == p
    assert "augment/p" not in [ax.get_title() for ax in charts["losses"].figure.axes]

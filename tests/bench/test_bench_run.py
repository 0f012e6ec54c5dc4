"""`mtgan bench` end to end on tiny real runs: tables, report, skipping and resuming."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from mtgan.bench import report_bench_dir, run_bench
from mtgan.bench.plan import resolve_protocol
from mtgan.bench.runner import call_timed
from mtgan.cli import main
from mtgan.errors import ConfigError, RunError


@pytest.fixture
def overrides(tiny: list[str]) -> list[str]:
    # Each preset keeps its own sharing; everything else is tiny.
    return [o for o in tiny if not o.startswith("model.share")] + ["eval.n=30"]


def test_protocol_takes_the_metrics_every_preset_supports(overrides):
    protocol, configs = resolve_protocol(["pertask", "gan-2d"], [], None, None)
    assert protocol.metrics == ["stability"]  # digits and 2D points share no quality metric
    protocol, _ = resolve_protocol(["pertask", "independent"], overrides, None, None)
    assert protocol.metrics == ["fid", "accuracy", "stability"]
    assert protocol.eval_every == 1  # 6 steps // 10 evaluations, at least 1
    with pytest.raises(ConfigError, match="model.g_hiden"):
        resolve_protocol(["pertask"], ["model.g_hiden=[4]"], None, None)


def test_until_may_track_a_metric_the_protocol_adds(overrides):
    # The presets evaluate nothing of their own; the bench's eval.metrics brings fid in.
    until = ["train.until.metric=fid", "train.until.patience=2"]
    protocol, configs = resolve_protocol(["pertask", "acgan"], overrides + until, None, None)
    assert "fid" in protocol.metrics
    assert all(c.train.until and c.train.until.metric == "fid" for c in configs.values())
    # ...but not one it leaves out, and the message still names the field.
    with pytest.raises(ConfigError, match="train.until.metric"):
        resolve_protocol(["pertask"], overrides + until, ["accuracy"], None)


def test_bench_writes_tables_and_report_then_skips_finished_runs(tmp_path, overrides):
    out = tmp_path / "bench"
    first = run_bench(["pertask", "independent"], overrides, [0], jobs=2, out=out,
                      eval_every=3, quiet=True)  # fmt: skip
    assert not first.failed
    lines = first.markdown.splitlines()
    assert lines[0].startswith("| preset | seeds | steps | fid | fid_pooled | accuracy")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["pertask", "independent"]
    assert "(N=30, train)" in lines[2]  # FID's real set: eval.n=30 of each task's rows
    record = [json.loads(x) for x in (out / "runs/pertask/seed0/metrics.jsonl").open()]
    assert [r["step"] for r in record if "eval/fid" in r] == [3, 6]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5  # metrics, losses, norms, 2 sample grids
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "grad_norms.png", "losses.png", "metrics.png"
    ]  # fmt: skip
    assert "pertask" in page and "independent" in page

    # Rebuilt from the directory alone, the table keeps the presets' order.
    (out / "summary.md").unlink()
    assert main(["report", str(out)]) == 0
    rebuilt = (out / "summary.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in rebuilt[2:4]] == ["pertask", "independent"]
    report_bench_dir(out, baseline="independent")  # Δm from the finished runs alone
    table = (out / "summary.md").read_text()
    assert "Δm % vs independent" in table.splitlines()[0]
    assert main(["report", str(out), "--target", "fid=1e9"]) == 0  # other targets, no retraining
    assert "steps to fid ≤ 1.000e+09" in (out / "summary.md").read_text()
    assert "3/3" not in (out / "summary.md").read_text()  # one seed each: "(1/1)"
    assert main(["report", str(out / "runs/pertask/seed0"), "--target", "fid=1"]) == 2

    log = out / "logs/pertask-seed0.log"
    size = log.stat().st_size
    again = run_bench(["pertask"], overrides, [0, 1], out=out, eval_every=3, quiet=True)
    assert log.stat().st_size == size  # finished: not trained again
    assert again.markdown.splitlines()[2].split("|")[2].strip() == "2"
    with (out / "runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert [(r["preset"], r["seed"]) for r in runs] == [("pertask", "0"), ("pertask", "1")]
    assert all(float(r["fid"]) > 0 and float(r["train_s"]) > 0 for r in runs)
    assert runs[0]["fid"] != runs[1]["fid"]  # two seeds, two different runs

    with pytest.raises(ConfigError, match="train.lr_g"):
        run_bench(["pertask"], [*overrides, "train.lr_g=1e-3"], [0], out=out, quiet=True)


def test_an_interrupted_bench_resumes_its_runs(tmp_path, overrides, monkeypatch):
    out = tmp_path / "bench"
    monkeypatch.setenv("MTGAN_TEST_FAULT", "exit:0:4")  # every run dies at step 4
    with pytest.raises(RunError, match="every bench run failed"):
        run_bench(["pertask"], overrides, [0], out=out, eval_every=3, quiet=True)
    run = out / "runs/pertask/seed0"
    assert (run / "checkpoints/step-0000003").exists() and not (run / "eval.json").exists()
    monkeypatch.delenv("MTGAN_TEST_FAULT")
    done = run_bench(["pertask"], overrides, [0], out=out, eval_every=3, quiet=True)
    assert not done.failed
    assert "--resume" in (out / "logs/pertask-seed0.log").read_text()
    records = [json.loads(x) for x in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "eval/fid" in r] == [3, 6]


def test_cli_bench_reports_a_wrong_target(tmp_path, overrides, capsys):
    code = main(["bench", "pertask", *overrides, "--seeds", "1", "--out", str(tmp_path / "b"),
                 "--target", "fid=abc", "--quiet"])  # fmt: skip
    assert code == 2
    assert "--target fid=abc" in capsys.readouterr().err
    code = main(["bench", "pertask", "--jobs", "0", "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 2 and "--jobs must be at least 1" in capsys.readouterr().err


def test_cli_bench_refuses_a_baseline_it_does_not_bench(tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["bench", "pertask", "independent", "--baseline", "baseline", "--out", str(out),
                 "--quiet"])  # fmt: skip
    assert code == 2 and not out.exists()
    assert "--baseline baseline is not one of the presets benched" in capsys.readouterr().err


def test_a_running_training_has_its_wall_seconds_written_down(tmp_path):
    # What a bench killed mid-run leaves behind: the seconds up to the last periodic record.
    seen: list[float] = []
    script = "import time; time.sleep(1.0); print('done')"
    with (tmp_path / "log").open("w") as log:
        code, seconds = call_timed([sys.executable, "-c", script], log, seen.append, every=0.1)
    assert code == 0 and "done" in (tmp_path / "log").read_text()
    assert len(seen) >= 4 and seen == sorted(seen)  # several records while it ran
    assert seen[-1] == seconds >= 1.0 and seen[-2] < seconds


def test_a_failed_periodic_record_never_stops_the_training(tmp_path):
    # A full disk or a vanished directory while it runs: the training still ends on its own.
    calls: list[float] = []

    def record(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) in (2, 3):  # periodic ones: the run lasts 5 periods, and the last succeeds
            raise OSError("No space left on device")

    script = "import time; time.sleep(0.5); print('done')"
    with (tmp_path / "log").open("w") as log:
        code, seconds = call_timed([sys.executable, "-c", script], log, record, every=0.1)
    assert code == 0 and "done" in (tmp_path / "log").read_text()
    assert seconds >= 0.5 and len(calls) >= 4 and calls[-1] == seconds

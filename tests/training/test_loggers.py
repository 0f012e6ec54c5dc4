"""train.loggers: each sink, with its real package, gets what metrics.jsonl gets; a missing
package or an unknown name is a ConfigError before anything is built; train.tensorboard still
works as a deprecated alias; a sink that fails mid-run is dropped and the run goes on."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import struct
from pathlib import Path

import pytest

from mtgan import api
from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.training import loggers

# gan-2d made tiny: 3 log steps, evaluations (modes) at steps 3 and 6
SMALL = [
    "data.n_points=400",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16,16]",
    "train.batch_size=16",
    "train.steps=6",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=1000",
    "train.progress=false",
    "train.device=cpu",
    "train.precision=fp32",
    "eval.metrics=[modes]",
    "eval.n=100",
    "eval.every=3",
]


def _train(tmp_path: Path, *extra: str) -> api.Run:
    return api.train("gan-2d", [*SMALL, *extra], out=tmp_path / "run", quiet=True)


def _logged(run: api.Run) -> list[dict]:
    """What the loop sends to every sink: metrics.jsonl's records that are not events."""
    return [r for r in run.metrics() if "event" not in r]


def _series(run: api.Run, key: str) -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in _logged(run) if key in r]


# ---------------------------------------------------------------- config


def test_jsonl_is_always_first_and_names_are_checked():
    config = load_config("pertask", ["train.loggers=[csv, csv, tensorboard]"])
    assert config.train.loggers == ["jsonl", "csv", "tensorboard"]
    with pytest.raises(ConfigError, match=r"train.loggers.*'wandbb' is not a logger.*'wandb'"):
        load_config("pertask", ["train.loggers=[wandbb]"])


def test_the_default_is_jsonl_and_tensorboard_where_installed():
    train = load_config("pertask").train
    assert train.loggers is None
    expected = ["jsonl", "tensorboard"] if loggers.installed("tensorboard") else ["jsonl"]
    assert loggers.chosen(train) == expected


def test_deprecated_train_tensorboard_still_works():
    with pytest.warns(DeprecationWarning, match="train.loggers"):
        off = load_config("pertask", ["train.tensorboard=false"]).train
    assert loggers.chosen(off) == ["jsonl"] and "tensorboard" not in off.model_dump()
    # every config.yaml written before train.loggers says `tensorboard: true`: the default
    assert load_config("pertask", ["train.tensorboard=true"]).train.loggers is None
    # an explicit list wins over the old switch
    both = ["train.tensorboard=false", "train.loggers=[csv]"]
    with pytest.warns(DeprecationWarning):
        assert load_config("pertask", both).train.loggers == ["jsonl", "csv"]
    with pytest.raises(ConfigError, match="train: tensorboard: 'maybe' is not allowed"):
        load_config("pertask", ["train.tensorboard=maybe"])


def test_a_missing_package_is_a_config_error_naming_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r'wandb needs the wandb package.*"mtgan\[wandb\]"'):
        _train(tmp_path, "train.loggers=[wandb]")
    assert not (tmp_path / "run").exists()  # before anything was built or written


# ---------------------------------------------------------------- each sink, read back


def test_tensorboard_events_hold_every_logged_value(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _train(tmp_path, "train.loggers=[tensorboard]")
    events = EventAccumulator(str(run.dir.tensorboard))
    events.Reload()
    for key in ("d/loss", "g/loss", "lr/d", "eval/modes"):
        got = [(e.step, e.value) for e in events.Scalars(key)]
        want = _series(run, key)
        assert [s for s, _ in got] == [s for s, _ in want] and want, key
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), key


def test_train_tensorboard_false_writes_no_events(tmp_path):
    with pytest.warns(DeprecationWarning):
        run = _train(tmp_path, "train.tensorboard=false")
    assert not run.dir.tensorboard.exists()


def test_csv_is_the_jsonl_table_with_a_header_that_grows(tmp_path):
    run = _train(tmp_path, "train.loggers=[csv]")
    with run.dir.metrics_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    records = _logged(run)
    assert header[0] == "step" and len(rows) == len(records) == 3 + 2  # 3 logs, 2 evaluations
    # columns in order of first appearance: the training keys, then the evaluation's
    assert header.index("d/loss") < header.index("eval/modes")
    for row, record in zip(rows, records):
        assert {k for k, v in row.items() if v != ""} == set(record)
        for key, value in record.items():
            assert float(row[key]) == value or (math.isnan(value) and row[key] == "nan")


def test_csv_of_a_resumed_run_matches_its_jsonl(tmp_path):
    run = _train(tmp_path, "train.loggers=[csv]", "train.steps=3")
    run = api.train(resume=run.path, overrides=["train.steps=6"], quiet=True)
    with run.dir.metrics_csv.open(newline="") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == [r["step"] for r in _logged(run)] == [2, 3, 3, 4, 6, 6]


def _wandb_records(path: Path):
    """The records of a .wandb file, parsed with wandb's own protobuf schema (the file is a
    LevelDB-style log: 7-byte W&B header, then 32 KiB blocks of crc/length/type chunks)."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, chunk = path.read_bytes(), 32768, 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if kind == 0:  # the zero padding at a block's end
            pos += left
            continue
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or a record's last chunk
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            yield record
            chunk = b""


def test_wandb_runs_offline_into_the_run_directory(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")  # never the network, whatever the code does
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("CONFIG_DIR", "CACHE_DIR", "DATA_DIR", "ARTIFACT_DIR"):  # nothing in ~
        monkeypatch.setenv(f"WANDB_{name}", str(tmp_path / "wandb-home"))
    monkeypatch.delenv("WANDB_DIR", raising=False)  # the default: under the run directory
    run = _train(tmp_path, "train.loggers=[wandb]")
    (offline,) = run.dir.wandb.glob("offline-run-*")
    (log,) = offline.glob("run-*.wandb")
    rows, config, exit_code = [], None, None
    for record in _wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = record.history.item
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items})
        elif kind == "run":
            config = {i.key: json.loads(i.value_json) for i in record.run.config.update}
        elif kind == "exit":
            exit_code = record.exit.exit_code
    for key in ("d/loss", "lr/g", "eval/modes"):
        got = [(r["step"], r[key]) for r in rows if key in r]
        assert got == pytest.approx(_series(run, key)) and got, key
    assert config["train"]["steps"] == 6 and exit_code == 0
    assert "logger failed" not in capsys.readouterr().err


def test_wandb_is_offline_in_the_run_unless_the_environment_says_otherwise(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    calls = []

    class FakeRun:
        def define_metric(self, *args, **kwargs): ...

    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or FakeRun())
    from mtgan.rundir import RunDir
    from mtgan.training.loggers.wandb import WandbLogger

    config = load_config("pertask")
    for name in ("WANDB_MODE", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    WandbLogger(RunDir(tmp_path), config, 0)
    assert calls[-1]["mode"] == "offline" and calls[-1]["dir"] == str(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    WandbLogger(RunDir(tmp_path), config, 0)
    assert calls[-1]["mode"] is None and calls[-1]["dir"] is None  # wandb reads them itself


def test_mlflow_logs_into_a_file_store_in_the_run_directory(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "x")  # restored to what it was (unset) after the test
        monkeypatch.delenv(name)
    run = _train(tmp_path, "train.loggers=[mlflow]")
    client = MlflowClient(run.dir.mlflow.resolve().as_uri())
    experiment = client.get_experiment_by_name("mtgan")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == run.path.name and found.info.status == "FINISHED"
    assert found.data.params["train.steps"] == "6"
    assert found.data.params["train.lr_schedule"] == "constant"
    # a file store: `eval/modes` and `eval/modes/task0` as `eval.modes`, `eval.modes.task0`
    for key in ("d/loss", "lr/d", "eval/modes", "eval/modes/task0"):
        history = client.get_metric_history(found.info.run_id, key.replace("/", "."))
        got = sorted((m.step, m.value) for m in history)
        assert got == pytest.approx(_series(run, key)) and got, key
    assert "logger failed" not in capsys.readouterr().err


# ---------------------------------------------------------------- failures


def test_a_failing_sink_is_dropped_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    from mtgan.training.loggers.csv import CsvLogger

    def broken(self, record):
        raise RuntimeError("sink down")

    monkeypatch.setattr(CsvLogger, "scalars", broken)
    run = _train(tmp_path, "train.loggers=[csv]")
    assert run.step == 6 and len(_logged(run)) == 5  # the record has everything
    err = capsys.readouterr().err
    assert err.count("the csv logger failed at step 2 (sink down)") == 1

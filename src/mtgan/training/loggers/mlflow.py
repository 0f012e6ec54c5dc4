"""MLflow: the tracking server or store of `MLFLOW_TRACKING_URI`, else a local file store in
`RUN/mlruns` (`mlflow ui --backend-store-uri RUN/mlruns`), experiment `MLFLOW_EXPERIMENT_NAME`
or "mtgan". One MLflow run per training process, named after the run directory, with the
resolved config as parameters (dotted keys).

A file store keeps each metric in a file named by its key, and `eval/fid` beside
`eval/fid/task0` would be both a file and a folder: there (a `file:` URI or a path) a key's `/`
becomes `.` (`eval.fid`, `eval.fid.task0`); other stores keep the keys as metrics.jsonl has them.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mtgan.training.loggers.base import numbers

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.rundir import RunDir

_BATCH = 100  # MLflow's most parameters per log_batch call (metrics: 1000)
_NOT_IN_A_KEY = re.compile(r"[^\w\-. /]")  # MLflow keys: alphanumerics, _ - . space /


class MlflowLogger:
    def __init__(self, run: RunDir, config: ExperimentConfig, step: int):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # MLflow 3 refuses a file store unless allowed: it is the one asked for here.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = run.mlflow.resolve().as_uri()
        self.client = MlflowClient(uri)
        self.flat = urlparse(uri).scheme in ("", "file")  # a path is a file store too
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "mtgan")
        experiment = self.client.get_experiment_by_name(name)
        eid = experiment.experiment_id if experiment else self.client.create_experiment(name)
        tags = {"mtgan.run_dir": str(run.path.resolve()), "mtgan.start_step": str(step)}
        self.run_id = self.client.create_run(eid, run_name=run.path.name, tags=tags).info.run_id
        params = [Param(k, v) for k, v in _flat(config.model_dump(mode="json")).items()]
        for i in range(0, len(params), _BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + _BATCH])

    def scalars(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(record["step"])
        metrics = [Metric(self.key(k), float(v), now, step) for k, v in numbers(record)]
        for i in range(0, len(metrics), 10 * _BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 10 * _BATCH])

    def key(self, name: str) -> str:
        return _key(name.replace("/", ".") if self.flat else name)

    def close(self, ok: bool = True) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


def _key(name: str) -> str:
    return _NOT_IN_A_KEY.sub("_", name)


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"train.steps": "2000", ...}: every leaf of the config, as MLflow keeps parameters."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[_key(f"{prefix}{key}")] = str(value)[:500]  # MLflow's shortest value limit
    return out

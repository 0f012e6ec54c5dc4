"""What a finished run directory recorded, read back for tables and reports: the final
evaluation, each metric's curve over the evaluations, the training records and the time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtgan.rundir import RunDir

_META = frozenset({"step", "ema", "features", "n", "kid_std"})
# FID keys whose real set eval.json's protocol sizes: per task, or all tasks' together.
REFERENCED = {"fid": "reference_per_task", "fid_pooled": "reference_total"}
# Stability statistics shown in the table (from the `stability` metric), and their headers.
STABILITY_COLUMNS = {
    "d/loss_std": "D-loss std",
    "g/loss_std": "G-loss std",
    "diverged": "grad spikes",
    "nonfinite": "non-finite",
}


def metric_keys(results: list[RunResult]) -> list[str]:
    """Headline metrics in first-seen order: eval.json's numbers that are neither per-task
    values (`fid/task3`), bookkeeping nor stability statistics."""
    keys: dict[str, None] = {}
    for r in results:
        for key, value in r.final.items():
            if "/" in key or key in _META or key in STABILITY_COLUMNS or not is_number(value):
                continue
            keys.setdefault(key)
    return list(keys)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_number(value: object) -> str:
    """A metric value for a table: 4 significant digits, "—" for NaN, "inf" kept (a reverse KL
    of inf says a mode was never hit), text as it is."""
    if not is_number(value):
        return str(value)
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return "—" if math.isnan(v) else str(v)
    if abs(v) >= 1e7:
        return f"{v:.3e}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"  # steps and seconds read as integers


def _count(sizes: object, what: str) -> str:
    """Per-task sizes as text: "30 real per task", "25–40 real per task", "30 real" (one task)."""
    if not isinstance(sizes, list) or not sizes or not all(isinstance(n, int) for n in sizes):
        return f"? {what}"
    lo, hi = min(sizes), max(sizes)
    n = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
    return f"{n} {what}" + (" per task" if len(sizes) > 1 else "")


def describe_protocol(protocol: dict[str, Any]) -> str:
    """One line saying what an evaluation compared, from eval.json's `protocol`: "30 generated
    per task against 30 real per task (90 in all) from the train split; features
    digits-c158… (128-d), resize none"; "" for runs that recorded none."""
    if not protocol:
        return ""
    per_task = protocol.get("reference_per_task")
    tasks = len(per_task) if isinstance(per_task, list) else 1
    generated = protocol.get("generated_per_task", "?")
    text = f"{format_number(generated)} generated" + (" per task" if tasks > 1 else "")
    text += f" against {_count(per_task, 'real')}"
    total = protocol.get("reference_total")
    if tasks > 1 and is_number(total):
        text += f" ({format_number(total)} in all)"
    text += f" from the {protocol.get('reference', '?')} split"
    features = protocol.get("features")
    if features:
        dim = protocol.get("feature_dim")
        text += f"; features {features}" + (f" ({dim}-d)" if is_number(dim) else "")
    if protocol.get("resize"):
        text += f", resize {protocol['resize']}"
    return text


def protocol_lines(groups: dict[str, list[RunResult]]) -> list[str]:
    """The evaluation protocol of every run, for a report: one line when all runs share it,
    else one per preset (and seed where a preset's seeds differ); [] when none recorded one."""
    described = {(label, r.seed): describe_protocol(r.protocol) for label, rs in groups.items()
                 for r in rs}  # fmt: skip
    texts = [t for t in dict.fromkeys(described.values()) if t]
    if not texts:
        return []
    if len(texts) == 1 and all(described.values()):
        return [f"Evaluation protocol: {texts[0]}."]
    lines = []
    for label, rs in groups.items():
        mine = list(dict.fromkeys(described[label, r.seed] for r in rs))
        if len(mine) == 1:
            lines.append(f"Evaluation protocol of {label}: {mine[0] or 'not recorded'}.")
        else:
            lines += [f"Evaluation protocol of {label} seed {r.seed}: "
                      f"{described[label, r.seed] or 'not recorded'}." for r in rs]  # fmt: skip
    return lines


@dataclass
class RunResult:
    """What a table needs of one finished run."""

    label: str
    seed: int
    path: Path
    final: dict[str, float]  # eval.json's numbers, per-task values included
    curves: dict[str, list[tuple[int, float]]]  # metric → (step, value) at each evaluation
    train: list[dict[str, Any]]  # training records of metrics.jsonl (losses, gradient norms)
    seconds_at: dict[int, float]  # evaluation step → training seconds until then
    wall_s: float = 0.0

    @property
    def steps(self) -> int:
        last = max((int(r.get("step", 0)) for r in self.train), default=0)
        return int(self.final.get("step", last))

    @property
    def stop_reason(self) -> str:
        """Why the run stopped: `steps` (train.steps), `converged` or `diverged` (train.until)."""
        stop = self.final.get("stop")
        return str(stop.get("reason", "steps")) if isinstance(stop, dict) else "steps"

    @property
    def protocol(self) -> dict[str, Any]:
        """eval.json's record of what the final evaluation compared ({} for older runs)."""
        record = self.final.get("protocol")
        return record if isinstance(record, dict) else {}

    def reference_sizes(self, key: str) -> list[int]:
        """The real images behind an FID value: each task's for `fid` (one for `fid/taskK`),
        the total for `fid_pooled`; [] for other keys or without a protocol record."""
        family, _, task = key.partition("/")
        sizes = self.protocol.get(REFERENCED.get(family, ""))
        if isinstance(sizes, int):
            return [sizes] if not task else []
        if not isinstance(sizes, list) or not all(isinstance(n, int) for n in sizes):
            return []
        if task:
            k = task.removeprefix("task")
            return [sizes[int(k)]] if k.isdigit() and int(k) < len(sizes) else []
        return list(sizes)

    @property
    def train_seconds(self) -> float:
        """Seconds spent in training steps, over the whole run (resumes included)."""
        logged = [r["train_seconds"] for r in self.train if is_number(r.get("train_seconds"))]
        return max([*self.seconds_at.values(), *logged], default=math.nan)


def load_result(label: str, seed: int, path: Path, wall_s: float = 0.0) -> RunResult:
    """Read a run directory; `final` is empty when it has no final evaluation (yet)."""
    run = RunDir(path)
    final = run.read_eval()
    curves: dict[str, list[tuple[int, float]]] = {}
    train, seconds_at = [], {}
    for record in run.read_metrics():
        step = int(record.get("step", 0))
        if any(k.startswith("eval/") for k in record):
            seconds_at[step] = float(record.get("train_seconds", math.nan))
            for key, value in record.items():
                if key.startswith("eval/") and is_number(value):
                    curves.setdefault(key[5:], []).append((step, float(value)))
        elif "event" not in record:
            train.append(record)
    return RunResult(label, seed, path, final, curves, train, seconds_at, wall_s)

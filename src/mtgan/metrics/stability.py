"""Training-stability summary from the records of a run's metrics.jsonl.

Three plain numbers per run: how noisy the losses and gradient norms are at the end of training
(mean and std over a window), how many records hold a NaN/inf, and how many show a gradient
spike (a norm above diverge_factor times that norm's median over the whole run).
"""

from __future__ import annotations

import math

import numpy as np

TRACKED: tuple[str, ...] = ("d/loss", "g/loss", "d/grad_norm", "g/grad_norm")
SPIKE_KEYS: tuple[str, ...] = ("d/grad_norm", "g/grad_norm")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _column(records: list[dict[str, float]], key: str) -> np.ndarray:
    """Values of key (float64, NaN where a record lacks it), one per record."""
    return np.array(
        [float(r[key]) if _is_number(r.get(key)) else math.nan for r in records], dtype=np.float64
    )


def stability_stats(
    records: list[dict[str, float]], window: int = 200, diverge_factor: float = 10.0
) -> dict[str, float]:
    """Summarise records (each with "step" and numeric keys such as "d/loss", "g/grad_norm").

    - "<key>_mean", "<key>_std" for each of d/loss, g/loss, d/grad_norm, g/grad_norm present:
      over records with step > last step - window (the last `window` training steps, however
      often they were logged), finite values only; std is the population std (ddof 0).
    - "nonfinite" (int): number of training records, over the whole run, with any NaN or inf
      numeric value (keys starting with "eval/" are evaluation results and not looked at).
    - "diverged" (int): number of records, over the whole run, whose d/grad_norm or g/grad_norm
      exceeds diverge_factor × the median (of its finite values) of that norm over the run.
    """
    out: dict[str, float] = {}
    # Evaluation records are not training health: a reverse KL of inf (a mode never hit) or
    # a NaN metric says nothing about the losses.
    out["nonfinite"] = sum(
        any(
            _is_number(v) and not math.isfinite(v)
            for k, v in r.items()
            if not k.startswith("eval/")
        )
        for r in records
    )
    if not records:
        out["diverged"] = 0
        return out

    steps = _column(records, "step")
    in_window = steps > np.nanmax(steps) - window
    for key in TRACKED:
        values = _column(records, key)
        if not np.isfinite(values).any():
            continue  # key absent (or never finite) in this run
        recent = values[in_window & np.isfinite(values)]
        out[f"{key}_mean"] = float(recent.mean()) if recent.size else math.nan
        out[f"{key}_std"] = float(recent.std()) if recent.size else math.nan

    spiked = np.zeros(len(records), dtype=bool)
    for key in SPIKE_KEYS:
        values = _column(records, key)
        finite = np.isfinite(values)
        if finite.any():
            # NaN > x is False: a missing or NaN norm is no spike ("nonfinite" counts it); +inf is.
            with np.errstate(invalid="ignore"):
                spiked |= values > diverge_factor * np.median(values[finite])
    out["diverged"] = int(spiked.sum())
    return out

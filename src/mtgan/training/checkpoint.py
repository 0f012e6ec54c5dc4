"""Crash-safe checkpoints: weights in safetensors, everything else in a weights-only torch file.

Layout: `checkpoints/step-0001000/{weights.safetensors,state.pt}` and `checkpoints/latest`, a
text file naming the newest complete checkpoint (`checkpoints/best` names the best one by
`train.until.metric`, and pruning keeps it). A checkpoint is written under a temporary name,
flushed and fsynced, then renamed, and `latest` is replaced atomically after that, so a crash at
any moment leaves `latest` pointing at a complete checkpoint. Loading never unpickles objects.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_model
from torch import nn

from mtgan.atomic import fsync_path, write_text_atomic
from mtgan.errors import RunError
from mtgan.training import faults

if TYPE_CHECKING:
    from mtgan.training.phases import Phase

WEIGHTS = "weights.safetensors"
STATE = "state.pt"
LATEST = "latest"  # names the newest complete checkpoint
BEST = "best"  # names the best one by train.until.metric (kept however old)


def save_checkpoint(
    root: Path, step: int, weights: nn.Module, state: dict[str, Any], keep: int
) -> Path:
    """Write weights and state for `step` under `root`, point `latest` at it, keep the newest
    `keep` checkpoints. Returns the checkpoint directory. A failed write (disk full, ...) is a
    RunError and leaves `latest` on the previous complete checkpoint."""
    name = f"step-{step:07d}"
    tmp = root / f".tmp-{name}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        # save_model de-duplicates tensors held under several names (layers shared by G and D).
        save_model(weights, str(tmp / WEIGHTS))
        faults.checkpoint_write()
        torch.save(state, tmp / STATE)
        for f in (WEIGHTS, STATE):
            fsync_path(tmp / f)
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_text_atomic(root / LATEST, name + "\n")
        fsync_path(root)  # the renames themselves are durable only once the directory is
    except (OSError, SafetensorError) as e:  # safetensors reports I/O errors as its own type
        shutil.rmtree(tmp, ignore_errors=True)
        previous = _pointed(root, LATEST)
        kept = f"the last complete checkpoint, {previous}, is intact" if previous else "none kept"
        raise RunError(
            f"cannot write checkpoint {root / name}: {getattr(e, 'strerror', None) or e}; {kept}. "
            "Free some space (or choose another --out) and continue with --resume"
        ) from None
    _prune(root, keep, protect=name)
    return final


def _prune(root: Path, keep: int, protect: str) -> None:
    done = sorted(p for p in root.glob("step-*") if p.is_dir())
    kept = {protect, _pointed(root, BEST)}
    for old in done[:-keep]:
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)


def _pointed(root: Path, pointer: str) -> str | None:
    path = root / pointer
    return path.read_text().strip() if path.exists() else None


def mark_best(root: Path, checkpoint: Path) -> None:
    """Point `best` at a complete checkpoint (atomically, as `latest`)."""
    write_text_atomic(root / BEST, checkpoint.name + "\n")
    fsync_path(root)


def named_checkpoint(root: Path, pointer: str) -> Path | None:
    """The complete checkpoint a pointer (`latest`, `best`) names, None if there is none."""
    name = _pointed(root, pointer)
    if name is None:
        return None
    path = root / name
    if not (path / WEIGHTS).exists() or not (path / STATE).exists():
        raise RunError(f"checkpoint {path} named by {root / pointer} is incomplete")
    return path


def has_checkpoint(root: Path) -> bool:
    """Whether a checkpoint was completed (the pointer alone; `latest_checkpoint` checks it)."""
    return (root / LATEST).exists()


def latest_checkpoint(root: Path) -> Path | None:
    """The directory `latest` names, or None if no checkpoint was completed."""
    return named_checkpoint(root, LATEST)


def remove_stale(root: Path) -> None:
    """Delete half-written checkpoints a crash left behind (only the writing rank may call)."""
    for stale in root.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for pointer in (LATEST, BEST):
        for stale in root.glob(f".{pointer}.*.tmp"):
            stale.unlink(missing_ok=True)


def load_checkpoint(path: Path, weights: nn.Module, device: torch.device | str) -> dict[str, Any]:
    """Load weights into `weights` and return the state dict (tensors on CPU).

    The checkpoint must fit the module exactly (same names and shapes, up to tensors the module
    holds under several names); anything else is a RunError that says which tensor differs.
    """
    try:
        stored = load_file(str(path / WEIGHTS), device="cpu")
    except Exception as e:  # safetensors raises several types for corrupt files
        raise RunError(f"cannot load weights from {path / WEIGHTS}: {e}") from None
    _check_fits(path, stored, weights)
    load_model(weights, str(path / WEIGHTS), strict=False, device=str(device))
    try:
        return torch.load(path / STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle payload or a corrupt file: refuse, never execute
        raise RunError(f"cannot load training state from {path / STATE}: {e}") from None


def _check_fits(path: Path, stored: dict[str, torch.Tensor], module: nn.Module) -> None:
    expected = module.state_dict()
    # save_model keeps one name per shared tensor; the module lists every alias.
    aliases = {id_: names for id_, names in _names_by_storage(expected).items() if len(names) > 1}
    covered = {n for names in aliases.values() if any(m in stored for m in names) for n in names}
    missing = sorted(set(expected) - set(stored) - covered)
    unexpected = sorted(set(stored) - set(expected))
    wrong = [
        f"{k}: {tuple(stored[k].shape)} in the checkpoint, {tuple(expected[k].shape)} here"
        for k in sorted(set(stored) & set(expected))
        if stored[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            part
            for part in (
                f"shapes differ ({', '.join(wrong[:3])})" if wrong else "",
                f"missing {missing[:4]}" if missing else "",
                f"unexpected {unexpected[:4]}" if unexpected else "",
            )
            if part
        )
        raise RunError(
            f"checkpoint {path} does not fit this model: {details}. Was the model config "
            "changed? Resume with the run's own model settings"
        )


def _names_by_storage(state: dict[str, torch.Tensor]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name, t in state.items():
        out.setdefault(t.untyped_storage().data_ptr(), []).append(name)
    return out


def upgrade_state(state: dict[str, Any], phases: list[Phase]) -> dict[str, Any]:
    """A training state as this version writes it, from one an older version wrote: keys
    added since get the values a run without them had, balancer states their objective
    names. The one place that knows older formats; the trainer and the phases read the
    current one."""
    state = {**state}
    health = state.get("health", {})
    state["health"] = {"skipped": 0, "rollbacks": 0, "lr_scale": 1.0, **health}
    state.setdefault("loss_scales", {})  # before fp16: every phase's initial scale
    state.setdefault("train_seconds", 0.0)
    state.setdefault("until", None)
    state.setdefault("stopped", None)
    state.setdefault("augment", None)  # before ADA's p: p as configured
    balancers = dict(state["balancers"])
    for phase in phases:
        saved = balancers.get(phase.name)
        if saved is None:  # from before this phase existed (lazy terms were part of D)
            if phase.balancer.stateful:
                raise RunError(
                    f"the checkpoint holds no state for the balancer ({phase.balancer.name}) "
                    f"of phase {phase.name!r}: it was written by an mtgan version whose lazy "
                    "regularisers were part of the D phase; resume it with that version or "
                    "start a new run"
                )
            saved = phase.balancer_state()  # a stateless balancer's: as it is
        elif "objectives" not in saved:  # from before balancer states carried names
            saved = {"objectives": list(phase.names), "state": saved}
        balancers[phase.name] = saved
    state["balancers"] = balancers
    return state

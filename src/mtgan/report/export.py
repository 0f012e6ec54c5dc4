"""Samples for other tools: a run's samples as folders of PNGs or one .npz, in bounded memory.

A directory export is ``DIR/<task>/000000.png, 000001.png, …`` (uint8, one folder per task) and
``DIR/export.json`` saying what the files are; an .npz holds ``x`` as uint8 (N, H, W, C), the
layout FID tools read (pytorch-fid, torch-fidelity, clean-fid), ``y`` the classes a conditional
model was asked for, and for several tasks ``task`` (N,) and ``task_names``; points stay float
(N, 2). Samples come chunk by chunk from `Run.sample_chunks`, so a directory export holds one
chunk at a time and an .npz only its uint8 array.

A directory is written into a hidden sibling and renamed into place: a reader sees the old
export or the new one, never half of one. An .npz goes through `write_atomic`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from mtgan.atomic import write_atomic
from mtgan.errors import MtganError

MANIFEST = "export.json"  # marks a directory as an export: --force may replace only those
ExportKind = Literal["dir", "npz", "png"]
PNGS_PER_JOB = 100  # PNG files one writer thread takes at a time
Chunks = Iterator[tuple[Tensor, Tensor | None]]  # (samples (T, b, ...), classes (T, b) or None)


class Run(Protocol):
    """What an export reads from a run: `mtgan.run.Run` (not imported: it imports us)."""

    path: Path
    task_names: list[str]
    shape: tuple[int, ...]
    kind: str
    num_classes: int

    @property
    def step(self) -> int: ...

    def task_index(self, task: int | str) -> int: ...

    def sample_chunks(
        self,
        tasks: Sequence[int | str] | None,
        n: int,
        seed: int,
        batch: int,
        use_ema: bool,
        label: int | None,
    ) -> Chunks: ...


def export_kind(out: str | os.PathLike[str]) -> ExportKind:
    """What `out` asks for: "dir" (a trailing slash, an existing directory or no suffix),
    "npz" or "png" (a grid); any other suffix is an MtganError."""
    text = os.fspath(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return "dir"
    if path.suffix.lower() in (".npz", ".png"):
        return "npz" if path.suffix.lower() == ".npz" else "png"
    raise MtganError(
        f"{text}: unknown output {path.suffix!r}; use DIR/ (PNG files, one folder per task), "
        "FILE.npz (arrays) or FILE.png (a grid)"
    )


def to_uint8_nhwc(images: Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] → uint8 (N, H, W, C), rounded to nearest (k/255 survives
    exactly), NaN as 0, as `image_grid` quantises."""
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    x = torch.nan_to_num(images.detach().to("cpu", torch.float32), nan=0.0)
    x = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def task_folders(names: list[str]) -> list[str]:
    """A folder name per task name: characters other than letters, digits, space, '.', '_'
    and '-' become '_' ("digit 3/edges" → "digit 3_edges"); clashes get the task's index."""
    folders = []
    for k, name in enumerate(names):
        folder = re.sub(r"[^\w .-]", "_", name, flags=re.ASCII).strip() or f"task{k}"
        if folder.startswith("."):
            folder = "_" + folder[1:]
        while folder in folders:
            folder = f"{folder}_{k}"
        folders.append(folder)
    return folders


def export_samples(
    run: Run,
    out: str | os.PathLike[str],
    tasks: list[int | str] | None = None,
    n: int = 64,
    seed: int = 0,
    batch: int = 500,
    use_ema: bool = True,
    label: int | None = None,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write n samples of each of `tasks` (default: every task) to `out`, a directory (PNG files,
    one folder per task) or an .npz, generated `batch` per task at a time; returns `out`.

    The samples are `run.sample_chunks(tasks, n, seed, batch, use_ema, label)`. A non-empty
    directory is replaced only with `force`, and only if an earlier export wrote it.
    """
    kind = export_kind(out)
    if kind == "png":
        raise MtganError(f"{os.fspath(out)}: a .png is one grid; export to DIR/ or FILE.npz")
    if kind == "dir" and run.kind != "image":
        raise MtganError(f"{run.path} makes {run.kind}, not images: export to FILE.npz")
    chunks = run.sample_chunks(tasks, n, seed, batch, use_ema, label)  # checks its arguments
    ks = list(range(len(run.task_names))) if tasks is None else [run.task_index(t) for t in tasks]
    bar = tqdm(total=len(ks) * n, unit="img", desc="sample", disable=not progress)
    try:
        if kind == "npz":
            return _write_npz(run, Path(out), ks, n, chunks, bar)
        manifest = {
            "run": str(run.path),
            "step": run.step,
            "ema": use_ema,
            "seed": seed,
            "n": n,
            "label": label,
            "format": "PNG, uint8",
        }
        return _write_dir(
            Path(out), [run.task_names[k] for k in ks], n, chunks, manifest, force, bar
        )
    finally:
        bar.close()


def _write_npz(run: Run, path: Path, ks: list[int], n: int, chunks: Chunks, bar: tqdm) -> Path:
    """Fill the arrays chunk by chunk, then write them at once: (T, n, …) rows, task-major."""
    images = run.kind == "image"
    if images:
        c, h, w = run.shape
        x = np.empty((len(ks), n, h, w, c), np.uint8)
    else:
        x = np.empty((len(ks), n, *run.shape), np.float32)
    y = np.empty((len(ks), n), np.int64) if run.num_classes else None
    at = 0
    for samples, classes in chunks:
        b = samples.shape[1]
        for t, part in enumerate(samples):
            x[t, at : at + b] = to_uint8_nhwc(part) if images else part.float().numpy()
        if y is not None and classes is not None:
            y[:, at : at + b] = classes.numpy()
        at += b
        bar.update(len(ks) * b)
    arrays = {"x": x.reshape(len(ks) * n, *x.shape[2:])}
    if y is not None:
        arrays["y"] = y.reshape(-1)
    if len(ks) > 1:
        arrays["task"] = np.repeat(np.asarray(ks, np.int64), n)
        arrays["task_names"] = np.asarray([run.task_names[k] for k in ks])
    return write_atomic(path, lambda tmp: _savez(tmp, arrays))


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # np.savez given a name would append ".npz" to the temporary name: give it the file.
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _check_replaceable(target: Path, force: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise MtganError(f"{target} exists and is not a directory")
    if not any(target.iterdir()):
        return
    if not force:
        raise MtganError(f"{target} is not empty; use --force (force=True) to replace it")
    if not (target / MANIFEST).is_file():
        raise MtganError(
            f"{target} is not empty and holds no {MANIFEST}, so no mtgan export wrote it: "
            "refusing to replace it; choose another directory"
        )


def _write_dir(
    target: Path, names: list[str], n: int, chunks: Chunks, manifest: dict, force: bool, bar: tqdm
) -> Path:
    _check_replaceable(target, force)
    folders = task_folders(names)
    width = max(6, len(str(n - 1)))  # names sort in sample order
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
    except OSError as e:
        raise MtganError(f"cannot write {target}: {e}") from None
    # PNG encoding and file writes release the GIL: threads write while the next chunk is made.
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    try:
        for folder in folders:
            (tmp / folder).mkdir()
        at, pending = 0, []
        for samples, _ in chunks:
            for folder, part in zip(folders, samples):
                images = to_uint8_nhwc(part)
                for lo in range(0, len(images), PNGS_PER_JOB):
                    job = images[lo : lo + PNGS_PER_JOB]
                    pending.append(pool.submit(_save_pngs, job, tmp / folder, at + lo, width))
            at += samples.shape[1]
            # At most two chunks in memory: wait for the one before this.
            while len(pending) > 2 * len(folders) * -(-samples.shape[1] // PNGS_PER_JOB):
                pending.pop(0).result()
            bar.update(len(folders) * samples.shape[1])
        for job in pending:
            job.result()
        manifest = {**manifest, "tasks": dict(zip(folders, names))}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if hasattr(os, "sync"):
            os.sync()  # one flush for all files: an fsync per PNG would cost more than the PNG
        _swap(tmp, target)
    except OSError as e:
        pool.shutdown(cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise MtganError(f"cannot write {target}: {e}") from None
    except BaseException:
        pool.shutdown(cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        pool.shutdown()
    return target


def _save_pngs(images: np.ndarray, folder: Path, first: int, width: int) -> None:
    """Images (B, H, W, C) uint8 → folder/<first + i>.png, zero-padded to `width` digits."""
    for i, image in enumerate(images):
        pixels = image[:, :, 0] if image.shape[2] == 1 else image
        Image.fromarray(pixels).save(folder / f"{first + i:0{width}d}.png")


def _swap(tmp: Path, target: Path) -> None:
    """Rename the finished `tmp` onto `target`; an old export is moved aside, then deleted."""
    if not target.exists():
        os.replace(tmp, target)
        return
    if not any(target.iterdir()):
        target.rmdir()
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)

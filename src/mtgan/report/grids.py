"""Sample reports: image grids, 2-D scatter plots and raw sample arrays, written atomically.

Every writer goes through a temp file in the target directory and ``os.replace``, so a crash
or a full disk never leaves a half-written PNG/NPZ where a reader (or a resumed run) expects
a complete one. matplotlib is imported only inside the plotting code: it is slow to import
and not needed by runs that report images only.
"""

# Hand-written instead of torchvision's make_grid/save_image: torchvision is not a dependency
# (its PyPI wheel does not import beside the CPU torch wheel we pin).

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from torch import Tensor

from mtgan.atomic import write_atomic
from mtgan.rundir import grid_name

OVERVIEW_PER_TASK = 10  # samples per task (one row each) in the step-*-all.png image overview


def _to_numpy(t: Tensor) -> np.ndarray:
    """Detached CPU copy as numpy; bfloat16, which numpy lacks, becomes float32."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def image_grid(
    images: Tensor,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile images (N, C, H, W) in [0, 1] into one uint8 array, like torchvision's make_grid.

    ``nrow`` is the number of images per row (default ceil(sqrt(N))); tiles are separated and
    framed by ``padding`` pixels of ``pad_value``; unused tiles in the last row are blank.
    Returns (H', W', C), or (H', W') when C == 1, with H' = rows·(H + p) + p and
    W' = cols·(W + p) + p. Image i sits at row i // cols, column i % cols.
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n)) if nrow is None else nrow
    if cols < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    p = padding

    x = torch.nan_to_num(images.detach().to("cpu", torch.float32), nan=0.0)
    if rows * cols > n:
        x = torch.cat([x, x.new_full((rows * cols - n, c, h, w), pad_value)])
    # Each tile carries its own top/left border; one closing bottom/right border is added last.
    x = F.pad(x, (p, 0, p, 0), value=pad_value)
    x = x.reshape(rows, cols, c, h + p, w + p).permute(2, 0, 3, 1, 4)
    x = x.reshape(c, rows * (h + p), cols * (w + p))
    x = F.pad(x, (0, p, 0, p), value=pad_value)
    # Round to nearest so k/255 inputs survive the trip exactly.
    grid = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0)
    out = np.ascontiguousarray(grid.numpy())
    return out[:, :, 0] if c == 1 else out


def save_image_grid(
    images: Tensor,
    path: str | os.PathLike[str],
    nrow: int | None = None,
    *,
    title: str | None = None,
) -> Path:
    """Write ``image_grid(images, nrow)`` as a PNG (atomically); ``title`` goes in PNG metadata."""
    pil = Image.fromarray(image_grid(images, nrow))
    info = PngInfo()
    if title is not None:
        info.add_text("Title", title)
    return write_atomic(path, lambda tmp: pil.save(tmp, format="PNG", pnginfo=info))


def _points(t: Tensor, what: str) -> np.ndarray:
    """(N, 2) tensor -> float numpy array, with a clear error for any other shape."""
    if t.dim() != 2 or t.shape[1] != 2:
        raise ValueError(f"{what} must have shape (N, 2), got {tuple(t.shape)}")
    return _to_numpy(t).astype(np.float64, copy=False)


def _task_colors(k: int) -> list[Any]:
    """One distinct colour per task: tab10 up to 10 tasks, tab20 up to 20, then turbo."""
    import matplotlib

    if k <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(k)]
    return [matplotlib.colormaps["turbo"](i / (k - 1)) for i in range(k)]


def _save_scatter(
    path: str | os.PathLike[str],
    groups: Sequence[tuple[Tensor, str | None, Any]],
    modes: Tensor | None,
    real: Tensor | None,
    title: str | None,
) -> Path:
    """Scatter each (points (N, 2), label, colour) group over faint real data and mode crosses."""
    # Object-oriented API on an explicit Agg canvas: no pyplot figure registry to leak figures
    # into, and no global matplotlib.use() that would switch the caller's (e.g. notebook) backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if real is not None:
        r = _points(real, "real")
        ax.scatter(r[:, 0], r[:, 1], s=4, color="0.6", alpha=0.25, linewidths=0, label="real")
    for pts, label, color in groups:
        q = _points(pts, "points")
        ax.scatter(q[:, 0], q[:, 1], s=6, color=color, alpha=0.8, linewidths=0, label=label)
    if modes is not None:
        m = _points(modes, "modes")
        ax.scatter(m[:, 0], m[:, 1], s=50, marker="x", color="red", linewidths=1.5, label="modes")
    ax.set_aspect("equal", adjustable="datalim")
    if title is not None:
        ax.set_title(title)
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(loc="upper right", fontsize="small", markerscale=2, framealpha=0.8)
    fig.tight_layout()
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def save_points_plot(
    points: Tensor,
    path: str | os.PathLike[str],
    modes: Tensor | None = None,
    title: str | None = None,
    real: Tensor | None = None,
) -> Path:
    """Scatter-plot 2-D samples (N, 2) to a PNG, with modes (M, 2) as red crosses and real
    data (R, 2) as faint grey points when given; equal aspect so distances read true."""
    return _save_scatter(path, [(points, "samples", "C0")], modes, real, title)


def save_task_grids(
    samples: Tensor,
    out_dir: str | os.PathLike[str],
    step: int,
    names: list[str],
    kind: Literal["image", "points"],
    *,
    modes: Sequence[Tensor] | Tensor | None = None,
    real: Tensor | None = None,
) -> list[Path]:
    """Write one PNG per task plus an overview for samples (K, N, *shape) at a training step.

    Files: ``step-{step:07d}-task{k:02d}.png`` for each task k, then ``step-{step:07d}-all.png``.
    kind="image": samples (K, N, C, H, W) in [0, 1]; the overview has one row per task with
    the first min(N, 10) samples. kind="points": samples (K, N, 2); the overview scatters all
    tasks, one colour each. ``modes`` (points only): per-task (M_k, 2) target modes, drawn as
    red crosses; ``real`` (points only): (K, R, 2) real samples per task, drawn faint grey.
    Returns the paths written, per-task files first.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if samples.dim() < 2:
        raise ValueError(f"samples must be (K, N, *shape), got {tuple(samples.shape)}")
    k_tasks, n = samples.shape[:2]
    if len(names) != k_tasks:
        raise ValueError(f"got {len(names)} names for {k_tasks} tasks")
    if modes is not None and len(modes) != k_tasks:
        raise ValueError(f"got modes for {len(modes)} tasks, expected {k_tasks}")
    out = Path(out_dir)
    task_paths = [out / grid_name(step, k) for k in range(k_tasks)]
    overview = out / grid_name(step)

    if kind == "image":
        if samples.dim() != 5:
            raise ValueError(f"image samples must be (K, N, C, H, W), got {tuple(samples.shape)}")
        if modes is not None or real is not None:
            raise ValueError("modes and real apply to kind='points' only")
        for k, name in enumerate(names):
            save_image_grid(samples[k], task_paths[k], title=f"{name} - step {step}")
        per = min(n, OVERVIEW_PER_TASK)
        first = samples[:, :per].reshape(k_tasks * per, *samples.shape[2:])
        save_image_grid(first, overview, nrow=per, title=f"{' | '.join(names)} - step {step}")
    elif kind == "points":
        if samples.dim() != 3 or samples.shape[2] != 2:
            raise ValueError(f"point samples must be (K, N, 2), got {tuple(samples.shape)}")
        colors = _task_colors(k_tasks)
        for k, name in enumerate(names):
            task_modes = None if modes is None else modes[k]
            groups = [(samples[k], name, colors[k])]
            task_real = None if real is None else real[k]
            _save_scatter(task_paths[k], groups, task_modes, task_real, f"{name} - step {step}")
        all_modes = None if modes is None else torch.cat([m.reshape(-1, 2) for m in modes])
        all_real = None if real is None else real.reshape(-1, 2)
        groups = list(zip(samples, names, colors))
        _save_scatter(overview, groups, all_modes, all_real, f"all tasks - step {step}")
    else:
        raise ValueError(f"kind must be 'image' or 'points', got {kind!r}")
    return [*task_paths, overview]


def save_npz(
    samples: Tensor,
    path: str | os.PathLike[str],
    labels: Tensor | None = None,
) -> Path:
    """Save samples as array ``x`` (and labels as ``y``) in an .npz file, atomically.

    ``labels``, if given, must match the leading dimensions of ``samples`` (e.g. (K, N) task
    ids for samples (K, N, *shape)).
    """
    arrays = {"x": _to_numpy(samples)}
    if labels is not None:
        if tuple(labels.shape) != tuple(samples.shape[: labels.dim()]):
            raise ValueError(
                f"labels {tuple(labels.shape)} do not match the leading dimensions of "
                f"samples {tuple(samples.shape)}"
            )
        arrays["y"] = _to_numpy(labels)
    # A file object, not a name: np.savez would otherwise append ".npz" to the temp name.
    return write_atomic(path, lambda tmp: _savez(tmp, arrays))


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # np.savez given a name would append ".npz" to the temporary name: give it the file.
    with open(path, "wb") as f:
        np.savez(f, **arrays)

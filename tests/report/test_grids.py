"""Image grids, point plots, per-task reports and .npz dumps: shapes, content, atomic files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mtgan.report import image_grid, save_image_grid, save_npz, save_points_plot, save_task_grids


def _images(n: int, c: int, h: int = 28, w: int = 28, seed: int = 0) -> torch.Tensor:
    # Multiples of 1/255 so the uint8 round trip is exact.
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=gen).float() / 255


def _no_temp_files(directory: Path) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_grid_shape_and_tile_content() -> None:
    images = _images(10, 1)
    grid = image_grid(images, nrow=5, padding=2)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * 28 + 3 * 2, 5 * 28 + 6 * 2)
    top, left = 2 + 1 * (28 + 2), 2 + 2 * (28 + 2)  # tile (row 1, col 2)
    tile = grid[top : top + 28, left : left + 28]
    np.testing.assert_array_equal(tile, (images[7, 0] * 255).round().to(torch.uint8).numpy())
    # Borders carry pad_value (white by default).
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all() and (grid[-2:] == 255).all()


def test_grid_default_nrow_blank_tiles_and_clamp() -> None:
    images = _images(7, 1, 4, 4) * 3 - 1  # values outside [0, 1] are clamped
    grid = image_grid(images, padding=1, pad_value=0.0)
    # ceil(sqrt(7)) = 3 columns, 3 rows; the last two tiles are blank (pad_value).
    assert grid.shape == (3 * 5 + 1, 3 * 5 + 1)
    assert (grid[11:15, 6:10] == 0).all() and (grid[11:15, 11:15] == 0).all()
    want = (images[6, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(grid[11:15, 1:5], want)


def test_grid_rgb() -> None:
    images = _images(4, 3, 8, 6)
    grid = image_grid(images, nrow=2, padding=0)
    assert grid.shape == (16, 12, 3)
    want = (images[3] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(grid[8:16, 6:12], want)


def test_grid_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        image_grid(torch.zeros(0, 1, 4, 4))
    with pytest.raises(ValueError):
        image_grid(torch.zeros(3, 4, 4))


@pytest.mark.parametrize("channels", [1, 3])
def test_save_image_grid_png(tmp_path: Path, channels: int) -> None:
    images = _images(10, channels)
    path = save_image_grid(images, tmp_path / "sub" / "grid.png", nrow=5)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (5 * 28 + 6 * 2, 2 * 28 + 3 * 2)  # PIL reports (width, height)
        np.testing.assert_array_equal(np.asarray(img), image_grid(images, nrow=5))
    _no_temp_files(path.parent)


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_image_grid(_images(2, 1), tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []


def test_points_plot_png(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(500, 2, generator=gen)
    modes = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    real = torch.randn(300, 2, generator=gen)
    path = save_points_plot(points, tmp_path / "pts.png", modes=modes, title="t", real=real)
    with Image.open(path) as img:
        img.verify()
    assert path.stat().st_size > 0
    _no_temp_files(tmp_path)
    with pytest.raises(ValueError):
        save_points_plot(torch.zeros(5, 3), tmp_path / "bad.png")


def test_task_grids_images(tmp_path: Path) -> None:
    k, n = 3, 12
    samples = _images(k * n, 1, 8, 8).reshape(k, n, 1, 8, 8)
    paths = save_task_grids(samples, tmp_path, 250, ["a", "b", "c"], "image")
    assert len(paths) == k + 1
    assert [p.name for p in paths] == [
        "step-0000250-task00.png",
        "step-0000250-task01.png",
        "step-0000250-task02.png",
        "step-0000250-all.png",
    ]
    assert sorted(tmp_path.iterdir()) == sorted(paths)  # exactly K + 1 files, no temp files
    with Image.open(paths[-1]) as img:
        overview = np.asarray(img)
    # One row per task, first min(N, 10) = 10 samples each.
    np.testing.assert_array_equal(overview, image_grid(samples[:, :10].reshape(-1, 1, 8, 8), 10))


def test_task_grids_points(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    samples = torch.randn(2, 200, 2, generator=gen)
    modes = torch.randn(2, 4, 2, generator=gen)
    paths = save_task_grids(samples, tmp_path, 7, ["ring", "grid"], "points", modes=modes)
    assert len(paths) == 3 and paths[-1].name == "step-0000007-all.png"
    assert sorted(tmp_path.iterdir()) == sorted(paths)
    for path in paths:
        with Image.open(path) as img:
            img.verify()
    with pytest.raises(ValueError):
        save_task_grids(samples, tmp_path, 7, ["only-one"], "points")
    with pytest.raises(ValueError):
        save_task_grids(samples, tmp_path, 7, ["a", "b"], "video")  # type: ignore[arg-type]


def test_save_npz(tmp_path: Path) -> None:
    samples = torch.randn(2, 5, 3)
    labels = torch.arange(2).repeat_interleave(5).reshape(2, 5)
    path = save_npz(samples, tmp_path / "samples.npz", labels)
    with np.load(path) as data:
        np.testing.assert_array_equal(data["x"], samples.numpy())
        np.testing.assert_array_equal(data["y"], labels.numpy())
    path = save_npz(samples, tmp_path / "x_only.npz")
    with np.load(path) as data:
        assert list(data.keys()) == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npz", "x_only.npz"]

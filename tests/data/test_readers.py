import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from mtgan.data.readers import read_idx, read_path
from mtgan.errors import DataError


def _idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0,0,0x08,ndim then big-endian uint32 dims."""
    header = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    return header + a.astype(np.uint8).tobytes()


def _write_idx(folder, name, a, gz):
    path = folder / (name + (".gz" if gz else ""))
    data = _idx_bytes(a)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_train_then_t10k(tmp_path, gz):
    rng = np.random.default_rng(0)
    tr_x = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    tr_y = rng.integers(0, 10, 6, dtype=np.uint8)
    te_x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    te_y = rng.integers(0, 10, 4, dtype=np.uint8)
    _write_idx(tmp_path, "train-images-idx3-ubyte", tr_x, gz)
    _write_idx(tmp_path, "train-labels-idx1-ubyte", tr_y, gz)
    _write_idx(tmp_path, "t10k-images-idx3-ubyte", te_x, gz)
    _write_idx(tmp_path, "t10k-labels-idx1-ubyte", te_y, gz)
    x, y, names = read_path(tmp_path)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32
    expected = np.concatenate([tr_x, te_x])[:, None].astype(np.float32) / 255
    assert np.array_equal(x.numpy(), expected)
    assert y.tolist() == np.concatenate([tr_y, te_y]).tolist()
    assert names is None


def test_idx_images_without_labels_give_no_labels(tmp_path):
    _write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((3, 5, 5), np.uint8), False)
    x, y, _ = read_path(tmp_path, fmt="idx")
    assert x.shape == (3, 1, 5, 5) and y is None


def test_truncated_idx_file_raises_naming_the_file(tmp_path):
    path = _write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((3, 5, 5), np.uint8), False)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        read_path(tmp_path)
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_idx_label_count_mismatch_names_the_label_file(tmp_path):
    _write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((3, 5, 5), np.uint8), False)
    _write_idx(tmp_path, "train-labels-idx1-ubyte", np.zeros(2, np.uint8), False)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        read_path(tmp_path)


def _png(path, size=(8, 8), mode="L", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, color).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    for cls, n in [("cat", 2), ("dog", 3)]:
        for i in range(n):
            _png(tmp_path / cls / f"{i}.png", value=50 * i)
    x, y, names = read_path(tmp_path)
    assert names == ["cat", "dog"]
    assert y.tolist() == [0, 0, 1, 1, 1]
    assert x.shape == (5, 1, 8, 8)
    assert torch.allclose(x[3, 0, 0, 0], torch.tensor(50 / 255))


def test_flat_image_folder_is_one_class(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    x, y, names = read_path(tmp_path, fmt="folder")
    assert x.shape == (2, 1, 8, 8) and y.tolist() == [0, 0] and len(names) == 1


def test_any_colour_image_makes_the_folder_rgb(tmp_path):
    _png(tmp_path / "a" / "gray.png", value=100)
    _png(tmp_path / "b" / "rgb.png", mode="RGB", value=100)
    x, _, _ = read_path(tmp_path)
    assert x.shape == (2, 3, 8, 8)
    assert torch.allclose(x[0, :, 0, 0], torch.full((3,), 100 / 255))


def test_mixed_sizes_without_image_size_name_the_odd_file(tmp_path):
    _png(tmp_path / "c" / "a.png", size=(8, 8))
    _png(tmp_path / "c" / "b.png", size=(10, 6))
    with pytest.raises(DataError, match="b.png"):
        read_path(tmp_path)


def test_mixed_sizes_with_image_size_are_resized(tmp_path):
    _png(tmp_path / "c" / "a.png", size=(8, 8))
    _png(tmp_path / "c" / "b.png", size=(10, 6))
    x, _, _ = read_path(tmp_path, image_size=4)
    assert x.shape == (2, 1, 4, 4)
    assert torch.allclose(x, torch.full_like(x, 128 / 255), atol=1e-6)


def test_corrupt_png_raises_naming_the_file(tmp_path):
    _png(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(np.random.default_rng(0).bytes(200))
    with pytest.raises(DataError, match="broken.png"):
        read_path(tmp_path)


def test_empty_folder_raises(tmp_path):
    with pytest.raises(DataError, match="no data"):
        read_path(tmp_path)
    with pytest.raises(DataError, match="no PNG/JPEG"):
        read_path(tmp_path, fmt="folder")


def test_missing_path_raises(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_path(tmp_path / "nope")


@pytest.mark.parametrize(
    "shape,layout",
    [((4, 6, 6), "NHW"), ((4, 1, 6, 6), "NCHW"), ((4, 6, 6, 3), "NHWC"), ((4, 3, 6, 6), "NCHW")],
)
def test_npz_image_layouts_become_nchw_in_unit_range(tmp_path, shape, layout):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=a, y=np.arange(4))
    x, y, _ = read_path(tmp_path / "d.npz")
    c = 1 if layout == "NHW" else (shape[1] if layout == "NCHW" else shape[3])
    assert x.shape == (4, c, 6, 6)
    nchw = a[:, None] if layout == "NHW" else a if layout == "NCHW" else a.transpose(0, 3, 1, 2)
    assert np.array_equal(x.numpy(), nchw.astype(np.float32) / 255)
    assert y.tolist() == [0, 1, 2, 3]


def test_npz_points(tmp_path):
    pts = np.random.default_rng(0).normal(size=(7, 2))
    np.savez(tmp_path / "p.npz", x=pts)
    x, y, _ = read_path(tmp_path / "p.npz")
    assert x.shape == (7, 2) and x.dtype == torch.float32 and y is None


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((4, 5), np.float32),  # 2D but not points
        np.zeros((4, 6, 6, 2), np.uint8),  # no channel axis of size 1 or 3
        np.zeros((4, 6, 6), np.int32),  # wrong dtype
        np.full((4, 6, 6), 2.0),  # float outside [0, 1]
    ],
)
def test_npz_bad_x_raises_naming_x(tmp_path, x):
    np.savez(tmp_path / "d.npz", x=x)
    with pytest.raises(DataError, match="'x'"):
        read_path(tmp_path / "d.npz")


def test_npz_y_length_mismatch_raises_naming_y(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 6, 6), np.uint8), y=np.arange(3))
    with pytest.raises(DataError, match="'y'"):
        read_path(tmp_path / "d.npz")


def test_npz_without_x_lists_the_arrays_found(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 6, 6), np.uint8))
    with pytest.raises(DataError, match="images"):
        read_path(tmp_path / "d.npz")


def test_unrecognised_file_raises_listing_expected_formats(tmp_path):
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="npz"):
        read_path(tmp_path / "data.csv")

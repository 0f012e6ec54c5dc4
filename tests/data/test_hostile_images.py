"""Image folders with broken, odd or misnamed files: clear DataErrors, or skipped on request."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mtgan.cli import main
from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.data.readers import read_path
from mtgan.errors import DataError

SIDE = 8


def _png_bytes(seed: int = 0, mode: str = "L", side: int = SIDE) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (side, side) if mode == "L" else (side, side, len(mode))
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def _class_folder(root: Path, per_class: int = 3, classes: tuple[str, ...] = ("a", "b")) -> Path:
    """root/<class>/<i>.png: valid 8x8 grayscale PNGs, one subfolder per class."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.png").write_bytes(_png_bytes(seed=10 * k + i))
    return root


def _corrupt(file: Path) -> Path:
    file.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return file


def _truncated(file: Path) -> Path:
    data = _png_bytes(seed=5, side=32)
    file.write_bytes(data[: len(data) // 2])
    return file


BREAKERS = {"corrupt": _corrupt, "truncated": _truncated}


@pytest.mark.parametrize("kind", sorted(BREAKERS))
def test_broken_image_is_a_data_error_naming_the_file(tmp_path, kind):
    folder = _class_folder(tmp_path / "imgs")
    BREAKERS[kind](folder / "b" / "broken.png")
    with pytest.raises(DataError, match="broken.png"):
        read_path(folder)


@pytest.mark.parametrize("kind", sorted(BREAKERS))
def test_skip_invalid_loads_the_rest_and_warns_with_the_count(tmp_path, kind):
    folder = _class_folder(tmp_path / "imgs")
    BREAKERS[kind](folder / "b" / "broken.png")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\).*b/broken\.png"):
        x, y, names = read_path(folder, skip_invalid=True)
    assert x.shape == (6, 1, SIDE, SIDE)
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    assert names == ["a", "b"]


def test_skip_invalid_warning_lists_only_the_first_few_names(tmp_path):
    folder = _class_folder(tmp_path / "imgs", classes=("a",))
    for i in range(8):
        _corrupt(folder / "a" / f"bad{i}.png")
    with pytest.warns(UserWarning, match=r"skipped 8 .*and 3 more") as record:
        x, _, _ = read_path(folder, skip_invalid=True)
    assert x.shape[0] == 3
    message = str(record[0].message)
    assert "bad0.png" in message and "bad7.png" not in message


def test_skip_invalid_without_skipped_files_does_not_warn(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _, _ = read_path(folder, skip_invalid=True)
    assert x.shape[0] == 6


def test_skip_invalid_with_every_image_unreadable_is_still_a_data_error(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        _corrupt(folder / f"{i}.png")
    with pytest.raises(DataError, match="no readable images in"):
        read_path(folder, skip_invalid=True)


def test_skip_invalid_with_one_class_unreadable_names_that_class(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    (folder / "c").mkdir()
    _corrupt(folder / "c" / "0.png")
    with pytest.raises(DataError, match=r"no readable images in .*imgs/c"):
        read_path(folder, skip_invalid=True)


def test_rgba_images_load_as_rgb_with_alpha_dropped(tmp_path):
    folder = tmp_path / "rgba"
    folder.mkdir()
    rgba = np.zeros((SIDE, SIDE + 2, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # opaque-looking red, fully transparent: alpha must not leak in
    for i in range(2):
        Image.fromarray(rgba, "RGBA").save(folder / f"{i}.png")
    x, y, _ = read_path(folder)
    assert x.shape == (2, 3, SIDE, SIDE + 2)
    assert torch.all(x[:, 0] == 1.0) and torch.all(x[:, 1:] == 0.0)
    assert y.tolist() == [0, 0]


def test_16_bit_grayscale_is_scaled_into_unit_range(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    a = np.array([[0, 65535], [32768, 255]], dtype=np.uint16)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    img.save(folder / "g.png")
    x, _, _ = read_path(folder)
    assert x.shape == (1, 1, 2, 2)
    assert x[0, 0, 0, 1].item() == 1.0 and x[0, 0, 0, 0].item() == 0.0
    assert x[0, 0, 1, 0].item() == pytest.approx(32768 / 65535)
    # 255 of 65535 is dark: a reader clipping to 8 bits would make it white (1.0).
    assert x[0, 0, 1, 1].item() == pytest.approx(255 / 65535)


def test_mixed_sizes_without_image_size_name_the_odd_file(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    (folder / "b" / "big.png").write_bytes(_png_bytes(side=2 * SIDE))
    with pytest.raises(DataError, match=r"big\.png is 16x16.*image_size"):
        read_path(folder)
    x, _, _ = read_path(folder, image_size=SIDE)
    assert x.shape == (7, 1, SIDE, SIDE)


def test_folder_without_images_is_a_data_error(tmp_path):
    folder = tmp_path / "empty"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="empty"):
        read_path(folder)
    with pytest.raises(DataError, match="no PNG/JPEG images"):
        read_path(folder, fmt="folder")


def test_text_file_named_png_is_a_data_error_naming_it(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    (folder / "a" / "readme.png").write_text("this is not an image\n")
    with pytest.raises(DataError, match=r"cannot read image .*readme\.png"):
        read_path(folder)


def test_directory_named_png_in_a_class_folder_is_a_data_error_naming_it(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    (folder / "a" / "trap.png").mkdir()
    with pytest.raises(DataError, match=r"trap\.png: it is a directory"):
        read_path(folder)
    with pytest.warns(UserWarning, match="skipped 1 .*trap.png"):
        x, _, _ = read_path(folder, skip_invalid=True)
    assert x.shape[0] == 6


def test_directory_named_png_among_loose_images_is_a_data_error_naming_it(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "0.png").write_bytes(_png_bytes())
    (folder / "odd.jpg").mkdir()
    with pytest.raises(DataError, match=r"odd\.jpg: it is a directory"):
        read_path(folder)


def _data_config(folder: Path, *overrides: str):
    return load_config("baseline", [f"data.path={folder}", *overrides]).data


def test_build_tasks_raises_without_skip_invalid(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    _corrupt(folder / "a" / "zz.png")
    with pytest.raises(DataError, match="zz.png"):
        build_tasks(_data_config(folder, "data.tasks=classes"), seed=0)


def test_build_tasks_threads_skip_invalid_to_the_reader(tmp_path):
    folder = _class_folder(tmp_path / "imgs")
    _corrupt(folder / "a" / "zz.png")
    cfg = _data_config(folder, "data.tasks=classes", "data.skip_invalid=true")
    with pytest.warns(UserWarning, match="skipped 1"):
        tasks = build_tasks(cfg, seed=0)
    assert tasks.names == ["a", "b"]
    assert tasks.counts.tolist() == [3, 3]
    assert tasks.shape == (1, SIDE, SIDE)


def test_cli_train_on_a_corrupt_folder_exits_2_naming_the_file(tmp_path, capsys):
    folder = _class_folder(tmp_path / "imgs")
    _corrupt(folder / "b" / "broken.png")
    code = main(["train", "baseline", f"data.path={folder}", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.png" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "config.yaml").exists()
    assert "set data.skip_invalid=true to skip it" in err  # the way past it, named


def test_a_one_class_folder_under_one_task_per_class_is_a_data_error(tmp_path):
    folder = _class_folder(tmp_path / "imgs", classes=("only",))
    with pytest.raises(DataError, match=r"found one class in .* \(only\), so there is one task"):
        build_tasks(_data_config(folder, "data.tasks=classes"), seed=0)
    assert build_tasks(_data_config(folder, "data.tasks=single"), seed=0).num_tasks == 1

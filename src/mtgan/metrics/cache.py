"""Where mtgan caches what it computes once (the digit classifier, real-data features), and
atomic writes into that cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir(override: str | Path | None = None) -> Path:
    """Where mtgan caches trained classifiers and real-data features: `override`, else
    $MTGAN_CACHE, else $XDG_CACHE_HOME/mtgan, else ~/.cache/mtgan."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("MTGAN_CACHE"):
        return Path(os.environ["MTGAN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "mtgan"
    return Path.home() / ".cache" / "mtgan"


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see
    half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

"""Where mtgan caches what it computes once (the digit classifier, real-data features), and
atomic writes into that cache."""

from __future__ import annotations

import os
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

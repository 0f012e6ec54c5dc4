"""The registered metrics, one file each: importing this package imports every module in it,
and each registers its metric in `mtgan.metrics.registry` (a new metric is a new file here)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

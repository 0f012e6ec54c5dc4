"""The registered metrics, one file each; importing this package registers them in
`mtgan.metrics.registry`, in the order below (the order of the defaults and bench columns)."""

from mtgan.metrics.catalog import (  # noqa: F401  (registration is the import's effect)
    accuracy,
    agreement,
    fid,
    kid,
    modes,
    prdc,
    stability,
)

"""Reports of generated samples: image grids, 2-D scatter plots and .npz dumps, all atomic;
exports of many samples for other tools (folders of PNGs, uint8 .npz)."""

from mtgan.report.export import export_kind, export_samples, task_folders, to_uint8_nhwc
from mtgan.report.grids import (
    image_grid,
    save_image_grid,
    save_npz,
    save_points_plot,
    save_task_grids,
)

__all__ = [
    "export_kind",
    "export_samples",
    "image_grid",
    "save_image_grid",
    "save_npz",
    "save_points_plot",
    "save_task_grids",
    "task_folders",
    "to_uint8_nhwc",
]

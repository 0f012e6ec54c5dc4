"""Reports of generated samples: image grids, 2-D scatter plots and .npz dumps, all atomic."""

from mtgan.report.grids import (
    image_grid,
    save_image_grid,
    save_npz,
    save_points_plot,
    save_task_grids,
)

__all__ = ["image_grid", "save_image_grid", "save_npz", "save_points_plot", "save_task_grids"]

"""The presets shipped with mtgan: one YAML file each (`mtgan presets` lists them)."""

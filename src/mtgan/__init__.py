"""mtgan: multi-task GANs with shared layers."""

__version__ = "0.1.0"

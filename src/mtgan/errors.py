"""User-facing errors: each carries a message that names what was wrong and what is allowed.

The CLI prints these without a traceback; anything else escaping is a bug in mtgan.
"""


class MtganError(Exception):
    """Base class of every error caused by user input (config, data, run directory)."""


class ConfigError(MtganError):
    """The experiment config is invalid: the message names the field and the allowed values."""


class DataError(MtganError):
    """Data could not be read or does not fit: the message names the file or array."""


class RunError(MtganError):
    """A run directory or checkpoint is missing, incomplete or incompatible."""


class FeatureError(MtganError):
    """Features cannot be computed: missing weights, unreadable files, inputs of the wrong shape."""

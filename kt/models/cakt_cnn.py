"""Deprecated: moved to :mod:`kt.models.cakt.net`; this path will be removed in the next release."""

import importlib as _importlib
import warnings as _warnings

from kt.models.cakt.net import *  # noqa: F403

_warnings.warn(
    "kt.models.cakt_cnn is deprecated: import kt.models.cakt.net instead; kt.models.cakt_cnn will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # The names `import *` leaves out (the underscore ones), from the new module.
    return getattr(_importlib.import_module("kt.models.cakt.net"), name)

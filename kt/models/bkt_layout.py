"""Deprecated: moved to :mod:`kt.models.bkt.layout`; this path will be removed in the next release."""

import importlib as _importlib
import warnings as _warnings

from kt.models.bkt.layout import *  # noqa: F403

_warnings.warn(
    "kt.models.bkt_layout is deprecated: import kt.models.bkt.layout instead; kt.models.bkt_layout will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # The names `import *` leaves out (the underscore ones), from the new module.
    return getattr(_importlib.import_module("kt.models.bkt.layout"), name)

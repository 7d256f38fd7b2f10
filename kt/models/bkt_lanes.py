"""Deprecated: moved to :mod:`kt.models.bkt.lanes`; this path will be removed in the next release."""

import importlib as _importlib
import warnings as _warnings

from kt.models.bkt.lanes import *  # noqa: F403

_warnings.warn(
    "kt.models.bkt_lanes is deprecated: import kt.models.bkt.lanes instead; kt.models.bkt_lanes will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # The names `import *` leaves out (the underscore ones), from the new module.
    return getattr(_importlib.import_module("kt.models.bkt.lanes"), name)

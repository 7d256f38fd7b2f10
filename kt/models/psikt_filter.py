"""Deprecated: moved to :mod:`kt.models.psikt.filter`; this path will be removed in the next release."""

import importlib as _importlib
import warnings as _warnings

from kt.models.psikt.filter import *  # noqa: F403

_warnings.warn(
    "kt.models.psikt_filter is deprecated: import kt.models.psikt.filter instead; kt.models.psikt_filter will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # The names `import *` leaves out (the underscore ones), from the new module.
    return getattr(_importlib.import_module("kt.models.psikt.filter"), name)

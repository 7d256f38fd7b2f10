"""Deprecated: moved to :mod:`kt.models.psikt.filter_model`; this path will be removed in the next release."""

import importlib as _importlib
import warnings as _warnings

from kt.models.psikt.filter_model import *  # noqa: F403

_warnings.warn(
    "kt.models.psikt_filter_model is deprecated: import kt.models.psikt.filter_model instead; kt.models.psikt_filter_model will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # The names `import *` leaves out (the underscore ones), from the new module.
    return getattr(_importlib.import_module("kt.models.psikt.filter_model"), name)

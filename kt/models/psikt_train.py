"""Deprecated: moved to :mod:`kt.models.psikt.train`; this path will be removed in the next release."""

import importlib as _importlib
import warnings as _warnings

from kt.models.psikt.train import *  # noqa: F403

_warnings.warn(
    "kt.models.psikt_train is deprecated: import kt.models.psikt.train instead; kt.models.psikt_train will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # The names `import *` leaves out (the underscore ones), from the new module.
    return getattr(_importlib.import_module("kt.models.psikt.train"), name)

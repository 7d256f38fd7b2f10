"""kt: knowledge tracing in JAX.

Quick use::

    import kt
    model = kt.train("train.csv", "bkt", out="runs/bkt")    # as `kt train`
    print(kt.evaluate(model, "test.csv")["auc"])             # as `kt evaluate`
    preds = model.predict(kt.load("test.csv", vocab=model.vocab))

Data arguments take a path, a pandas or Polars DataFrame (``kt.from_frame``),
or loaded :class:`Interactions`. The functions (see :mod:`kt.api`): ``load``,
``from_frame``, ``train``, ``create``, ``load_model``, ``evaluate``, ``predict``,
``cross_validate``, ``compare``, ``simulate``, ``list_models``,
``prerequisite_graph``, ``export_graph``. ``import kt`` does not import JAX;
each function imports what it needs.
"""

from __future__ import annotations

import sys as _sys
import types as _types

# The one place the version is written: pyproject.toml reads it from here
# (dynamic version), so the installed metadata always agrees with it.
__version__ = "0.1.0"
# The name on the package index; `kt` there is an unrelated project. The
# import name and the command stay `kt`.
DISTRIBUTION = "kt-trace"

from kt import api as _api  # noqa: E402
from kt.data.schema import Interactions  # noqa: E402
from kt.api import *  # noqa: E402, F403  (the functions of kt.api.__all__)


def distribution_version() -> str:
    """The distribution name and version, as ``kt --version`` prints them.

    Returns:
        ``"kt-trace X.Y.Z"``: the version from the installed distribution's
        metadata, or :data:`__version__` when kt runs from a source tree that
        is not installed.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version(DISTRIBUTION)
    except PackageNotFoundError:
        v = __version__
    return f"{DISTRIBUTION} {v}"


class _Package(_types.ModuleType):
    """``kt`` itself: keeps ``kt.train`` the function when the ``kt.train`` subpackage is imported.

    Importing a submodule sets it as an attribute of its parent package;
    ``kt/train/`` (the shared training loop) would so replace
    :func:`kt.api.train` at the first gradient-model import. Imports of the
    subpackage (``from kt.train import loop``) go through ``sys.modules``
    and are unaffected.
    """

    def __setattr__(self, name: str, value) -> None:
        if name == "train" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

__all__ = ["DISTRIBUTION", "Interactions", "distribution_version", "__version__", *_api.__all__]

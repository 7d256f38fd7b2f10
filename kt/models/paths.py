"""Module paths of the model families: lazy packages and the deprecated old paths (imports no JAX).

* :func:`lazy_package`: a family package (``kt.models.bkt``, ...) that gives its
  submodules and the names of its ``model`` module on first use, so that
  ``import kt.models.bkt`` imports no JAX and ``from kt.models.bkt import BKT``
  works as it did when ``kt.models.bkt`` was a module.
* :func:`moved`: an old module path (``kt.models.bkt_em``, ...) that warns and
  gives every name of the module that replaced it, for one release.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any, Callable


def lazy_package(
    name: str, submodules: tuple[str, ...], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a model-family package.

    Args:
        name: the package (its ``__name__``).
        submodules: its submodules, imported on first use; ``model`` is the
            one whose names the package gives.
        public: the package's ``__all__``.

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """

    def __getattr__(attr: str) -> Any:
        if attr in submodules:
            return importlib.import_module(f"{name}.{attr}")
        if not attr.startswith("__"):
            model = importlib.import_module(f"{name}.model")
            if hasattr(model, attr):
                return getattr(model, attr)
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[name])) | set(public) | set(submodules))

    return __getattr__, __dir__


def moved(old: str, new: str, namespace: dict[str, Any]) -> Callable[[str], Any]:
    """Make module ``old`` a deprecated alias of module ``new``.

    Warns (``DeprecationWarning``, pointing at the importer's line), puts
    the names ``from new import *`` gives into ``namespace`` and returns a
    module ``__getattr__`` that gives the others (the underscore names).

    Args:
        old: the old module (its ``__name__``).
        new: the module that replaced it.
        namespace: the old module's ``globals()``.

    Returns:
        The old module's ``__getattr__``.
    """
    module = importlib.import_module(new)
    names = module.__all__ if hasattr(module, "__all__") else [n for n in vars(module) if not n.startswith("_")]
    namespace.update({n: getattr(module, n) for n in names})
    warnings.warn(
        f"{old} is deprecated: import {new} instead; {old} will be removed in the next release",
        DeprecationWarning,
        stacklevel=3,  # this function, the old module's top level, then (past the import machinery) the importer
    )

    def __getattr__(attr: str) -> Any:
        return getattr(module, attr)

    return __getattr__

"""Bayesian Knowledge Tracing: ``model`` (the :class:`BKT` class: data in and out), ``em`` (the EM
steps and parameter types), ``lanes`` (the lane engine) and ``layout`` (host-side
packing of the sequences into lanes and grids).

``import kt.models.bkt`` imports no JAX: every name of ``kt.models.bkt.model``
(the module ``kt.models.bkt`` was before it became this package) is looked up there
on first use, so ``from kt.models.bkt import BKT`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kt.models.paths import lazy_package

if TYPE_CHECKING:
    from kt.models.bkt.model import BKT, BKTConfig

__all__ = ["BKT", "BKTConfig"]
_SUBMODULES = ("model", "em", "lanes", "layout")

__getattr__, __dir__ = lazy_package(__name__, _SUBMODULES, __all__)

"""PSI-KT: ``model`` (the :class:`PsiKT` class: data in and out), ``core`` (the
pure JAX pieces: links, graph, transition, networks, ELBO), ``filter`` (the
filter-inference equations), ``filter_model`` (the ``inference=filter``
class) and ``train`` (its training loop).

``import kt.models.psikt`` imports no JAX: every name of ``kt.models.psikt.model``
(the module ``kt.models.psikt`` was before it became this package) is looked up there
on first use, so ``from kt.models.psikt import PsiKT`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kt.models.paths import lazy_package

if TYPE_CHECKING:
    from kt.models.psikt.model import PsiKT, PsiKTConfig

__all__ = ["PsiKT", "PsiKTConfig"]
_SUBMODULES = ("model", "core", "filter", "filter_model", "train")

__getattr__, __dir__ = lazy_package(__name__, _SUBMODULES, __all__)

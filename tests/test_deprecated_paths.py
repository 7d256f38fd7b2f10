"""The old module paths of the models (before one subpackage per family, issue 18) still work.

Old paths that are not package names any more warn (DeprecationWarning, removed in the
next release) and give the new module's objects; the old modules that became packages
(``kt.models.bkt``, ...) give every name of the family's ``model`` module without a warning.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

SHIMS = {
    "kt.models.bkt_em": "kt.models.bkt.em",
    "kt.models.bkt_lanes": "kt.models.bkt.lanes",
    "kt.models.bkt_layout": "kt.models.bkt.layout",
    "kt.models.cakt_cnn": "kt.models.cakt.net",
    "kt.models.psikt_core": "kt.models.psikt.core",
    "kt.models.psikt_filter": "kt.models.psikt.filter",
    "kt.models.psikt_filter_model": "kt.models.psikt.filter_model",
    "kt.models.psikt_train": "kt.models.psikt.train",
}
# Old module -> new module, and names that code outside kt imported from the old module
# (public and private), which the package must still give.
PACKAGES = {
    "kt.models.bkt": ("kt.models.bkt.model", ["BKT", "BKTConfig", "BKTFitted", "SHRINK", "MAX_PHASES", "em"]),
    "kt.models.dkt": ("kt.models.dkt.model", ["DKT", "DKTConfig", "DKTNet", "next_logits", "window_sequences", "_known"]),
    "kt.models.cakt": ("kt.models.cakt.model", ["CAKT", "CAKTConfig", "CAKTNet", "neighbours", "cnn_inputs"]),
    "kt.models.psikt": ("kt.models.psikt.model", ["PsiKT", "PsiKTConfig", "Params", "core", "tr", "_fuse", "_pow2"]),
}


def _public(module) -> list[str]:
    return [n for n in vars(module) if not n.startswith("_")]


@pytest.mark.parametrize("old,new", sorted(SHIMS.items()))
def test_old_path_warns_and_gives_the_new_objects(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.*{new}.*will be removed in the next release"):
        shim = importlib.import_module(old)
    mod = importlib.import_module(new)
    names = _public(mod)
    assert names and all(getattr(shim, n) is getattr(mod, n) for n in names)
    private = [n for n in vars(mod) if n.startswith("_") and not n.startswith("__")]
    assert all(getattr(shim, n) is getattr(mod, n) for n in private)  # underscore names too
    with pytest.raises(AttributeError):
        shim.no_such_name


def test_old_path_warning_points_at_the_importer():
    old = "kt.models.bkt_layout"
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from kt.models.bkt_layout import build_packed  # noqa: F401
    (w,) = [w for w in caught if issubclass(w.category, DeprecationWarning) and old in str(w.message)]
    assert w.filename == __file__


@pytest.mark.parametrize("old,spec", sorted(PACKAGES.items()))
def test_old_modules_that_became_packages_keep_their_names(old, spec):
    new, names = spec
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pkg = importlib.import_module(old)
        mod = importlib.import_module(new)
        for n in _public(mod) + names:
            assert getattr(pkg, n) is getattr(mod, n), n
        assert set(pkg.__all__) <= set(_public(mod))
        exec(f"from {old} import *", {})
    assert not [w for w in caught if "kt.models" in str(w.message)]
    with pytest.raises(AttributeError):
        pkg.no_such_name


def test_model_packages_import_no_jax_and_do_not_warn():
    code = (
        "import sys, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import kt.models.bkt, kt.models.dkt, kt.models.cakt, kt.models.psikt\n"
        "    assert 'jax' not in sys.modules, 'jax imported'\n"
        "    from kt.models.bkt import BKT\n"
        "assert 'jax' in sys.modules and BKT.name == 'bkt'\n"
        "assert not [w for w in caught if 'kt.models' in str(w.message)], [str(w.message) for w in caught]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_and_other_old_paths():
    from kt.eval.protocols import next_step
    from kt.models.base import _BUILTIN, create

    assert {_BUILTIN[n] for n in ("bkt", "dkt", "cakt", "psikt")} == {
        f"kt.models.{n}.model" for n in ("bkt", "dkt", "cakt", "psikt")
    }
    assert type(create("bkt")).__module__ == "kt.models.bkt.model"
    assert callable(next_step)

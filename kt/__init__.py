"""kt: knowledge tracing in JAX.

Quick use::

    import kt
    train = kt.load("train.csv")
    model = kt.create("kc-rate").fit(train)
    print(kt.evaluate(model, kt.load("test.csv", vocab=model.vocab)))
"""

from __future__ import annotations

# The one place the version is written: pyproject.toml reads it from here
# (dynamic version), so the installed metadata always agrees with it.
__version__ = "0.1.0"
# The name on the package index; `kt` there is an unrelated project. The
# import name and the command stay `kt`.
DISTRIBUTION = "kt-trace"

from kt.data.schema import Interactions, load  # noqa: E402


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


__all__ = ["DISTRIBUTION", "Interactions", "distribution_version", "load", "__version__"]

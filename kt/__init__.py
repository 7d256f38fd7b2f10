"""kt: knowledge tracing in JAX.

Quick use::

    import kt
    train = kt.load("train.csv")
    model = kt.create("kc-rate").fit(train)
    print(kt.evaluate(model, kt.load("test.csv", vocab=model.vocab)))
"""

from __future__ import annotations

__version__ = "0.1.0"

from kt.data.schema import Interactions, load  # noqa: E402

__all__ = ["Interactions", "load", "__version__"]

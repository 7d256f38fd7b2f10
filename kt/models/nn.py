"""Layers shared by the neural models (DKT, CAKT, PSI-KT's amortized inference)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def lstm_update(gates: Float[Array, "... 4H"], c: Float[Array, "... H"]) -> tuple[Float[Array, "... H"], Float[Array, "... H"]]:
    """The LSTM cell's nonlinearity (PyTorch gate order i, f, g, o) from its pre-activations.

    Args:
        gates: W_ih x + W_hh h + b for this step (each model forms the sum in its own order).
        c: previous cell state.

    Returns:
        ``(h, c)``: the new hidden and cell states.
    """
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c

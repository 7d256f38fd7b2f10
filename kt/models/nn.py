"""Layers shared by the neural models (DKT, CAKT, PSI-KT's amortized inference)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


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


def scan_from_zero(cell: Callable, gates_in: Float[Array, "B T G"], size: int, reset: Bool[Array, "B T"] | None = None):
    """Run a recurrent cell over the time axis from a zero ``(h, c)`` state (LSTM or RNN).

    Args:
        cell: one step, ``((h, c), g_in) -> ((h, c), out)`` with ``g_in``
            the step's input pre-activations ``[B, G]``.
        gates_in: input pre-activations of every step.
        size: the size of ``h`` and ``c``.
        reset: packed rows: the state restarts from zero before every step
            where this is set; ``None``: never.

    Returns:
        The steps' ``out``, batch-major: ``[B, T, ...]`` for each of its arrays.
    """
    zeros = jnp.zeros((gates_in.shape[0], size), gates_in.dtype)
    xs = jnp.swapaxes(gates_in, 0, 1)
    if reset is None:
        _, out = jax.lax.scan(cell, (zeros, zeros), xs)
    else:

        def restarting(carry, x):
            g_in, r = x
            keep = ~r[:, None]
            return cell((jnp.where(keep, carry[0], 0.0), jnp.where(keep, carry[1], 0.0)), g_in)

        _, out = jax.lax.scan(restarting, (zeros, zeros), (xs, jnp.swapaxes(reset, 0, 1)))
    return jax.tree.map(lambda y: jnp.swapaxes(y, 0, 1), out)

"""The ``key`` a model's ``fit`` takes (``None``, an integer seed or a JAX PRNG key) as the randomness it uses.

One conversion each for the three kinds of randomness the models draw:

* :func:`jax_key`: a JAX key (DKT, CAKT: initialisation, shuffling, dropout);
* :func:`numpy_rng`: a NumPy generator (BKT's random restarts);
* :func:`seed_of`: an integer seed (PSI-KT's host-side initialisation and batches).

``None`` means seed 0 everywhere. An integer is used as it is; a JAX key
(typed, or the raw ``uint32`` words of ``jax.random.PRNGKey``) seeds a
NumPy generator with its key data, so the same key gives the same draws.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _is_seed(key) -> bool:
    return key is None or isinstance(key, (int, np.integer))


def jax_key(key) -> jax.Array:
    """A JAX PRNG key from ``key``.

    Args:
        key: ``None`` (seed 0), an integer seed, or a JAX key (returned as it is).

    Returns:
        The JAX key.
    """
    if _is_seed(key):
        return jax.random.key(0 if key is None else int(key))
    return key


def numpy_rng(key) -> np.random.Generator:
    """A NumPy generator from ``key``.

    Args:
        key: ``None`` (seed 0), an integer seed, or a JAX key (its key data
            seeds the generator).

    Returns:
        ``np.random.default_rng`` of the seed, or of the key's data words.
    """
    if _is_seed(key):
        return np.random.default_rng(0 if key is None else int(key))
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data, np.uint32).ravel().tolist())


def seed_of(key) -> int:
    """An integer seed from ``key`` (no device work, nothing to compile).

    Args:
        key: ``None`` (0), an integer seed (returned as an ``int``), or a JAX key.

    Returns:
        The seed; for a JAX key, the first draw in [0, 2**31 - 1) of
        :func:`numpy_rng` of the key.
    """
    if _is_seed(key):
        return 0 if key is None else int(key)
    return int(numpy_rng(key).integers(0, 2**31 - 1))

"""One conversion of a model's ``key`` (None, seed or JAX key) into its randomness (issue 18).

``kt.models.seeds`` replaced three ways of doing it (DKT/CAKT: a JAX key, BKT: a NumPy
generator, PSI-KT: an integer seed); each is checked against the code it replaced.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from kt.models import seeds

KEYS = [None, 0, 7, np.int64(11), jax.random.key(3), jax.random.key(5, impl="rbg"), jax.random.PRNGKey(9)]


def _old_bkt_rng(key) -> np.random.Generator:
    """BKT's ``_numpy_rng`` before the shared one."""
    if key is None or isinstance(key, (int, np.integer)):
        return np.random.default_rng(0 if key is None else int(key))
    try:
        data = jax.random.key_data(key)
    except (TypeError, ValueError):
        data = key
    return np.random.default_rng(np.asarray(data, np.uint32).ravel().tolist())


def _old_psikt_seed_of(key) -> int:
    """PSI-KT's ``core.seed_of`` before the shared one."""
    if key is None:
        return 0
    if isinstance(key, (int, np.integer)):
        return int(key)
    data = np.asarray(jax.random.key_data(key) if jax.numpy.issubdtype(key.dtype, jax.dtypes.prng_key) else key)
    return int(np.random.default_rng(data.astype(np.uint64).ravel().tolist()).integers(0, 2**31 - 1))


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_numpy_rng_and_seed_of_match_the_code_they_replaced(key):
    np.testing.assert_array_equal(seeds.numpy_rng(key).random(5), _old_bkt_rng(key).random(5))
    assert seeds.seed_of(key) == _old_psikt_seed_of(key) and type(seeds.seed_of(key)) is int


def test_jax_key_from_a_seed_or_a_key():
    def same(a, b) -> bool:
        return bool((jax.random.key_data(a) == jax.random.key_data(b)).all())

    assert same(seeds.jax_key(None), jax.random.key(0)) and same(seeds.jax_key(4), jax.random.key(4))
    assert same(seeds.jax_key(np.int32(4)), jax.random.key(4))
    k = jax.random.key(8)
    assert seeds.jax_key(k) is k

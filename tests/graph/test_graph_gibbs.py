"""The Monte Carlo EM structure learner (kt.graph.gibbs): its FFBS step against
enumeration of a tiny HMM, each Gibbs conditional against the complete-data
likelihood enumerated over one KC's trajectories, and recovery of a chain."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kt.graph import gibbs as GB


def _tiny_hmm(T: int, seed: int):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0.1, 0.9),
        rng.uniform(0.0, 0.5, T),
        rng.uniform(0.6, 1.0, T),
        rng.uniform(0.1, 1.0, T),
        rng.uniform(0.1, 1.0, T),
    )


def _path_weight(z, init1, p01, p11, phi0, phi1, upto: int) -> float:
    """p(z_0..upto) prod_{t <= upto} phi_t(z_t), by the definition."""
    w = init1 if z[0] else 1 - init1
    for t in range(upto):
        up = p11[t] if z[t] else p01[t]
        w *= up if z[t + 1] else 1 - up
    for t in range(upto + 1):
        w *= phi1[t] if z[t] else phi0[t]
    return w


def test_forward_filter_matches_enumeration():
    import jax.numpy as jnp

    T = 6
    init1, p01, p11, phi0, phi1 = _tiny_hmm(T, 1)
    col = lambda x: jnp.asarray(x, jnp.float32)[:, None]  # noqa: E731
    alpha1, log_z = GB.forward_filter(jnp.full(1, init1, jnp.float32), col(p01), col(p11), col(phi0), col(phi1))
    for t in range(T):
        paths = np.array(list(itertools.product([0, 1], repeat=t + 1)))
        w = np.array([_path_weight(z, init1, p01, p11, phi0, phi1, t) for z in paths])
        assert float(alpha1[t, 0]) == pytest.approx(w[paths[:, t] == 1].sum() / w.sum(), abs=1e-5)
        if t == T - 1:
            assert float(log_z[0]) == pytest.approx(np.log(w.sum()), abs=1e-4)


def test_ffbs_samples_the_posterior():
    import jax
    import jax.numpy as jnp

    T, n = 4, 100_000
    init1, p01, p11, phi0, phi1 = _tiny_hmm(T, 2)
    paths = np.array(list(itertools.product([0, 1], repeat=T)))
    w = np.array([_path_weight(z, init1, p01, p11, phi0, phi1, T - 1) for z in paths])
    rep = lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32)[:, None], (T, n))  # noqa: E731
    z = np.asarray(GB.ffbs(jax.random.PRNGKey(0), jnp.full(n, init1, jnp.float32), rep(p01), rep(p11), rep(phi0), rep(phi1)))
    code = (z.T.astype(int) * (1 << np.arange(T)[::-1])).sum(axis=1)
    freq = np.bincount(code, minlength=2**T) / n
    assert 0.5 * np.abs(freq - w / w.sum()).sum() < 0.01


def _tiny_model(n: int, seed: int):
    """Three KCs, one learner's attempts (replicated n times), random parameters with strong edges."""
    import jax.numpy as jnp

    from kt.graph.gated import _init

    rng = np.random.default_rng(seed)
    K, T, U = 3, 5, 3
    kcs = np.array([[0, -1], [1, 2], [0, 2], [2, -1], [1, 0]], np.int32)  # slot KCs per attempt
    arr = {
        "kcs": np.broadcast_to(kcs, (n, T, 2)).copy(),
        "item": np.broadcast_to(np.array([0, 1, 2, 1, 0]), (n, T)).copy(),
        "y": np.broadcast_to(np.array([1, 0, 1, 1, 0], np.float32), (n, T)).copy(),
        "mask": np.ones((n, T), bool),
        "unit_kc": np.array([0, 1, 0]),
    }
    params = {k: np.asarray(v) for k, v in _init(K, U, n, -3.0).items()}
    params["w"] = rng.normal(0, 2, (K, K)).astype(np.float32)
    for name in ("prior", "learn", "guess_kc", "slip_kc"):
        params[name] = rng.normal(-1, 0.5, K).astype(np.float32)
    params["forget"] = np.full(K, -2.0, np.float32)
    params["e_obs"], params["e_learn"] = np.float32(1.5), np.float32(1.0)
    return arr, {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(arr["unit_kc"])


def test_gibbs_conditional_matches_complete_likelihood():
    """KC 0 is redrawn first in a sweep: its draws follow p(z_0 | z_1, z_2, y) from complete_nll."""
    import jax
    import jax.numpy as jnp

    n = 60_000
    arr, params, unit_kc = _tiny_model(n, 3)
    K, T = 3, 5
    d = GB._layout(arr, K)
    rest = np.array([[0, 1, 1, 1, 1], [0, 0, 0, 1, 1]], np.float32)  # fixed trajectories of KCs 1 and 2
    z0 = jnp.asarray(np.broadcast_to(np.concatenate([np.zeros((1, T)), rest])[:, :, None], (K, T, n)).copy())
    m = GB._terms(params, unit_kc, n)
    z, _ = jax.jit(lambda key, z: GB.gibbs_sweep(key, z, m, d))(jax.random.PRNGKey(1), z0)
    got = np.asarray(z[0]).T.astype(int)  # (n, T) draws of KC 0
    code = (got * (1 << np.arange(T)[::-1])).sum(axis=1)
    freq = np.bincount(code, minlength=2**T) / n

    one = {k: v[:1] if k in ("u", "v") else v for k, v in params.items()}
    d1 = GB._layout({k: (v[:1] if k != "unit_kc" else v) for k, v in arr.items()}, K)
    paths = np.array(list(itertools.product([0, 1], repeat=T)), np.float32)
    logp = np.array(
        [-float(GB.complete_nll(one, jnp.asarray(np.concatenate([p[None], rest])[None, :, :, None]), d1, unit_kc)) for p in paths]
    )
    # complete_nll leaves out transitions no parameter governs; one of them is impossible:
    # an unpractised KC is never learnt (KC 0 is not practised at attempts 1 and 3).
    jumps = (paths[:, :-1] == 0) & (paths[:, 1:] == 1)
    logp[jumps[:, [1, 3]].any(axis=1)] = -np.inf
    exact = np.exp(logp - logp.max())
    exact /= exact.sum()
    assert 0.5 * np.abs(freq - exact).sum() < 0.015


@pytest.mark.slow
def test_gibbs_recovers_a_chain(tmp_path):
    import kt
    from kt.data.synthetic_gated import simulate_gated

    A = np.zeros((4, 4), int)
    A[0, 1] = A[1, 2] = A[2, 3] = 1
    frame, truth = simulate_gated(400, 4, 40, seed=0, adjacency=A, effect=0.95, withheld=0.0, multi_kc=0.0)
    path = tmp_path / "chain.csv"
    frame.write_csv(path)
    data = kt.load(str(path))
    w, info = GB.gibbs_scores(data, iters=10, average=5, init_steps=30)
    pos = {k: i for i, k in enumerate(data.vocab.skill_id)}
    edges = [(pos[s], pos[t]) for s, t in truth["edges"]]
    off = ~np.eye(4, dtype=bool)
    true = np.zeros((4, 4), bool)
    for i, k in edges:
        true[i, k] = True
    assert w[true].min() > w[off & ~true].max()  # every true edge above every other pair, so also oriented

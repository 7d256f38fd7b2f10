"""BKT forward/backward against brute-force enumeration, and EM properties."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kt.models.bkt import em
from kt.models.bkt import lanes as lanes_mod
from kt.models.bkt.layout import build_packed


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def brute_force(obs, prior, learn, forget, guess, slip):
    """Enumerate all 2^T hidden paths of one subsequence.

    Per-step parameters: learn/forget[t] drive the transition out of step t,
    guess/slip[t] the emission of step t; obs -1 = missing.
    """
    T = len(obs)
    ll_paths = []
    paths = list(itertools.product((0, 1), repeat=T))
    for path in paths:
        p = prior if path[0] else 1 - prior
        for t in range(T):
            if t > 0:
                a, b = path[t - 1], path[t]
                if a == 0:
                    p *= learn[t - 1] if b else 1 - learn[t - 1]
                else:
                    p *= 1 - forget[t - 1] if b else forget[t - 1]
            if obs[t] >= 0:
                if path[t]:
                    p *= 1 - slip[t] if obs[t] else slip[t]
                else:
                    p *= guess[t] if obs[t] else 1 - guess[t]
        ll_paths.append(p)
    w = np.array(ll_paths)
    Z = w.sum()
    P = np.array(paths)
    gamma = (w[:, None] * P).sum(0) / Z
    xi01 = np.array([(w * ((P[:, t] == 0) & (P[:, t + 1] == 1))).sum() / Z for t in range(T - 1)])
    xi10 = np.array([(w * ((P[:, t] == 1) & (P[:, t + 1] == 0))).sum() / Z for t in range(T - 1)])
    return np.log(Z), gamma, xi01, xi10


def one_sequence_grid(obs, n_res, n_gs, res, gs):
    T = len(obs)
    packed, _ = build_packed(
        np.zeros(T, np.int64),
        np.zeros(T, np.int64),
        np.asarray(obs),
        np.zeros(T, np.int32),
        np.asarray(res, np.int32),
        np.asarray(gs, np.int32),
    )
    return em.Grid(*(jnp.asarray(getattr(packed, f)) for f in em.Grid._fields)), packed


@pytest.mark.parametrize("seed", range(12))
def test_forward_backward_matches_enumeration(x64, seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 9))
    n_res, n_gs = 3, 3  # several resource and guess/slip classes (multilearn + multigs)
    obs = rng.integers(-1, 2, T)  # includes missing steps
    res = rng.integers(0, n_res, T)
    gs = rng.integers(0, n_gs, T)
    params = em.BKTParams(
        prior=jnp.asarray(rng.uniform(0.05, 0.95, (1, 1))),
        learn=jnp.asarray(rng.uniform(0.05, 0.6, (n_res, 1))),
        forget=jnp.asarray(rng.uniform(0.0, 0.3, (n_res, 1))),  # forgets on
        guess=jnp.asarray(rng.uniform(0.05, 0.4, (n_gs, 1))),
        slip=jnp.asarray(rng.uniform(0.05, 0.3, (n_gs, 1))),
    )
    grid, packed = one_sequence_grid(obs, n_res, n_gs, res, gs)
    prior_t, learn_t, forget_t, guess_t, slip_t = em.step_params(params, grid)
    l1, l0 = em.emissions(grid.obs, guess_t, slip_t)
    fw = em.forward(grid.first, prior_t, l1, l0, learn_t, forget_t)
    c = fw.c
    gamma, gamma0, xi01, xi10 = em.backward(grid.last, fw.f1, fw.f0, learn_t, forget_t)
    np.testing.assert_allclose(
        np.asarray(gamma + gamma0)[:T, :, 0][:, np.flatnonzero(packed.valid.any(axis=0))[0]], 1, atol=1e-12
    )

    col = int(np.flatnonzero(packed.valid.any(axis=0))[0])
    sl = slice(0, T)
    ll = float(jnp.log(c[sl, col, 0]).sum())
    L = np.asarray
    ll_bf, g_bf, x01_bf, x10_bf = brute_force(
        obs,
        float(params.prior[0, 0]),
        L(params.learn)[res, 0],
        L(params.forget)[res, 0],
        L(params.guess)[gs, 0],
        L(params.slip)[gs, 0],
    )
    np.testing.assert_allclose(ll, ll_bf, rtol=0, atol=1e-10)
    np.testing.assert_allclose(L(gamma)[sl, col, 0], g_bf, atol=1e-10)
    np.testing.assert_allclose(L(xi01)[: T - 1, col, 0], x01_bf, atol=1e-10)
    np.testing.assert_allclose(L(xi10)[: T - 1, col, 0], x10_bf, atol=1e-10)


def test_filter_is_closed_form_bayes_update(x64):
    rng = np.random.default_rng(3)
    T = 7
    obs = rng.integers(0, 2, T)
    pi, T_, G, S = 0.3, 0.2, 0.25, 0.1
    params = em.BKTParams(*(jnp.full((1, 1), v) for v in (pi, T_, 0.0, G, S)))
    grid, packed = one_sequence_grid(obs, 1, 1, np.zeros(T), np.zeros(T))
    p_correct, p_before, p_after, _ = em.filter_grid(params, params.prior[:, 0], grid)
    col = int(np.flatnonzero(packed.valid.any(axis=0))[0])
    p = pi
    for t in range(T):
        assert abs(float(p_before[t, col]) - p) < 1e-12
        assert abs(float(p_correct[t, col]) - (p * (1 - S) + (1 - p) * G)) < 1e-12
        post = p * (1 - S) / (p * (1 - S) + (1 - p) * G) if obs[t] else p * S / (p * S + (1 - p) * (1 - G))
        assert abs(float(p_after[t, col]) - post) < 1e-12
        p = post + (1 - post) * T_


def _random_problem(rng, n_kc=4, n_users=60, max_len=12):
    kcs, users, obs = [], [], []
    for k in range(n_kc):
        for u in range(n_users):
            n = int(rng.integers(1, max_len))
            kcs += [k] * n
            users += [u] * n
            obs += list(rng.integers(0, 2, n))
    return np.array(kcs), np.array(users), np.array(obs)


def _grid(kc, user, obs, **kw):
    packed, _ = build_packed(kc, user, obs, kc.astype(np.int32), kc.astype(np.int32), kc.astype(np.int32), **kw)
    return em.Grid(*(jnp.asarray(getattr(packed, f)) for f in em.Grid._fields))


def _init(rng, K, R, forgets):
    u = lambda hi: jnp.asarray(rng.uniform(0, hi, (K, R)))  # noqa: E731
    return em.BKTParams(u(1.0), u(0.4), u(1.0) if forgets else jnp.zeros((K, R)), u(0.4), u(0.3))


@pytest.mark.parametrize("forgets", [False, True])
def test_em_loglik_never_decreases(x64, forgets):
    rng = np.random.default_rng(0)
    kc, user, obs = _random_problem(rng)
    K, R = 4, 3
    grid = _grid(kc, user, obs)
    params = _init(rng, K, R, forgets)
    prior_kc = jnp.arange(K)
    e_step = jax.jit(em.e_step, static_argnums=(3, 4, 5))
    m_step = jax.jit(em.m_step, static_argnums=2)
    prev = None
    for _ in range(25):
        counts, ll = e_step(params, grid, prior_kc, K, forgets, (True, True))
        total = np.asarray(ll)
        if prev is not None:
            assert np.all(total >= prev - 1e-9)
        prev = total
        params = m_step(counts, params, forgets)
        if not forgets:
            assert float(jnp.abs(params.forget).max()) == 0.0


def test_joint_fit_equals_per_kc_fits(x64):
    rng = np.random.default_rng(1)
    kc, user, obs = _random_problem(rng, n_kc=3)
    K, R = 3, 2
    init = _init(rng, K, R, False)
    kw = dict(forgets=False, tol=1e-6, max_iter=50, row_const=(True, True))
    joint = em.fit_em_jit(init, _grid(kc, user, obs), (jnp.arange(K),) * 3, n_kc=K, **kw)
    for k in range(K):
        sel = kc == k
        one = jax.tree.map(lambda a: a[k : k + 1], init)
        zero = np.zeros(sel.sum(), np.int64)
        sep = em.fit_em_jit(one, _grid(zero, user[sel], obs[sel]), (jnp.zeros(1, jnp.int32),) * 3, n_kc=1, **kw)
        for name in ("prior", "learn", "guess", "slip"):
            np.testing.assert_allclose(getattr(joint.params, name)[k], getattr(sep.params, name)[0], atol=1e-6)
        np.testing.assert_allclose(joint.loglik[k], sep.loglik[0], atol=1e-6)
        np.testing.assert_array_equal(joint.iterations[k], sep.iterations[0])


def test_padding_and_row_length_change_nothing(x64):
    rng = np.random.default_rng(2)
    kc, user, obs = _random_problem(rng, n_kc=2)
    K, R = 2, 2
    init = _init(rng, K, R, True)
    kw = dict(n_kc=K, forgets=True, tol=1e-6, max_iter=30, row_const=(True, True))
    slot_kc = (jnp.arange(K),) * 3
    a = em.fit_em_jit(init, _grid(kc, user, obs), slot_kc, **kw)
    b = em.fit_em_jit(init, _grid(kc, user, obs, row_len=64, min_rows=300), slot_kc, **kw)
    for name in ("prior", "learn", "forget", "guess", "slip"):
        np.testing.assert_allclose(getattr(a.params, name), getattr(b.params, name), atol=1e-9)
    np.testing.assert_allclose(a.loglik, b.loglik, atol=1e-8)


def test_general_scatter_path_equals_row_constant_path(x64):
    rng = np.random.default_rng(4)
    kc, user, obs = _random_problem(rng, n_kc=3)
    K, R = 3, 2
    grid = _grid(kc, user, obs)
    params = _init(rng, K, R, True)
    e_step = jax.jit(em.e_step, static_argnums=(3, 4, 5))
    a, la = e_step(params, grid, jnp.arange(K), K, True, (True, True))
    b, lb = e_step(params, grid, jnp.arange(K), K, True, (False, False))
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-9)
    np.testing.assert_allclose(la, lb, atol=1e-9)


def test_jit_equals_no_jit():
    rng = np.random.default_rng(5)
    kc, user, obs = _random_problem(rng, n_kc=2, n_users=4, max_len=5)
    grid = _grid(kc, user, obs)
    params = jax.tree.map(lambda a: a[:, :1].astype(jnp.float32), _init(rng, 2, 1, False))
    jitted = em.filter_grid_jit(params, params.prior[:, 0], grid)
    with jax.disable_jit():
        eager = em.filter_grid(params, params.prior[:, 0], grid)
    for x, y in zip(jitted, eager):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


def test_float32_filter_recovers_from_long_correct_runs():
    # 12 correct answers put P(unknown) near 1e-8, below float32's resolution
    # around 1; computed as 1 - P(known) it would round to 0 and the 16 wrong
    # answers that follow (each multiplying the odds of "unknown" by 14)
    # could no longer bring P(known) down.
    obs = np.array([1] * 12 + [0] * 16)
    T = len(obs)
    vals = dict(prior=0.5, learn=0.3, forget=0.0, guess=0.3, slip=0.05)
    grid, packed = one_sequence_grid(obs, 1, 1, np.zeros(T), np.zeros(T))
    col = int(np.flatnonzero(packed.valid.any(axis=0))[0])
    out = {}
    for dt in (jnp.float32, jnp.float64):
        with jax.enable_x64(dt == jnp.float64):
            params = em.BKTParams(*(jnp.full((1, 1), vals[k], dt) for k in ("prior", "learn", "forget", "guess", "slip")))
            g = em.Grid(*(jnp.asarray(getattr(packed, f)) for f in em.Grid._fields))
            out[dt] = np.asarray(em.filter_grid(params, params.prior[:, 0], g)[0][:, col], np.float64)
    np.testing.assert_allclose(out[jnp.float32][:T], out[jnp.float64][:T], atol=1e-4)
    assert out[jnp.float64][T - 1] < 0.6 < 0.9 < out[jnp.float64][11]  # errors pull P(correct) down from 0.95


# ---------------------------------------------------------------- lane engine
from kt.models.bkt.layout import LaneData  # noqa: E402


def _lane_data(kc, user, obs):
    s = np.asarray(kc).astype(np.int32)
    K = int(s.max()) + 1
    return LaneData.build(np.asarray(kc), np.asarray(user), np.asarray(obs), s, s, s, (K, K, K)), K


@pytest.fixture(scope="module")
def small_kernels():
    """Small lane kernels (several blocks and chunks per E-step), float64, keyed by (forgets, missing)."""
    with jax.enable_x64(True):
        return {
            (f, m): lanes_mod.LaneKernel(np.float64, f, m, block=16, chunk=8, background=False)
            for f in (False, True)
            for m in (False, True)
        }


@pytest.mark.parametrize("seed", range(6))
def test_lane_em_step_matches_enumeration(x64, small_kernels, seed):
    # One E+M step on one subsequence: the M-step's ratios are brute-force expectations.
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 9))
    obs = rng.integers(-1, 2, T) if seed % 2 else rng.integers(0, 2, T)
    forgets = seed >= 3
    missing = bool((obs < 0).any())
    pi, tr, fo, gu, sl = (
        rng.uniform(0.05, 0.95),
        rng.uniform(0.05, 0.6),
        rng.uniform(0.0, 0.3) * forgets,
        rng.uniform(0.05, 0.4),
        rng.uniform(0.05, 0.3),
    )
    init = em.BKTParams(*(np.full((1, 1), v) for v in (pi, tr, fo, gu, sl)))
    data, K = _lane_data(np.zeros(T, int), np.zeros(T, int), obs)
    st, _ = lanes_mod.fit_lanes(
        init,
        data,
        (np.zeros(1, int),) * 3,
        n_kc=1,
        forgets=forgets,
        tol=0.0,
        max_iter=1,
        kernel=small_kernels[(forgets, missing)],
    )
    ll, g, x01, x10 = brute_force(obs, pi, np.full(T, tr), np.full(T, fo), np.full(T, gu), np.full(T, sl))
    seen = obs >= 0
    np.testing.assert_allclose(st.loglik[0, 0], ll, atol=1e-10)
    expect = {"prior": g[0]}
    if T > 1:
        expect["learn"] = x01.sum() / (1 - g[:-1]).sum()
        if forgets:
            expect["forget"] = x10.sum() / g[:-1].sum()
    if seen.any():
        expect["guess"] = ((1 - g) * (obs == 1)).sum() / (1 - g)[seen].sum()
        expect["slip"] = (g * (obs == 0)).sum() / g[seen].sum()
    for name, v in expect.items():
        np.testing.assert_allclose(getattr(st.params, name)[0, 0], np.clip(v, 1e-8, 1 - 1e-8), atol=1e-10, err_msg=name)


@pytest.mark.parametrize("forgets", [False, True])
@pytest.mark.parametrize("missing", [False, True])
def test_lane_engine_equals_grid_engine(x64, small_kernels, forgets, missing):
    rng = np.random.default_rng(7 + 2 * forgets + missing)
    kc, user, obs = _random_problem(rng, n_kc=3, n_users=40, max_len=30)
    if missing:
        obs = np.where(rng.random(len(obs)) < 0.1, -1, obs)
    K, R = 3, 2
    init = _init(rng, K, R, forgets)
    kw = dict(n_kc=K, forgets=forgets, tol=1e-6, max_iter=40)
    grid = em.fit_em_jit(init, _grid(kc, user, obs), (jnp.arange(K),) * 3, row_const=(True, True), **kw)
    data, _ = _lane_data(kc, user, obs)
    assert data.missing == missing
    lanes, info = lanes_mod.fit_lanes(
        jax.tree.map(np.asarray, init), data, (np.arange(K),) * 3, kernel=small_kernels[(forgets, missing)], **kw
    )
    assert info["kernel_calls"] > 0
    for name in ("prior", "learn", "forget", "guess", "slip"):
        np.testing.assert_allclose(getattr(lanes.params, name), np.asarray(getattr(grid.params, name)), atol=1e-9, err_msg=name)
    np.testing.assert_allclose(lanes.loglik, np.asarray(grid.loglik), atol=1e-8)
    np.testing.assert_array_equal(lanes.iterations, np.asarray(grid.iterations))
    np.testing.assert_array_equal(lanes.done, np.asarray(grid.done))


def test_lane_engine_truncated_stop_rule_matches_grid(x64, small_kernels):
    rng = np.random.default_rng(11)
    kc, user, obs = _random_problem(rng, n_kc=2, n_users=80, max_len=20)
    K, R = 2, 3
    init = _init(rng, K, R, False)
    kw = dict(n_kc=K, forgets=False, tol=1e-3, max_iter=50, truncate_ll=True)
    grid = em.em_phase_jit(em.init_state(init, K), _grid(kc, user, obs), (jnp.arange(K),) * 3, row_const=(True, True), **kw)
    data, _ = _lane_data(kc, user, obs)
    lanes, _ = lanes_mod.fit_lanes(
        jax.tree.map(np.asarray, init), data, (np.arange(K),) * 3, kernel=small_kernels[(False, False)], **kw
    )
    np.testing.assert_array_equal(lanes.iterations, np.asarray(grid.iterations))
    np.testing.assert_allclose(lanes.params.learn, np.asarray(grid.params.learn), atol=1e-9)
    assert np.all(lanes.loglik == np.trunc(lanes.loglik))


def test_lane_float32_default_kernel_close_to_float64():
    rng = np.random.default_rng(12)
    kc, user, obs = _random_problem(rng, n_kc=3, n_users=60, max_len=25)
    K, R = 3, 2
    init = _init(rng, K, R, False)
    data, _ = _lane_data(kc, user, obs)
    kw = dict(n_kc=K, forgets=False, tol=1e-4, max_iter=15)
    a, _ = lanes_mod.fit_lanes(jax.tree.map(lambda x: np.asarray(x, np.float32), init), data, (np.arange(K),) * 3, **kw)
    with jax.enable_x64(True):
        b, _ = lanes_mod.fit_lanes(jax.tree.map(np.asarray, init), data, (np.arange(K),) * 3, **kw)
    assert a.params.prior.dtype == np.float32
    for name in ("prior", "learn", "guess", "slip"):
        np.testing.assert_allclose(getattr(a.params, name), getattr(b.params, name), atol=2e-4, err_msg=name)


def test_next_fit_matches_sequential_packing():
    from kt.models.bkt.layout import next_fit

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 50))
        lengths, group = rng.integers(1, 30, n), rng.integers(0, 5, n)
        order = np.lexsort((-lengths, group))
        sl, sg = lengths[order], group[order]
        cap = int(rng.integers(1, 40))
        row, off, n_rows = next_fit(sl, sg, cap)
        # Reference: one row at a time.
        cum = np.concatenate([[0], np.cumsum(sl)])
        ends = np.r_[np.flatnonzero(sg[1:] != sg[:-1]) + 1, n]
        s, r, gi = 0, 0, 0
        while s < n:
            while ends[gi] <= s:
                gi += 1
            e = min(max(int(np.searchsorted(cum, cum[s] + cap, side="right")) - 1, s + 1), int(ends[gi]))
            assert (row[s:e] == r).all() and (off[s:e] == cum[s:e] - cum[s]).all()
            s, r = e, r + 1
        assert n_rows == r

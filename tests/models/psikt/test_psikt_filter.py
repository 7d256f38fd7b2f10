"""PSI-KT with filter inference: exact Kalman equality, the logistic update against quadrature-free
integration, masking, leakage, training, continual updates (issue 15's tests)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest

import kt
from kt.data.synthetic import simulate_ou_graph
from kt.models.psikt import filter as pf
from kt.models.base import create, load
from kt.models.psikt.filter_model import PsiKTFilter

DAY = 86400.0


def _net(K: int, seed: int = 0, gamma_raw: float = 1.0) -> pf.FilterNet:
    rng = np.random.default_rng(seed)
    net = pf.FilterNet.init(seed, K, dim=4, graph_init_std=1.0, b=rng.normal(0, 0.5, K))
    return net.__class__(
        **{
            **net.__dict__,
            "g_raw": jnp.asarray(gamma_raw, jnp.float32),
            "d0": jnp.asarray(-0.3, jnp.float32),
            "m_mu": jnp.asarray(0.2, jnp.float32),
        }
    )


def _gauss(R: float):
    def moments(mk, vk, y):
        s = vk + R
        return mk + vk * (y - mk) / s, vk * R / s, -0.5 * (jnp.log(2 * jnp.pi * s) + (y - mk) ** 2 / s)

    return moments


def _kalman_z(net: pf.FilterNet, hyper: pf.FilterHyper, ks, ys, dts, R: float):
    """Textbook Kalman filter in the original coordinates (z, mu), float64 NumPy, dense matrices."""
    K = hyper.n_kc
    t = pf.traits(net, hyper)
    alpha, s2, gamma, q_mu = (float(v) for v in (t.alpha, t.sigma2, t.gamma, t.q_mu))
    A = np.asarray(pf.dynamics_graph(net, hyper), np.float64)
    b = np.asarray(net.b, np.float64)
    v_mu, v0 = math.exp(float(net.log_v_mu)), math.exp(float(net.log_v0))
    m = np.concatenate([np.full(K, float(net.m_mu) + float(net.d0)), [float(net.m_mu)]])
    P = v_mu * np.ones((K + 1, K + 1))
    P[:K, :K] += v0 * np.eye(K)
    lls, zs = [], []
    for k, y, dt in zip(ks, ys, dts):
        r = math.exp(-alpha * (dt + 1e-6))
        F = np.zeros((K + 1, K + 1))
        F[:K, :K] = r * np.eye(K) + (1 - r) * gamma / K * A.T
        F[:K, K] = 1 - r
        F[K, K] = 1.0
        # The level's random-walk step moves every knowledge state with it (z = mu + e).
        Q = np.diag(np.r_[np.full(K, s2 * (1 - r * r) / (2 * alpha) + 1e-6), 0.0]) + q_mu * np.ones((K + 1, K + 1))
        m, P = F @ m, F @ P @ F.T + Q
        h = np.zeros(K + 1)
        h[k] = 1.0
        mk, S = h @ m + b[k], h @ P @ h + R
        lls.append(-0.5 * (math.log(2 * math.pi * S) + (y - mk) ** 2 / S))
        g = P @ h / S
        m, P = m + g * (y - mk), P - np.outer(g, h @ P)
        zs.append(m[:K].copy())
    return np.array(lls), np.array(zs), m, P


@pytest.mark.parametrize("cov,graph", [("full", True), ("mean", False)])
def test_gaussian_emission_equals_exact_kalman_filter(cov, graph):
    """With a Gaussian emission the filter's transition + rank-one update is the exact Kalman filter."""
    K, R = 4, 0.7
    hyper = pf.FilterHyper(n_kc=K, use_graph=graph, cov=cov)
    net = _net(K)
    rng = np.random.default_rng(1)
    ks, ys, dts = rng.integers(0, K, 25), rng.normal(0.3, 1.0, 25), rng.exponential(0.7, 25)
    ll_ref, z_ref, _, _ = _kalman_z(net, hyper, ks, ys, dts, R)
    tr, A = pf.traits(net, hyper), pf.dynamics_graph(net, hyper)
    m, P = pf.initial_state(net, hyper)
    lls, zs = [], []
    for k, y, dt in zip(ks, ys, dts):
        m, P = pf.transition(m, P, jnp.float32(dt), tr, A, hyper)
        m, P, ll = pf.update(m, P, jnp.int32(k), jnp.float32(y), net.b[k], hyper, moments=_gauss(R))
        lls.append(float(ll))
        zs.append(np.asarray(m[:K] + m[K]))
    np.testing.assert_allclose(lls, ll_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.array(zs), z_ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("mk,vk,y", [(0.0, 1.0, 1), (1.5, 0.3, 0), (-2.0, 4.0, 1), (0.7, 9.0, 0), (3.0, 0.01, 0)])
def test_logistic_update_matches_numerical_integration(mk, vk, y):
    """Tilted moments and log Z of N(x; mk, vk) sig((2y-1) x) against a dense Riemann sum."""
    x = np.linspace(mk - 12 * math.sqrt(vk), mk + 12 * math.sqrt(vk), 200_001)
    dens = np.exp(-0.5 * (x - mk) ** 2 / vk) / math.sqrt(2 * math.pi * vk) / (1 + np.exp(-(2 * y - 1) * x))
    dx = x[1] - x[0]
    Z = dens.sum() * dx
    mean = (x * dens).sum() * dx / Z
    var = ((x - mean) ** 2 * dens).sum() * dx / Z
    got = pf.tilted_moments(jnp.float32(mk), jnp.float32(vk), jnp.int32(y))
    np.testing.assert_allclose([float(got[0]), float(got[1]), float(got[2])], [mean, var, math.log(Z)], rtol=2e-3, atol=2e-4)
    # The predictive probability is the same integral for y = 1.
    p1 = float(pf.predictive(jnp.float32(mk), jnp.float32(vk))[1])
    Z1 = Z if y == 1 else 1.0 - Z
    assert abs(p1 - Z1) < 1e-4


def _steps(ks, ys, dts, mask=None, new=None) -> pf.Steps:
    T = len(ks)
    return pf.Steps(
        jnp.asarray(ks, jnp.int32),
        jnp.asarray(ys, jnp.int32),
        jnp.asarray(dts, jnp.float32),
        jnp.asarray(np.ones(T, bool) if mask is None else mask),
        jnp.asarray(np.ones(T, bool) if new is None else new),
        jnp.asarray(ks, jnp.int32),
    )


def test_slot_filter_equals_the_full_filter():
    """Covariance over the practised KCs only (C slots) gives the full filter's predictions and means."""
    from kt.models.psikt.filter_model import window_slots

    K, T, C = 9, 30, 5
    hyper = pf.FilterHyper(n_kc=K)
    net = _net(K)
    rng = np.random.default_rng(4)
    ks = rng.choice([1, 4, 7, 8], T)
    ys, dts = rng.integers(0, 2, T), rng.exponential(1.0, T)
    mask = np.r_[np.ones(T - 3, bool), np.zeros(3, bool)]
    full = pf.run_batch(net, *pf.prior_batch(net, hyper, 1), jax.tree.map(lambda a: a[None], _steps(ks, ys, dts, mask)), hyper)
    kcs, slot = window_slots(np.where(mask, ks, -1)[None], mask[None], C, K)
    assert kcs[0].tolist() == [1, 4, 7, 8, K + 1]
    st = _steps(ks, ys, dts, mask)._replace(slot=jnp.asarray(slot[0]))
    compact = pf.run_batch(
        net, *pf.prior_batch(net, hyper, 1, C), jax.tree.map(lambda a: a[None], st), hyper, kcs=jnp.asarray(kcs)
    )
    np.testing.assert_allclose(
        np.asarray(compact[1].prob)[0, : T - 3], np.asarray(full[1].prob)[0, : T - 3], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(compact[0][0]), np.asarray(full[0][0]), rtol=1e-5, atol=1e-6)
    Pf, Pc = np.asarray(full[0][1][0]), np.asarray(compact[0][1][0])
    idx = [1, 4, 7, 8, K]
    np.testing.assert_allclose(Pc[np.ix_([0, 1, 2, 3, C], [0, 1, 2, 3, C])], Pf[np.ix_(idx, idx)], rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_outputs_or_final_state():
    K = 5
    hyper = pf.FilterHyper(n_kc=K)
    net = _net(K)
    rng = np.random.default_rng(2)
    ks, ys, dts = rng.integers(0, K, 12), rng.integers(0, 2, 12), rng.exponential(1.0, 12)
    m0, P0 = pf.initial_state(net, hyper)
    (m, P), out = pf.run(net, m0, P0, _steps(ks, ys, dts), hyper)
    pad = 7
    mask = np.r_[np.ones(12, bool), np.zeros(pad, bool)]
    (m2, P2), out2 = pf.run(
        net,
        m0,
        P0,
        _steps(np.r_[ks, rng.integers(0, K, pad)], np.r_[ys, np.ones(pad, int)], np.r_[dts, np.full(pad, 5.0)], mask),
        hyper,
    )
    np.testing.assert_allclose(np.asarray(out2.prob)[:12], np.asarray(out.prob), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m2), np.asarray(m), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(P2), np.asarray(P), rtol=1e-6)
    assert float(jnp.sum(out2.loglik[12:])) == 0.0


def test_no_leakage_and_question_siblings():
    """A step's prediction ignores its own and later outcomes; rows of one question share the pre-question state."""
    K = 4
    net = _net(K)
    rng = np.random.default_rng(3)
    ks, ys, dts = rng.integers(0, K, 10), rng.integers(0, 2, 10), rng.exponential(1.0, 10)
    hyper = pf.FilterHyper(n_kc=K)
    m0, P0 = pf.initial_state(net, hyper)
    p = np.asarray(pf.run(net, m0, P0, _steps(ks, ys, dts), hyper)[1].prob)
    ys2 = ys.copy()
    ys2[6:] = 1 - ys2[6:]
    p2 = np.asarray(pf.run(net, m0, P0, _steps(ks, ys2, dts), hyper)[1].prob)
    np.testing.assert_array_equal(p[:7], p2[:7])
    assert not np.allclose(p[7:], p2[7:])
    # Steps 3 and 4 form one question: step 4's prediction must not see step 3's outcome.
    new = np.ones(10, bool)
    new[4] = False
    g = pf.FilterHyper(n_kc=K, grouped=True)
    ks[4] = (ks[3] + 1) % K
    ys3 = ys.copy()
    ys3[3] = 1 - ys3[3]
    a = np.asarray(pf.run(net, m0, P0, _steps(ks, ys, dts, new=new), g)[1].prob)
    b = np.asarray(pf.run(net, m0, P0, _steps(ks, ys3, dts, new=new), g)[1].prob)
    assert a[4] == b[4] and a[5] != b[5]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    frame, truth = simulate_ou_graph(60, 4, 30, seed=0)
    d = tmp_path_factory.mktemp("psikt_filter")
    p = d / "sim.csv"
    frame.write_csv(p)
    return kt.load(str(p)), d


CFG = {"inference": "filter", "epochs": 6, "batch_size": 16, "dim": 4, "window": 32}


def test_training_decreases_the_negative_log_likelihood(sim):
    data, _ = sim
    m = create("psikt", **CFG).fit(data, key=0)
    assert isinstance(m, PsiKTFilter)
    losses = [r["train_loss"] for r in m.meta["history"]]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 1e-3


def test_continual_update_equals_filtering_the_concatenated_history(sim, tmp_path):
    data, d = sim
    m = create("psikt", **{**CFG, "epochs": 1}).fit(data, key=0)
    f = data.frame
    pos = f.select(pl.int_range(pl.len()).over("user_idx"))[:, 0]
    first = kt.Interactions(f.filter(pos < 12), data.vocab, data.source, data.colmap, data.fmt, [], {})
    rest = kt.Interactions(f.filter(pos >= 12), data.vocab, data.source, data.colmap, data.fmt, [], {})
    whole = m.mastery(data).sort("user_id", "skill_id")
    m.save(tmp_path / "m")
    m2 = load(tmp_path / "m")
    assert isinstance(m2, PsiKTFilter)
    m2.meta["state_users"] = []
    m2.params = m2.params.__class__(m2.params.net, m2.params.state.empty(0, m2.n_kc))
    m2.update(first)
    rep = m2.update(rest)
    assert rep["new_learners"] == 0 and rep["learners"] == data.n_users
    got = m2.mastery(None).sort("user_id", "skill_id")
    np.testing.assert_allclose(got["z_mean"].to_numpy(), whole["z_mean"].to_numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["z_std"].to_numpy(), whole["z_std"].to_numpy(), rtol=1e-4, atol=1e-5)
    # The window forecast after the first part equals the one from the stored states.
    a = m.predict_ahead(first, rest)["prob"].to_numpy()
    m3 = load(tmp_path / "m")
    m3.meta["state_users"] = []
    m3.params = m3.params.__class__(m3.params.net, m3.params.state.empty(0, m3.n_kc))
    m3.update(first)
    b = m3.predict_ahead(None, rest)["prob"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)
    # Open-loop predictions do not look at the future outcomes.
    flipped = kt.Interactions(
        rest.frame.with_columns(1 - pl.col("correct")), data.vocab, data.source, data.colmap, data.fmt, [], {}
    )
    np.testing.assert_array_equal(a, m.predict_ahead(first, flipped)["prob"].to_numpy())


def test_traits_and_outputs_shapes(sim):
    data, _ = sim
    m = create("psikt", **{**CFG, "epochs": 1}).fit(data, key=0)
    t = m.traits()
    assert t.height == data.n_users and (t["alpha"] > 0).all() and t["mu_std"].min() > 0
    g = m.graph()
    assert g is not None and g.prob.shape == (4, 4)
    p = m.predict(data)["prob"].to_numpy()
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_learned_graph_scale_multiplies_the_shift():
    K = 3
    net = _net(K)
    m, P = pf.initial_state(net, pf.FilterHyper(n_kc=K))
    m = m.at[0].set(2.0)
    shifts = []
    for scale, log_s in (("fixed", 0.0), ("learned", 0.0), ("learned", math.log(3.0))):
        h = pf.FilterHyper(n_kc=K, graph_scale=scale)
        n = net.__class__(**{**net.__dict__, "log_gscale": jnp.asarray(log_s, jnp.float32)})
        tr, A = pf.traits(n, h), pf.dynamics_graph(n, h)
        base = pf.transition(m, P, jnp.float32(1.0), tr, jnp.zeros_like(A), h)[0]
        shifts.append(np.asarray(pf.transition(m, P, jnp.float32(1.0), tr, A, h)[0] - base))
    np.testing.assert_allclose(shifts[1], shifts[0], rtol=1e-6)
    np.testing.assert_allclose(shifts[2], 3.0 * shifts[0], rtol=1e-5, atol=1e-7)
    assert np.abs(shifts[0][:K]).max() > 1e-3


def test_edge_bias_offsets_the_existence_logit_and_the_filter_starts_sparse():
    from kt.errors import KTError
    from kt.models.psikt import core
    from kt.models.psikt.model import PsiKTConfig

    net = pf.FilterNet.init(0, 5, dim=4, graph_init_std=0.3)
    e0, o0 = (np.asarray(x, np.float64) for x in core.graph_factors(net.u, net.M))
    e, o = (np.asarray(x, np.float64) for x in core.graph_factors(net.u, net.M, -3.0))
    logit = lambda x: np.log(x) - np.log1p(-x)  # noqa: E731
    np.testing.assert_allclose(logit(e), logit(e0) - 3.0, atol=1e-3)
    np.testing.assert_array_equal(o, o0)
    A = np.asarray(pf.dynamics_graph(net, pf.FilterHyper(n_kc=5, edge_bias=-3.0)))
    np.testing.assert_allclose(A, e * o * (1 - np.eye(5)), rtol=1e-5, atol=1e-7)
    # Defaults: the filter starts from a sparse graph with a learned shift scale; amortized keeps the spec.
    assert PsiKTConfig().existence_offset() == -3.0 and PsiKTConfig().shift_scale() == "learned"
    from kt.models.psikt.model import FULL_COV_MAX_KC

    assert PsiKTConfig().covariance(FULL_COV_MAX_KC) == "full" and PsiKTConfig().covariance(FULL_COV_MAX_KC + 1) == "mean"
    assert PsiKTConfig(filter_cov="mean").covariance(4) == "mean"
    amort = PsiKTConfig(inference="amortized")
    assert amort.existence_offset() == 0.0 and amort.shift_scale() == "fixed"
    for bad in ({"edge_bias": -1.0}, {"num_fits": 2}, {"graph_scale": "learned"}):
        with pytest.raises(KTError, match="only for inference=filter"):
            PsiKTConfig(inference="amortized", **bad).validate()
    with pytest.raises(KTError, match="num_fits"):
        PsiKTConfig(num_fits=0).validate()
    # Models saved before these options keep the spec's graph.
    from kt.models.psikt.model import PsiKT

    old = PsiKT.saved_config({"inference": "filter"})
    assert old["edge_bias"] == 0.0 and old["graph_scale"] == "fixed" and old["filter_cov"] == "mean"
    start = pf.FilterNet.init(0, 10, dim=16, graph_init_std=0.3)
    assert float(core.graph_probs(start.u, start.M, -3.0).max()) < 0.1


def test_several_fits_average_their_graphs_and_keep_the_best_for_predictions(sim, tmp_path):
    data, _ = sim
    cfg = {**CFG, "epochs": 2}
    one = create("psikt", **cfg).fit(data, valid=data, key=0)
    ck = tmp_path / "ck"
    m = create("psikt", **cfg, num_fits=3).fit(data, valid=data, key=0, checkpoint=ck)
    fits = m.meta["fits"]
    assert len(fits) == 3 and len({f["seed"] for f in fits}) == 3
    assert [f["used"] for f in fits] == [i == int(np.argmax([f["score"] for f in fits])) for i in range(3)]
    assert len(one.meta["fits"]) == 1 and one.params.graph_fits is None
    G = np.asarray(m.params.graph_fits, np.float64)
    assert G.shape == (3, 4, 4)
    # Fit 0 is the single fit; the others start elsewhere and end elsewhere.
    assert fits[0]["seed"] == one.meta["fits"][0]["seed"] and fits[0]["score"] == one.meta["fits"][0]["score"]
    np.testing.assert_allclose(G[0], one.graph().prob, rtol=1e-6, atol=1e-7)
    assert np.abs(G[1] - G[0]).max() > 1e-4
    np.testing.assert_allclose(m.graph().prob, G.mean(0), rtol=1e-6, atol=1e-7)
    assert m.graph().meta["fits"] == 3 and "fits" not in one.graph().meta
    # Predictions come from the fit marked used.
    used = next(i for i, f in enumerate(fits) if f["used"])
    if used == 0:
        np.testing.assert_allclose(m.predict(data)["prob"].to_numpy(), one.predict(data)["prob"].to_numpy(), rtol=1e-6)
    # Each fit checkpoints in its own folder; resuming the finished run gives the same model.
    assert all((ck / f"fit{r}" / "checkpoint.json").exists() for r in range(3))
    again = create("psikt", **cfg, num_fits=3).fit(data, valid=data, key=0, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(np.asarray(again.params.graph_fits), np.asarray(m.params.graph_fits))
    m.save(tmp_path / "m")
    m2 = load(tmp_path / "m")
    np.testing.assert_allclose(m2.graph().prob, m.graph().prob)
    np.testing.assert_allclose(m2.predict(data)["prob"].to_numpy(), m.predict(data)["prob"].to_numpy(), rtol=1e-6)


def test_progress_says_which_fit_an_epoch_belongs_to(sim):
    from kt.api import epoch_line

    data, _ = sim
    recs, steps = [], []
    create("psikt", **{**CFG, "epochs": 1}, num_fits=2).fit(
        data, key=0, progress=recs.append, on_step=lambda d, t, mtr: steps.append(mtr.get("fit"))
    )
    assert [r["fit"] for r in recs] == ["1/2", "2/2"]
    assert epoch_line(recs[1]).strip().startswith("fit 2/2 epoch 1 | loss")
    assert steps[0] == "1/2" and steps[-1] == "2/2"


def test_resampled_fits_give_the_learned_graph_a_bootstrap_stability(sim, tmp_path):
    from kt.data.graph import stability_of
    from kt.errors import KTError

    data, _ = sim
    cfg = {**CFG, "epochs": 2}
    m = create("psikt", **cfg, num_fits=4, fit_resample=True).fit(data, valid=data, key=0)
    plain = create("psikt", **cfg, num_fits=4).fit(data, valid=data, key=0)
    G = np.asarray(m.params.graph_fits, np.float64)
    g = m.graph()
    # Fit 0 sees the data; the refits see resamples, so they differ from the plain restarts'.
    np.testing.assert_allclose(G[0], np.asarray(plain.params.graph_fits)[0], rtol=1e-6, atol=1e-7)
    assert np.abs(G[1:] - np.asarray(plain.params.graph_fits)[1:]).max() > 1e-4
    want = stability_of(G[1:])
    np.fill_diagonal(want, 0.0)
    np.testing.assert_array_equal(g.stability, want)
    assert ((g.strength_lo <= g.strength_hi) & (g.strength_lo >= 0) & (g.strength_hi <= 1)).all()
    assert g.meta["bootstrap"]["refits"] == 3 and g.meta["fits"] == 4
    assert plain.graph().stability is None
    from kt.graph.export import view

    kept = set(view(g, 0.0, min_stability=0.5).edges)
    assert kept <= set(view(g, 0.0).edges) and all(g.stability[u, w] >= 0.5 for u, w, _ in kept)
    # The same seed gives the same stability; it survives saving.
    again = create("psikt", **cfg, num_fits=4, fit_resample=True).fit(data, valid=data, key=0)
    np.testing.assert_array_equal(again.graph().stability, g.stability)
    m.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").graph().stability, g.stability)
    with pytest.raises(KTError, match="only for inference=filter"):
        create("psikt", inference="amortized", fit_resample=True)

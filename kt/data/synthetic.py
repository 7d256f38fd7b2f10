"""Synthetic interaction data with known ground truth (for recovery tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from kt.errors import KTError


def simulate_bkt(
    n_learners: int,
    n_kcs: int,
    steps: int,
    *,
    seed: int = 0,
    forgets: bool = False,
    items_per_kc: int = 1,
    multigs: bool = False,
) -> tuple[pl.DataFrame, dict]:
    """Sample BKT learners: every learner practises every KC ``steps`` times.

    Attempts on different KCs are interleaved at random; timestamps are
    seconds, one minute apart.

    Args:
        n_learners: number of learners.
        n_kcs: number of KCs.
        steps: attempts per learner and KC.
        seed: NumPy seed.
        forgets: sample a non-zero forget probability.
        items_per_kc: distinct items per KC (drawn uniformly per attempt).
        multigs: guess/slip differ per item (KT-IDEM).

    Returns:
        (interactions with ``user_id``, ``skill_id``, ``item_id``,
        ``timestamp``, ``correct``; truth dict with per-KC parameters and,
        with ``multigs``, per-item guess/slip).
    """
    if min(n_learners, n_kcs, steps, items_per_kc) < 1:
        raise KTError("simulate: --learners, --kcs, --steps and items per KC must be >= 1")
    rng = np.random.default_rng(seed)
    K, N, T = n_kcs, n_learners, steps
    prior = rng.uniform(0.05, 0.6, K)
    learn = rng.uniform(0.05, 0.3, K)
    forget = rng.uniform(0.01, 0.1, K) if forgets else np.zeros(K)
    n_items = K * items_per_kc
    if multigs:
        guess = rng.uniform(0.05, 0.35, n_items)
        slip = rng.uniform(0.05, 0.25, n_items)
    else:
        guess = np.repeat(rng.uniform(0.05, 0.3, K), items_per_kc)
        slip = np.repeat(rng.uniform(0.05, 0.2, K), items_per_kc)

    known = rng.random((N, K)) < prior
    item = np.empty((N, K, T), np.int64)
    correct = np.empty((N, K, T), np.int8)
    for t in range(T):
        it = rng.integers(0, items_per_kc, (N, K)) + np.arange(K) * items_per_kc
        p = np.where(known, 1 - slip[it], guess[it])
        correct[:, :, t] = rng.random((N, K)) < p
        item[:, :, t] = it
        u = rng.random((N, K))
        known = np.where(known, u >= forget, u < learn)
    # Interleave each learner's KCs randomly while keeping order within a KC.
    keys = rng.random((N, K * T))
    order = np.argsort(keys, axis=1)
    kc_seq = np.repeat(np.arange(K), T)[order]
    kc_pos = np.zeros((N, K * T), np.int64)
    for k in range(K):
        mask = kc_seq == k
        kc_pos[mask] = np.tile(np.arange(T), N)
    users = np.repeat(np.arange(N), K * T)
    flat_kc = kc_seq.ravel()
    flat_t = kc_pos.ravel()
    frame = pl.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "skill_id": [f"kc{k}" for k in flat_kc],
            "item_id": [f"i{i}" for i in item[users, flat_kc, flat_t]],
            "timestamp": np.tile(np.arange(K * T) * 60, N).astype(np.int64),
            "correct": correct[users, flat_kc, flat_t].astype(np.int8),
        }
    )
    truth: dict[str, Any] = {
        "kind": "bkt",
        "seed": seed,
        "kcs": {
            f"kc{k}": {
                "prior": prior[k],
                "learn": learn[k],
                "forget": forget[k],
                "guess": float(guess[k * items_per_kc]),
                "slip": float(slip[k * items_per_kc]),
            }
            for k in range(K)
        },
    }
    if multigs:
        truth["items"] = {f"i{i}": {"guess": float(guess[i]), "slip": float(slip[i])} for i in range(n_items)}
    truth["kcs"] = {k: {p: float(v) for p, v in d.items()} for k, d in truth["kcs"].items()}
    return frame, truth


_DAY = 86400.0
_START = 1_704_067_200.0  # 2024-01-01 00:00 UTC, the first learner's earliest start


def _inv_softplus(x: np.ndarray) -> np.ndarray:
    return x + np.log(-np.expm1(-x))


def _graph_probs(u: np.ndarray, M: np.ndarray) -> np.ndarray:
    """PSI-KT's parameterisation p_ik = sigma(u_i.u_k) sigma(u_i^T (M - M^T) u_k), zero diagonal."""
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    p = sig(u @ u.T) * sig(u @ (M - M.T) @ u.T)
    np.fill_diagonal(p, 0.0)
    return p


def forward_edges(rng: np.random.Generator, order: np.ndarray, edge_prob: float) -> np.ndarray:
    """A random DAG: each forward pair of ``order`` is an edge with probability ``edge_prob``.

    Args:
        rng: generator (one ``random()`` draw per pair, in order: seeded outputs depend on it).
        order: a permutation of the K KCs (the DAG's topological order).
        edge_prob: probability of each forward edge.

    Returns:
        K x K int8 adjacency, A[i, k] = 1 for an edge i -> k.
    """
    K = len(order)
    A = np.zeros((K, K), np.int8)
    for a in range(K):
        for b in range(a + 1, K):
            if rng.random() < edge_prob:
                A[order[a], order[b]] = 1
    return A


def dag_truth(kind: str, seed: int, kcs: list[str], A: np.ndarray, order: np.ndarray) -> dict[str, Any]:
    """The graph part of a simulator's truth record (what ``kt simulate --truth`` writes first).

    Args:
        kind: the generator (``ou-graph``, ``gated``).
        seed: its seed.
        kcs: KC names, by index.
        A: K x K adjacency of the true DAG (A[i, k] = 1 for an edge i -> k, see :func:`forward_edges`).
        order: the DAG's topological order (KC indices).

    Returns:
        ``kind``, ``seed``, ``kcs``, ``edges`` (name pairs), ``adjacency``
        (0/1 lists) and ``order`` (names), in that order.
    """
    src, tgt = np.nonzero(A)
    return {
        "kind": kind,
        "seed": seed,
        "kcs": kcs,
        "edges": [[kcs[i], kcs[k]] for i, k in zip(src, tgt)],
        "adjacency": A.astype(int).tolist(),
        "order": [kcs[k] for k in order],
    }


def simulate_ou_graph(
    n_learners: int = 1000,
    n_kcs: int = 10,
    steps: int = 50,
    *,
    seed: int = 0,
    edge_prob: float = 0.3,
    decoupled: float = 0.3,
    revisit: float = 0.2,
    alpha_median: float = 0.5,
    alpha_log_sd: float = 0.5,
    mu_sd: float = 0.5,
    sigma_scale: float = 0.3,
    gamma_beta: tuple[float, float] = (2.0, 2.0),
    z0_mean: float = -1.0,
    z0_sd: float = 1.0,
    session_min: int = 5,
    session_max: int = 15,
    within_gap_minutes: float = 2.0,
    between_gap_days: float = 2.0,
    drift: float = 0.0,
    realisable: bool = False,
    realisable_tau: float = 0.5,
    realisable_dim: int = 16,
    return_states: bool = False,
    effect: float = 1.0,
) -> tuple[pl.DataFrame, dict]:
    """Sample learners from PSI-KT's generative model with a known prerequisite graph.

    Follows ``shared/spec/PSIKT.md`` ("Synthetic generator"): a random DAG
    (random topological order, each forward edge with ``edge_prob``; with
    ``realisable``, A = 1[p_ik > tau] for p drawn from the model's own
    u/M parameterisation, which need not be acyclic); per-learner traits
    alpha ~ LogNormal(log alpha_median, alpha_log_sd) per day,
    mu ~ N(0, mu_sd^2), sigma ~ HalfNormal(sigma_scale),
    gamma ~ Beta(gamma_beta); times from a session mixture (sessions of
    ``session_min``..``session_max`` attempts, Exp(``within_gap_minutes``)
    gaps inside a session, Exp(``between_gap_days``) between sessions);
    a schedule that walks the topological order (the curriculum position
    advances evenly over the ``steps`` attempts) with ``revisit`` draws
    among KCs already reached and ``decoupled`` uniform draws over all KCs;
    knowledge z_0 ~ N(z0_mean, z0_sd^2) per KC (learners start below their
    long-run level), then every step all K states follow the OU transition
    with the structural mean shift::

        r = exp(-alpha * dt),  target_k = mu + effect * gamma / K * sum_i A_ik z_i
        z_k <- N(r z_k + (1 - r) target_k, sigma^2 (1 - r^2) / (2 alpha) + 1e-6)

    and outcomes y ~ Bernoulli(sigmoid(z at the practised KC)) (sampled,
    not thresholded). With ``drift`` > 0 the raw traits follow a random
    walk s_n = s_{n-1} + N(0, drift^2) (H = I).

    Args:
        n_learners: learners.
        n_kcs: KCs (K).
        steps: attempts per learner.
        seed: NumPy seed (the same seed gives the same data and truth).
        return_states: add the knowledge states z (learner x step x KC) to
            the truth (large).
        effect: scale of the graph term (1 = the spec's model; larger makes
            the graph matter more for outcomes). The default reproduces the
            generator's earlier output exactly; other values are recorded
            in ``settings["effect"]``.

    Returns:
        (frame with ``user_id``, ``skill_id``, ``timestamp`` (seconds),
        ``correct``; truth dict with ``kcs``, ``edges`` ([source, target],
        source = prerequisite), ``adjacency`` (K x K 0/1, row = source),
        ``traits`` (per learner ``user_id``, ``alpha``, ``mu``, ``sigma``,
        ``gamma``; with drift, means over the learner's steps), ``order``
        (topological order) and ``settings``).
    """
    if min(n_learners, n_kcs, steps) < 1:
        raise KTError("simulate: --learners, --kcs and --steps must be >= 1")
    if not (0 <= edge_prob <= 1 and 0 <= decoupled <= 1 and 0 <= revisit <= 1):
        raise KTError("simulate: edge probability, decoupled and revisit shares must be in [0, 1]")
    if not 1 <= session_min <= session_max:
        raise KTError("simulate: need 1 <= session_min <= session_max")
    if not (np.isfinite(effect) and effect >= 0):
        raise KTError(f"simulate: --effect {effect}: must be a finite number >= 0")
    rng = np.random.default_rng(seed)
    K, N, T = n_kcs, n_learners, steps
    width = len(str(K - 1))
    kcs = [f"kc{k:0{width}d}" for k in range(K)]

    # 1. Graph.
    order = rng.permutation(K)
    A = np.zeros((K, K), np.int8)
    if realisable:
        u = rng.normal(size=(K, realisable_dim))
        M = rng.normal(size=(realisable_dim, realisable_dim))
        A = (_graph_probs(u, M) > realisable_tau).astype(np.int8)
    else:
        A = forward_edges(rng, order, edge_prob)
    np.fill_diagonal(A, 0)

    # 2. Traits (raw s = (softplus^-1 alpha, mu, sigma, logit gamma)).
    alpha = alpha_median * np.exp(alpha_log_sd * rng.normal(size=N))
    mu = mu_sd * rng.normal(size=N)
    sigma = np.abs(sigma_scale * rng.normal(size=N))
    gamma = rng.beta(*gamma_beta, size=N)
    s0 = np.stack([_inv_softplus(alpha), mu, sigma, np.log(gamma) - np.log1p(-gamma)], axis=1)
    s = np.repeat(s0[:, None, :], T, axis=1)
    if drift > 0:
        s = s0[:, None, :] + np.concatenate(
            [np.zeros((N, 1, 4)), np.cumsum(drift * rng.normal(size=(N, T - 1, 4)), axis=1)], axis=1
        )
    a_t = np.logaddexp(0.0, s[..., 0])
    mu_t, sig_t, g_t = s[..., 1], s[..., 2], 1.0 / (1.0 + np.exp(-s[..., 3]))

    # 3. Times (days): sessions with short gaps inside and long gaps between.
    gaps = np.zeros((N, T))
    for n in range(N):
        pos = 0
        while pos < T:
            length = int(rng.integers(session_min, session_max + 1))
            if pos > 0:
                gaps[n, pos] = rng.exponential(between_gap_days)
            inner = rng.exponential(within_gap_minutes / 1440.0, size=length - 1)
            gaps[n, pos + 1 : pos + length] = inner[: max(0, min(length, T - pos) - 1)]
            pos += length
    days = np.cumsum(gaps, axis=1)

    # 4. Schedule: the curriculum walks the topological order; revisits and decoupled practice.
    cur = np.minimum((np.arange(T) * K) // T, K - 1)
    draw = rng.random((N, T))
    kc = np.broadcast_to(order[cur], (N, T)).copy()
    rev = (draw >= decoupled) & (draw < decoupled + (1 - decoupled) * revisit)
    kc[rev] = order[(rng.random((N, T)) * (cur + 1)).astype(np.int64)[rev]]
    dec = draw < decoupled
    kc[dec] = rng.integers(0, K, size=(N, T))[dec]

    # 5. Knowledge and outcomes.
    z = np.empty((N, T, K))
    z[:, 0] = z0_mean + z0_sd * rng.normal(size=(N, K))
    Af = A.astype(np.float64)
    for t in range(1, T):
        dt = gaps[:, t] + 1e-6
        r = np.exp(-a_t[:, t] * dt)[:, None]
        target = mu_t[:, t, None] + effect * (g_t[:, t, None] / K * (z[:, t - 1] @ Af))
        var = sig_t[:, t, None] ** 2 * (1 - r**2) / (2 * a_t[:, t, None]) + 1e-6
        z[:, t] = r * z[:, t - 1] + (1 - r) * target + np.sqrt(var) * rng.normal(size=(N, K))
    logit = np.take_along_axis(z, kc[:, :, None], axis=2)[..., 0]
    correct = (rng.random((N, T)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)

    start = _START + rng.uniform(0, 30, size=N)[:, None] * _DAY
    uw = len(str(N - 1))
    users = [f"u{n:0{uw}d}" for n in range(N)]
    frame = pl.DataFrame(
        {
            "user_id": np.repeat(users, T),
            "skill_id": np.asarray(kcs)[kc.ravel()],
            "timestamp": np.round(start + days * _DAY, 3).ravel(),
            "correct": correct.ravel(),
        }
    )
    traits = [
        {
            "user_id": users[n],
            "alpha": float(a_t[n].mean()),
            "mu": float(mu_t[n].mean()),
            "sigma": float(np.abs(sig_t[n]).mean()),
            "gamma": float(g_t[n].mean()),
        }
        for n in range(N)
    ]
    truth: dict[str, Any] = {
        **dag_truth("ou-graph", seed, kcs, A, order),
        "traits": traits,
        "settings": {
            "learners": N,
            "kcs": K,
            "steps": T,
            "edge_prob": edge_prob,
            "decoupled": decoupled,
            "revisit": revisit,
            "alpha_median_per_day": alpha_median,
            "alpha_log_sd": alpha_log_sd,
            "mu_sd": mu_sd,
            "sigma_scale": sigma_scale,
            "gamma_beta": list(gamma_beta),
            "z0_mean": z0_mean,
            "z0_sd": z0_sd,
            "session_attempts": [session_min, session_max],
            "within_gap_minutes": within_gap_minutes,
            "between_gap_days": between_gap_days,
            "drift": drift,
            "realisable": realisable,
            "realisable_tau": realisable_tau if realisable else None,
            "time_unit": "timestamp in seconds; model time in days",
            "normalisation": "1/K",
            "emission": "sigmoid(z_k)",
        },
    }
    if effect != 1.0:  # only then, so the default truth JSON is byte-identical to earlier versions
        truth["settings"]["effect"] = effect
    if return_states:
        truth["states"] = z.tolist()
    return frame, truth


def ou_graph_loglik(
    frame: pl.DataFrame,
    truth: dict,
    *,
    adjacency: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
    mu: np.ndarray | None = None,
    sigma: np.ndarray | None = None,
    gamma: np.ndarray | None = None,
    particles: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """Per-learner log p(y) of ``simulate_ou_graph`` data under given parameters (bootstrap particle filter).

    An identifiability diagnostic: the truth's parameters (graph, constant
    traits, z_0 ~ N(z0_mean, z0_sd^2)) unless overridden, so the change in
    log-likelihood when the graph is removed or a trait shuffled measures
    how much the outcomes say about it. The estimate is consistent in
    ``particles`` (systematic resampling every step); the same ``seed``
    gives common random numbers across calls.

    Args:
        frame, truth: ``simulate_ou_graph`` output (every learner has the same number of steps).
        adjacency: K x K matrix (row = prerequisite), in ``truth["kcs"]`` order.
        alpha, mu, sigma, gamma: per-learner traits in the frame's learner order.

    Returns:
        log p(y_1..T) per learner (nats).
    """
    st = truth["settings"]
    N, T, K = st["learners"], st["steps"], st["kcs"]
    idx = {k: i for i, k in enumerate(truth["kcs"])}
    kc = np.array([idx[s] for s in frame["skill_id"]]).reshape(N, T)
    days = frame["timestamp"].to_numpy().astype(np.float64).reshape(N, T) / _DAY
    gaps = np.concatenate([np.zeros((N, 1)), np.diff(days, axis=1)], axis=1)
    y = frame["correct"].to_numpy().reshape(N, T)
    tr = {k: np.array([r[k] for r in truth["traits"]], np.float64) for k in ("alpha", "mu", "sigma", "gamma")}
    for k, v in (("alpha", alpha), ("mu", mu), ("sigma", sigma), ("gamma", gamma)):
        if v is not None:
            tr[k] = np.broadcast_to(np.asarray(v, np.float64), (N,))
    A = np.asarray(truth["adjacency"] if adjacency is None else adjacency, np.float64)
    effect = st.get("effect", 1.0)
    a, m, s, g = (tr[k][:, None, None] for k in ("alpha", "mu", "sigma", "gamma"))
    rng = np.random.default_rng(seed)
    P, rows = particles, np.arange(N)
    z = st["z0_mean"] + st["z0_sd"] * rng.normal(size=(N, P, K))
    ll = np.zeros(N)
    for t in range(T):
        if t > 0:
            r = np.exp(-a * (gaps[:, t, None, None] + 1e-6))
            var = s**2 * (1 - r**2) / (2 * a) + 1e-6
            z = r * z + (1 - r) * (m + effect * (g / K * (z @ A))) + np.sqrt(var) * rng.normal(size=z.shape)
        logit = z[rows, :, kc[:, t]]
        lw = np.where(y[:, t, None] > 0, -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit))
        top = lw.max(axis=1, keepdims=True)
        w = np.exp(lw - top)
        tot = w.sum(axis=1, keepdims=True)
        ll += top[:, 0] + np.log(tot[:, 0] / P)
        cdf = np.cumsum(w / tot, axis=1)
        cdf[:, -1] = 1.0
        pos = (rng.random((N, 1)) + np.arange(P)[None, :]) / P
        ix = np.searchsorted((cdf + 2.0 * rows[:, None]).ravel(), (pos + 2.0 * rows[:, None]).ravel())
        z = z[rows[:, None], np.clip(ix.reshape(N, P) - P * rows[:, None], 0, P - 1)]
    return ll

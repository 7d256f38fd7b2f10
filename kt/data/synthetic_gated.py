"""Gated-BKT learners with a known prerequisite DAG (``kt simulate --kind gated``).

A realistic generator for checking graph recovery: learners practise items
(each tagged with one or two KCs); a KC is learnt by a BKT learn transition
whose rate is held back while its prerequisites are not mastered, and
success on an item is limited by the weakest of the item's KCs and their
prerequisites, with guess and slip. Learners differ in prior knowledge and
learning speed, and forget. Per learner n, KC k, step t (binary state z):

* graph: a random topological order; each forward pair is an edge i -> k
  (i is a prerequisite of k) with probability ``edge_prob``, by default
  2 * PARENTS / (K - 1) so that a KC has PARENTS = 1.35 prerequisites on
  average whatever K (``edge_prob`` 0.3 at K = 10; Junyi's human-made
  knowledge map has 1.17 per exercise, see shared/data/DATA.md section 9);
* start: z_k ~ Bernoulli(pi_n), pi_n ~ Beta with mean ``prior_mean``;
  speed s_n ~ LogNormal(0, ``speed_log_sd``);
* outcome on item j with KC set S_j and prerequisites P_j (every
  prerequisite of a KC of S_j, outside S_j):
  ``P(y=1) = g_j + (1 - s_j - g_j) * [all of S_j known] * (1 - e * [some of P_j unknown])``;
* learning (after the attempt, per KC k of S_j not known, primary KC first):
  ``P(z_k: 0 -> 1) = min(1, l_k * s_n * (1 - e)^(number of unknown prerequisites of k))``;
* forgetting (every step, every known KC): ``P(z_k: 1 -> 0) = f_k``;

with e = ``effect`` (0: the graph does nothing; 1: nothing is learnt or
shown before the prerequisites are). Schedules: ``random`` draws items
uniformly; ``curriculum`` walks the topological order (the current KC
advances evenly over the steps) with ``revisit`` draws among KCs already
reached and ``skip`` uniform draws over all KCs, so practice order and
prerequisite order are confounded. A share ``withheld`` of learners never
practises one random KC (nor items tagged with it).

:func:`gated_loglik` computes log p(y) under given parameters (exact
forward pass over the 2^K knowledge states for small K, a particle filter
otherwise): the generator's likelihood gain with its graph over the same
generator without it is the ceiling of what the outcomes say about edges.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.synthetic import dag_truth, forward_edges
from kt.errors import KTError

SCHEDULES = ("random", "curriculum")
PARENTS = 1.35  # mean prerequisites per KC of the default DAG (edge probability 0.3 at K = 10)
_START = 1_704_067_200.0  # 2024-01-01 00:00 UTC
_EXACT_MAX_K = 12  # 2^12 states per learner: the exact forward pass stays cheap


def default_edge_prob(kcs: int) -> float:
    """The default edge probability of the gated DAG: :data:`PARENTS` prerequisites per KC on average.

    A constant edge probability would make larger curricula ever denser (at
    0.3, a KC has 4.35 prerequisites on average at K = 30 and nothing beyond
    the roots is learnt in 100 attempts); real knowledge maps keep about one
    or two prerequisites per KC whatever their size.

    Args:
        kcs: number of KCs (K).

    Returns:
        min(1, 2 * PARENTS / (K - 1)) rounded to 4 decimals (0.3 at K = 10,
        0.0931 at K = 30); 0 for K = 1.
    """
    if kcs < 2:
        return 0.0
    return round(min(1.0, 2 * PARENTS / (kcs - 1)), 4)


def simulate_gated(
    learners: int = 1000,
    kcs: int = 10,
    steps: int = 100,
    *,
    seed: int = 0,
    edge_prob: float | None = None,
    effect: float = 0.8,
    schedule: str = "random",
    items_per_kc: int = 3,
    withheld: float = 0.2,
    multi_kc: float = 0.2,
    prior_mean: float = 0.15,
    speed_log_sd: float = 0.5,
    learn: tuple[float, float] = (0.1, 0.3),
    guess: tuple[float, float] = (0.1, 0.3),
    slip: tuple[float, float] = (0.05, 0.15),
    forget: float = 0.005,
    revisit: float = 0.2,
    skip: float = 0.1,
    adjacency: np.ndarray | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Sample gated-BKT learners with a known prerequisite DAG (see the module docstring).

    Args:
        learners: number of learners (N).
        kcs: number of KCs (K).
        steps: attempts per learner (T).
        seed: NumPy seed; the same seed gives the same data and truth.
        edge_prob: probability of each forward pair of the random order being an
            edge; default :func:`default_edge_prob` (1.35 prerequisites per KC on average).
        effect: gate strength e in [0, 1].
        schedule: ``random`` or ``curriculum``.
        items_per_kc: items whose primary KC is each KC.
        withheld: share of learners with one KC they never practise.
        multi_kc: share of items tagged with a second (random) KC.
        prior_mean: mean of the learners' probability to know a KC at the start.
        speed_log_sd: log-sd of the learners' learning-speed multiplier.
        learn: range of the per-KC base learn probabilities.
        guess, slip: ranges of the per-item guess and slip probabilities.
        forget: mean per-step forget probability (per KC, uniform on [0, 2 * forget]).
        revisit, skip: curriculum only: shares of revisits and uniform skips.
        adjacency: a fixed K x K 0/1 DAG (row = prerequisite) instead of a
            random one; the curriculum follows one of its topological orders.

    Returns:
        (frame with ``user_id``, ``skill_id`` (two KCs joined by ``~~``, which
        kt's loader splits), ``item_id``, ``correct``, ``timestamp`` (seconds);
        truth dict with ``kcs``, ``edges`` ([source, target], source =
        prerequisite), ``adjacency`` (row = source), ``order``, ``items``
        (item -> KC list), per-KC and per-item parameters, per-learner
        ``learners`` (prior, speed, withheld KC) and ``settings``; what
        ``kt graph-eval`` and :func:`gated_loglik` read).

    Raises:
        KTError: an option out of range.
    """
    if min(learners, kcs, steps, items_per_kc) < 1:
        raise KTError("simulate: --learners, --kcs, --steps and --items-per-kc must be >= 1")
    if schedule not in SCHEDULES:
        raise KTError(f"simulate: --schedule {schedule!r}: use one of {', '.join(SCHEDULES)}")
    if edge_prob is None:
        edge_prob = default_edge_prob(kcs)
    for name, v in (
        ("--edge-prob", edge_prob),
        ("--effect", effect),
        ("--withheld", withheld),
        ("multi_kc", multi_kc),
        ("revisit", revisit),
        ("skip", skip),
        ("forget", 2 * forget),
    ):
        if not 0 <= v <= 1:  # also rejects NaN
            raise KTError(f"simulate: {name} {v}: must be in [0, 1]")
    if not 0 < prior_mean < 1:
        raise KTError(f"simulate: prior_mean {prior_mean}: must be in (0, 1)")
    if withheld > 0 and kcs < 2:
        raise KTError("simulate: --withheld needs at least 2 KCs")
    rng = np.random.default_rng(seed)
    N, K, T = learners, kcs, steps
    width = len(str(K - 1))
    names = [f"kc{k:0{width}d}" for k in range(K)]

    if adjacency is None:
        # Graph: forward pairs of a random order.
        order = rng.permutation(K)
        A = forward_edges(rng, order, edge_prob)
    else:
        A = (np.asarray(adjacency) != 0).astype(np.int8)
        if A.shape != (K, K):
            raise KTError(f"simulate: adjacency has shape {A.shape}, expected ({K}, {K})")
        np.fill_diagonal(A, 0)
        order = _topological_order(A)

    # Items: a primary KC each, a second random KC for a share of them.
    n_items = K * items_per_kc
    primary = np.repeat(np.arange(K), items_per_kc)
    second = np.full(n_items, -1)
    two = rng.random(n_items) < multi_kc if K > 1 else np.zeros(n_items, bool)
    other = (primary + 1 + rng.integers(0, max(K - 1, 1), n_items)) % K
    second[two] = other[two]
    g_item = rng.uniform(*guess, n_items)
    s_item = rng.uniform(*slip, n_items)
    l_kc = rng.uniform(*learn, K)
    f_kc = rng.uniform(0, 2 * forget, K)

    # Learners: prior knowledge, speed, withheld KC.
    conc = 4.0
    pi = rng.beta(conc * prior_mean, conc * (1 - prior_mean), N)
    speed = np.exp(speed_log_sd * rng.normal(size=N))
    held = np.where(rng.random(N) < withheld, rng.integers(0, K, N), -1)

    item = _schedule(rng, schedule, N, T, K, items_per_kc, order, primary, second, held, revisit, skip)
    z = rng.random((N, K)) < pi[:, None]
    y = np.empty((N, T), np.int8)
    rows = np.arange(N)
    Af = A.astype(np.float64)
    for t in range(T):
        it = item[:, t]
        p = _p_correct(z, it, primary, second, g_item, s_item, A, effect)
        y[:, t] = rng.random(N) < p
        # Learn the item's KCs in turn (primary first): each uses the state after the previous one.
        for kc in (primary[it], second[it]):
            ok = kc >= 0
            k = np.where(ok, kc, 0)
            unk = ((~z).astype(np.float64) * Af[:, k].T).sum(axis=1)
            lam = np.minimum(1.0, l_kc[k] * speed * (1.0 - effect) ** unk)
            z[rows, k] |= ok & (rng.random(N) < lam)
        z &= rng.random((N, K)) >= f_kc[None, :]

    kc_of = [names[primary[j]] if second[j] < 0 else f"{names[primary[j]]}~~{names[second[j]]}" for j in range(n_items)]
    uw = len(str(N - 1))
    users = [f"u{n:0{uw}d}" for n in range(N)]
    start = np.round(_START + rng.uniform(0, 30, N) * 86400.0)
    frame = pl.DataFrame(
        {
            "user_id": np.repeat(users, T),
            "skill_id": np.asarray(kc_of)[item.ravel()],
            "item_id": np.asarray([f"i{j}" for j in range(n_items)])[item.ravel()],
            "correct": y.ravel(),
            "timestamp": (start[:, None] + 60.0 * np.arange(T)[None, :]).ravel().astype(np.int64),
        }
    )
    truth = {
        **dag_truth("gated", seed, names, A, order),
        "items": {f"i{j}": kc_of[j].split("~~") for j in range(n_items)},
        "item_params": {f"i{j}": {"guess": float(g_item[j]), "slip": float(s_item[j])} for j in range(n_items)},
        "kc_params": {names[k]: {"learn": float(l_kc[k]), "forget": float(f_kc[k])} for k in range(K)},
        "learners": [
            {
                "user_id": users[n],
                "prior": float(pi[n]),
                "speed": float(speed[n]),
                "withheld": names[held[n]] if held[n] >= 0 else None,
            }
            for n in range(N)
        ],
        "settings": {
            "learners": N,
            "kcs": K,
            "steps": T,
            "edge_prob": edge_prob,
            "effect": effect,
            "schedule": schedule,
            "items_per_kc": items_per_kc,
            "withheld": withheld,
            "multi_kc": multi_kc,
            "prior_mean": prior_mean,
            "speed_log_sd": speed_log_sd,
            "learn": list(learn),
            "guess": list(guess),
            "slip": list(slip),
            "forget": forget,
            "revisit": revisit,
            "skip": skip,
        },
    }
    return frame, truth


def _topological_order(A: np.ndarray) -> np.ndarray:
    """A topological order of a DAG (smallest index first among ready KCs); KTError on a cycle."""
    indeg = A.sum(axis=0).astype(int)
    done = np.zeros(len(A), bool)
    order = []
    for _ in range(len(A)):
        ready = np.flatnonzero(~done & (indeg == 0))
        if not len(ready):
            raise KTError("simulate: the given adjacency has a cycle; a prerequisite graph must be acyclic")
        k = ready[0]
        done[k] = True
        order.append(k)
        indeg -= A[k]
    return np.array(order)


def _schedule(rng, schedule, N, T, K, items_per_kc, order, primary, second, held, revisit, skip) -> np.ndarray:
    """Item index per learner and step; never an item tagged with the learner's withheld KC."""
    n_items = len(primary)
    if schedule == "random":
        item = rng.integers(0, n_items, (N, T))
    else:
        cur = np.minimum((np.arange(T) * K) // T, K - 1)
        draw = rng.random((N, T))
        pos = np.broadcast_to(cur, (N, T)).copy()
        rev = (draw >= skip) & (draw < skip + (1 - skip) * revisit)
        pos[rev] = (rng.random((N, T)) * (cur + 1)).astype(np.int64)[rev]
        kc = order[pos]
        sk = draw < skip
        kc[sk] = rng.integers(0, K, (N, T))[sk]
        item = kc * items_per_kc + rng.integers(0, items_per_kc, (N, T))
    # Items touching the withheld KC are replaced by uniform draws among the allowed ones.
    h = held[:, None]
    bad = (h >= 0) & ((primary[item] == h) | (second[item] == h))
    while bad.any():
        item[bad] = rng.integers(0, n_items, int(bad.sum()))
        bad = (h >= 0) & ((primary[item] == h) | (second[item] == h))
    return item


def _p_correct(z, it, primary, second, g_item, s_item, A, effect) -> np.ndarray:
    """P(correct) of each learner's item given binary states ``z`` (N x K)."""
    N, K = z.shape
    rows = np.arange(N)
    S = np.zeros((N, K), bool)
    S[rows, primary[it]] = True
    two = second[it] >= 0
    S[rows[two], second[it][two]] = True
    known = np.all(z | ~S, axis=1)
    pre = ((S.astype(np.float64) @ A.T) > 0) & ~S  # prerequisites of the item's KCs
    pre_ok = np.all(z | ~pre, axis=1)
    g, s = g_item[it], s_item[it]
    return g + (1 - s - g) * known * (1 - effect * ~pre_ok)


def _arrays(frame: pl.DataFrame, truth: dict):
    st = truth["settings"]
    N, T, K = st["learners"], st["steps"], st["kcs"]
    names = truth["kcs"]
    kidx = {k: i for i, k in enumerate(names)}
    items = list(truth["items"])
    iidx = {j: i for i, j in enumerate(items)}
    primary = np.array([kidx[truth["items"][j][0]] for j in items])
    second = np.array([kidx[truth["items"][j][1]] if len(truth["items"][j]) > 1 else -1 for j in items])
    g = np.array([truth["item_params"][j]["guess"] for j in items])
    s = np.array([truth["item_params"][j]["slip"] for j in items])
    lk = np.array([truth["kc_params"][k]["learn"] for k in names])
    fk = np.array([truth["kc_params"][k]["forget"] for k in names])
    it = np.array([iidx[j] for j in frame["item_id"].to_list()]).reshape(N, T)
    y = frame["correct"].to_numpy().reshape(N, T).astype(bool)
    pi = np.array([r["prior"] for r in truth["learners"]])
    sp = np.array([r["speed"] for r in truth["learners"]])
    return N, T, K, it, y, primary, second, g, s, lk, fk, pi, sp


def gated_loglik(
    frame: pl.DataFrame,
    truth: dict,
    *,
    adjacency: np.ndarray | None = None,
    effect: float | None = None,
    particles: int = 512,
    seed: int = 0,
    exact: bool | None = None,
) -> np.ndarray:
    """Per-learner log p(y) of :func:`simulate_gated` data under the true parameters and a given graph.

    Exact (forward pass over all 2^K knowledge states) for K <= 12 unless
    ``exact=False``; otherwise a bootstrap particle filter (consistent in
    ``particles``; the same ``seed`` gives common random numbers across
    graphs, which keeps differences between graphs precise).

    Args:
        frame, truth: :func:`simulate_gated` output, rows in its order.
        adjacency: K x K 0/1 graph (row = prerequisite); default the truth's.
        effect: gate strength; default the truth's.
        particles: particles per learner for the particle filter.
        seed: particle-filter seed.
        exact: force (True) or forbid (False) the exact pass.

    Returns:
        log p(y_1..T) per learner (nats).
    """
    N, T, K, it, y, primary, second, g, s, lk, fk, pi, sp = _arrays(frame, truth)
    A = np.asarray(truth["adjacency"] if adjacency is None else adjacency, np.float64)
    e = truth["settings"]["effect"] if effect is None else effect
    if exact is None:
        exact = K <= _EXACT_MAX_K
    if exact:
        if K > 16:
            raise KTError(f"gated_loglik: exact pass over 2^{K} states is too large; use exact=False")
        return _exact(N, T, K, it, y, primary, second, g, s, lk, fk, pi, sp, A, e)
    return _particles(N, T, K, it, y, primary, second, g, s, lk, fk, pi, sp, A, e, particles, seed)


def _exact(N, T, K, it, y, primary, second, g, s, lk, fk, pi, sp, A, e) -> np.ndarray:
    S = 1 << K
    bits = ((np.arange(S)[:, None] >> np.arange(K)[None, :]) & 1).astype(bool)  # (S, K)
    # Emission table per item: P(correct | state).
    n_items = len(primary)
    emit = np.empty((n_items, S))
    for j in range(n_items):
        emit[j] = _p_correct(bits, np.full(S, j), primary, second, g, s, A, e)
    unk = (~bits).astype(np.float64) @ A  # (S, K): unknown prerequisites of each KC per state
    prior1 = pi[:, None, None]
    alpha = np.where(bits[None], prior1, 1 - prior1).prod(axis=2)  # (N, S)
    ll = np.zeros(N)
    rows = np.arange(N)
    for t in range(T):
        j = it[:, t]
        p = emit[j, :]  # (N, S)
        alpha *= np.where(y[:, t, None], p, 1 - p)
        tot = alpha.sum(axis=1)
        ll += np.log(tot)
        alpha /= tot[:, None]
        for kcs in (primary[j], second[j]):
            for k in np.unique(kcs[kcs >= 0]):
                sel = rows[kcs == k]
                v = alpha[sel].reshape(len(sel), S >> (k + 1), 2, 1 << k)
                lam = np.minimum(1.0, lk[k] * sp[sel, None] * (1 - e) ** unk[:, k][None, :])
                lam0 = lam.reshape(len(sel), S >> (k + 1), 2, 1 << k)[:, :, 0, :]  # states with k unknown
                moved = v[:, :, 0, :] * lam0
                v[:, :, 0, :] -= moved
                v[:, :, 1, :] += moved
                alpha[sel] = v.reshape(len(sel), S)
        for k in range(K):
            if fk[k] > 0:
                v = alpha.reshape(N, S >> (k + 1), 2, 1 << k)
                moved = v[:, :, 1, :] * fk[k]
                v[:, :, 1, :] -= moved
                v[:, :, 0, :] += moved
    return ll


def _particles(N, T, K, it, y, primary, second, g, s, lk, fk, pi, sp, A, e, P, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.random((N, P, K)) < pi[:, None, None]
    rows = np.arange(N)
    ll = np.zeros(N)
    for t in range(T):
        j = it[:, t]
        Sm = np.zeros((N, K), bool)
        Sm[rows, primary[j]] = True
        two = second[j] >= 0
        Sm[rows[two], second[j][two]] = True
        pre = ((Sm.astype(np.float64) @ A.T) > 0) & ~Sm
        known = np.all(z | ~Sm[:, None, :], axis=2)
        pre_ok = np.all(z | ~pre[:, None, :], axis=2)
        p = g[j][:, None] + (1 - s[j] - g[j])[:, None] * known * (1 - e * ~pre_ok)
        w = np.where(y[:, t, None], p, 1 - p)
        tot = w.sum(axis=1)
        ll += np.log(tot / P)
        # Systematic resampling per learner.
        cdf = np.cumsum(w / tot[:, None], axis=1)
        cdf[:, -1] = 1.0
        u = (rng.random((N, 1)) + np.arange(P)[None, :]) / P
        ix = np.searchsorted((cdf + 2.0 * rows[:, None]).ravel(), (u + 2.0 * rows[:, None]).ravel())
        z = z[rows[:, None], np.clip(ix.reshape(N, P) - P * rows[:, None], 0, P - 1)]
        for kc in (primary[j], second[j]):
            ok = kc >= 0
            k = np.where(ok, kc, 0)
            unk = np.einsum("npk,nk->np", (~z).astype(np.float64), A[:, k].T)
            lam = np.minimum(1.0, lk[k][:, None] * sp[:, None] * (1 - e) ** unk)
            zk = z[rows, :, k]
            z[rows, :, k] = zk | (ok[:, None] & (rng.random((N, P)) < lam))
        z &= rng.random((N, P, K)) >= fk[None, None, :]
    return ll

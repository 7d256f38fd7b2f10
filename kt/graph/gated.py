"""Gated-BKT structure learner (graph method ``gated``).

A prerequisite of KC k is a KC whose lack holds back learning of k and
success on k. This learner fits that directly: a BKT model per KC whose
success and learning are gated by a soft graph, every parameter fitted by
gradient on the log-likelihood of the outcomes (one filter pass over all
learners per step, ``lax.scan`` over attempts).

Per learner, the state is the probability m_i that each KC i is known, kept
as a product of independent Bernoullis (assumed-density filtering: O(K)
per attempt instead of O(2^K)). For an attempt on item j with KC set S:

* a_ik = sigmoid(w_ik): the probability that i is a prerequisite of k;
  b_i = 1 - prod_{k in S} (1 - a_ik): that i is one of some KC of S
  (i outside S);
* Q = prod_{i not in S} (1 - b_i (1 - m_i)): no prerequisite of S unknown;
* success:  P(y = 1) = g_j + (1 - s_j - g_j) prod_{k in S} m_k (1 - e_obs (1 - Q)),
  so one unknown prerequisite is enough to hold success back ("the weakest
  one limits it");
* filtering: every m_i <- P(i known | y) by Bayes on its marginal (the
  KCs of S through their own term, the others through Q);
* learning (k in S): m_k <- m_k + (1 - m_k) l_nk prod_{i not in S} (1 - e_learn a_ik (1 - m_i)),
  each unknown prerequisite slowing it down;
* forgetting: m_i <- m_i (1 - f_i) for every KC after every attempt;

with a per-KC start m_k = sigmoid(p_k + u_n) and learn rate
l_nk = sigmoid(r_k + v_n) (u_n, v_n: the learner's prior knowledge and
speed, L2-shrunk to 0, so "strong learners do well everywhere" is not read
as an edge), per-item guess and slip as offsets (L2-shrunk) from per-KC
values, and two strengths e_obs, e_learn in (0, 1) shared by all edges
(so a_ik stays an edge probability rather than a per-pair effect size).
The graph logits start at ``init`` (edges nearly absent) under a small L1
penalty on a, so an edge grows where the likelihood asks for it.

The edge score is w_ik and the edge probability is the model's own
a_ik = sigmoid(w_ik): under the L1 penalty an edge grows above 0.5 only
where the outcomes pay for it. (It used to read w against
the bulk of the pairs, as the mastery method reads its z statistics; at
K = 30 that null's upper tail is heavier than its lower half, and the
export kept more than three false edges for every true one: bench/graphs.py.)

The filter is an approximation: it ignores the correlations between KCs
that gating creates (a learner who knows k almost surely knows k's
prerequisites). On dense deep graphs (K = 30, edge probability 0.3 in
``kt simulate --kind gated``) a free fit then prefers wrong edges over the
true ones; see bench/graphs.py for where it is and is not reliable.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.errors import KTError
from kt.graph.graph import PrerequisiteGraph

GATED_STEPS = 150  # Adam steps of the default fit
MAX_KCS_PER_ITEM = 4  # KCs beyond this on one item are ignored (none of kt's sources have more)


def gated_arrays(data: Interactions) -> dict[str, Any]:
    """Per-learner padded arrays of attempts: item, KC set, outcome, mask.

    Args:
        data: interactions.

    Returns:
        ``kcs`` (N, T, M) KC indices (-1 = none), ``item`` (N, T) emission
        unit (the item, or the first KC where items are absent), ``y``
        (N, T), ``mask`` (N, T), ``unit_kc`` (U,) the first KC of each unit,
        and the sizes ``K``, ``U``.
    """
    K = data.vocab.size("skill_id")
    ex = data.explode().select("attempt", "user_idx", "skill_idx", "item_idx", "correct").filter(pl.col("skill_idx") >= 0)
    if ex.height == 0:
        raise KTError(f"{data.source}: no attempt with a known KC; the gated graph needs KC-tagged attempts")
    att = ex["attempt"].to_numpy().astype(np.int64)
    kc = ex["skill_idx"].to_numpy().astype(np.int64)
    _, first, inv = np.unique(att, return_index=True, return_inverse=True)
    user = ex["user_idx"].to_numpy()[first].astype(np.int64)
    y = ex["correct"].to_numpy()[first].astype(np.float32)
    n_att = len(first)
    # Slot of each exploded row within its attempt.
    slot = np.arange(len(att)) - first[inv]
    M = min(int(slot.max()) + 1, MAX_KCS_PER_ITEM)
    kcs_att = np.full((n_att, M), -1, np.int32)
    ok = slot < M
    kcs_att[inv[ok], slot[ok]] = kc[ok]
    item = ex["item_idx"].to_numpy()[first].astype(np.int64)
    if (item < 0).any():  # no items: the first KC is the emission unit
        unit = kcs_att[:, 0].astype(np.int64)
        U = K
    else:  # the vocabulary's items, so a learner resample keeps the shapes (and the compiled fit)
        unit = item
        U = max(data.vocab.size("item_id"), int(item.max()) + 1)
    unit_kc = np.zeros(U, np.int64)
    unit_kc[unit] = kcs_att[:, 0]
    # Pad per learner (frame order is learner-grouped and chronological).
    _, u = np.unique(user, return_inverse=True)
    start = np.r_[0, np.flatnonzero(np.diff(u) != 0) + 1]
    if len(start) != u.max() + 1:
        raise KTError(f"{data.source}: attempts are not grouped by learner; load the data with kt.load")
    lengths = np.diff(np.r_[start, n_att])
    N, T = len(start), int(lengths.max())
    pos = np.arange(n_att) - np.repeat(start, lengths)
    out_kcs = np.full((N, T, M), -1, np.int32)
    out_kcs[u, pos] = kcs_att
    out_item = np.zeros((N, T), np.int32)
    out_item[u, pos] = unit
    out_y = np.zeros((N, T), np.float32)
    out_y[u, pos] = y
    mask = np.zeros((N, T), bool)
    mask[u, pos] = True
    return {"kcs": out_kcs, "item": out_item, "y": out_y, "mask": mask, "unit_kc": unit_kc, "K": K, "U": U}


def _init(K: int, U: int, N: int, init: float):
    import jax.numpy as jnp

    return {
        "w": jnp.full((K, K), init, jnp.float32),
        "prior": jnp.full((K,), -1.5, jnp.float32),
        "learn": jnp.full((K,), -1.5, jnp.float32),
        "forget": jnp.full((K,), -5.0, jnp.float32),
        "guess_kc": jnp.full((K,), -1.5, jnp.float32),
        "slip_kc": jnp.full((K,), -2.0, jnp.float32),
        "guess_item": jnp.zeros((U,), jnp.float32),
        "slip_item": jnp.zeros((U,), jnp.float32),
        "e_obs": jnp.zeros((), jnp.float32),
        "e_learn": jnp.zeros((), jnp.float32),
        "u": jnp.zeros((N,), jnp.float32),
        "v": jnp.zeros((N,), jnp.float32),
    }


def _neg_loglik(params, batch, unit_kc):
    """Summed negative log-likelihood of a batch of learners' attempts (the penalties are :func:`_penalty`)."""
    import jax
    import jax.numpy as jnp

    K = params["w"].shape[0]
    a = jax.nn.sigmoid(params["w"]) * (1.0 - jnp.eye(K))
    logit_g = params["guess_kc"][unit_kc] + params["guess_item"]
    logit_s = params["slip_kc"][unit_kc] + params["slip_item"]
    g_all = jax.nn.sigmoid(logit_g)
    s_all = jax.nn.sigmoid(logit_s)
    forget = jax.nn.sigmoid(params["forget"])
    u, v = params["u"][batch["learner"]], params["v"][batch["learner"]]
    e_obs = jax.nn.sigmoid(params["e_obs"])
    e_learn = jax.nn.sigmoid(params["e_learn"])

    m0 = jax.nn.sigmoid(params["prior"][None, :] + u[:, None])  # (N, K)
    learn = jax.nn.sigmoid(params["learn"][None, :] + v[:, None])

    # The whole batch steps together with dense one-hot algebra: batched gathers and scatters
    # inside a scan are several times slower than these small matmuls on a CPU.
    def step(m, x):
        kc, it, yt, mt = x  # (N, M), (N,), (N,), (N,)
        valid = (kc >= 0).astype(m.dtype)
        onehot = jax.nn.one_hot(jnp.where(kc >= 0, kc, 0), K, dtype=m.dtype) * valid[..., None]  # (N, M, K)
        inS = jnp.sum(onehot, axis=1)  # (N, K)
        a_S = jnp.einsum("ik,nmk->nim", a, onehot) * (1.0 - inS)[..., None]  # (N, K, M)
        b = 1.0 - jnp.prod(1.0 - a_S, axis=2)  # P(i is a prerequisite of some KC of S)
        c = 1.0 - b * (1.0 - m)  # P(i does not block S)
        Q = jnp.prod(c, axis=1)  # (N,) P(no prerequisite of S is unknown)
        mk = jnp.einsum("nmk,nk->nm", onehot, m) + (1.0 - valid)  # (N, M), 1 on padding slots
        k_S = jnp.prod(mk, axis=1)  # P(every KC of S known)
        g, s = g_all[it], s_all[it]
        span = 1.0 - s - g
        gate_obs = 1.0 - e_obs * (1.0 - Q)
        p = jnp.clip(g + span * k_S * gate_obs, 1e-6, 1 - 1e-6)
        ll = yt * jnp.log(p) + (1 - yt) * jnp.log1p(-p)
        # Assumed-density filtering: the state stays a product of Bernoullis; every KC's marginal
        # is updated by Bayes, the item's KCs through their own term, the others through the gate.
        Q_i = Q[:, None] / jnp.clip(c, 1e-12)  # the gate without i
        p1 = g[:, None] + (span * k_S)[:, None] * (1.0 - e_obs * (1.0 - Q_i))
        p0 = g[:, None] + (span * k_S)[:, None] * (1.0 - e_obs * (1.0 - Q_i * (1.0 - b)))
        own = g[:, None] + (span * gate_obs)[:, None] * k_S[:, None] / jnp.clip(mk, 1e-12)  # (N, M)
        p1 = p1 * (1.0 - inS) + jnp.einsum("nmk,nm->nk", onehot, own)
        p0 = p0 * (1.0 - inS) + inS * g[:, None]
        y1 = yt[:, None] > 0
        lik1 = jnp.where(y1, p1, 1 - p1)
        lik0 = jnp.where(y1, p0, 1 - p0)
        post = m * lik1 / jnp.clip(m * lik1 + (1 - m) * lik0, 1e-12)
        # Learning of the item's KCs, gated by the updated knowledge of their prerequisites.
        gate = jnp.exp(jnp.sum(jnp.log1p(-e_learn * a_S * (1.0 - post)[..., None]), axis=1))  # (N, M)
        gate_k = jnp.einsum("nmk,nm->nk", onehot, gate)
        new = post + inS * (1.0 - post) * learn * gate_k
        new = new * (1 - forget)
        m = jnp.where(mt[:, None], new, m)
        return m, jnp.where(mt, ll, 0.0)

    xs = (
        jnp.swapaxes(batch["kcs"], 0, 1),
        batch["item"].T,
        batch["y"].T,
        batch["mask"].T,
    )
    _, lls = jax.lax.scan(step, m0, xs)
    return -lls.sum()


def _penalty(params, learner_l2: float, item_l2: float, l1: float):
    """The penalties (nats): L2 on learner and item offsets, L1 on the edge probabilities."""
    import jax
    import jax.numpy as jnp

    K = params["w"].shape[0]
    a = jax.nn.sigmoid(params["w"]) * (1.0 - jnp.eye(K))
    return (
        learner_l2 * (jnp.sum(params["u"] ** 2) + jnp.sum(params["v"] ** 2))
        + item_l2 * (jnp.sum(params["guess_item"] ** 2) + jnp.sum(params["slip_item"] ** 2))
        + l1 * jnp.sum(a)
    )


CHUNK_BYTES = 1.5e9  # memory for one chunk of learners' filter pass and its gradient
_BYTES_PER_CELL = 64  # stored per (learner, attempt, KC) for the backward pass, with margin
_T_BUCKET = 16  # sequences are padded to a multiple of this, so refits on resamples reuse one compiled step


@functools.cache
def _steps_jitted():
    """The jitted pieces of one Adam step, built on first use (jit then caches them per shape).

    Not closures of one fit, so that a bootstrap's refits (same shapes)
    compile once.
    """
    import jax
    import optax

    chunk_grad = jax.jit(jax.value_and_grad(_neg_loglik))

    @jax.jit
    def penalty_grad(params, learner_l2, item_l2, l1):
        return jax.value_and_grad(lambda p: _penalty(p, learner_l2, item_l2, l1))(params)

    @functools.partial(jax.jit, static_argnames="lr")
    def apply(params, state, grads, n_att, lr):
        grads = jax.tree.map(lambda g: g / n_att, grads)
        upd, state = optax.adam(lr).update(grads, state, params)
        return optax.apply_updates(params, upd), state

    return chunk_grad, penalty_grad, apply


def gated_scores(
    data: Interactions,
    *,
    steps: int = GATED_STEPS,
    lr: float = 0.1,
    init: float = -3.0,
    l1: float = 1.0,
    learner_l2: float = 1.0,
    item_l2: float = 1.0,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """Fit the gated-BKT model (see the module docstring) and return its graph logits.

    Args:
        data: interactions.
        steps: Adam steps, each on the gradient over all learners (learners
            are processed in chunks that fit :data:`CHUNK_BYTES`).
        lr: Adam learning rate.
        init: starting graph logit of every pair.
        l1: penalty (nats over the data set) on the total edge probability sum a_ik.
        learner_l2, item_l2: L2 penalties (nats) on the learner and item offsets.
        on_step: optional callback ``on_step(step, loss)`` after every step.

    Returns:
        ``(w, info)``: K x K graph logits (row = prerequisite, zero diagonal)
        and ``info`` with the final ``loss`` (mean negative log-likelihood
        per attempt plus penalties), the strengths ``e_obs`` and ``e_learn``
        and the fitted ``params``.

    Raises:
        KTError: no KC-tagged attempts, or bad options.
    """
    import jax
    import jax.numpy as jnp
    import optax

    if steps < 1 or not lr > 0:
        raise KTError(f"gated graph: steps {steps} and lr {lr} must be positive")
    arr = gated_arrays(data)
    K, U = arr["K"], arr["U"]
    N, T = arr["y"].shape
    T_pad = -(-T // _T_BUCKET) * _T_BUCKET  # masked steps leave the state and the likelihood unchanged
    per = max(1, min(N, int(CHUNK_BYTES // (_BYTES_PER_CELL * T_pad * max(K, 1)))))
    n_chunks = -(-N // per)
    pad = n_chunks * per - N  # padded learners have no attempts, so one compiled shape serves every chunk

    fills = {"kcs": -1, "item": 0, "y": 0, "mask": False}
    full = {}
    for name, fill in fills.items():
        x = np.full((N + pad, T_pad, *arr[name].shape[2:]), fill, arr[name].dtype)
        x[:N, :T] = arr[name]
        full[name] = x
    chunks = [
        {name: jnp.asarray(x[c * per : (c + 1) * per]) for name, x in full.items()}
        | {"learner": jnp.arange(c * per, (c + 1) * per)}
        for c in range(n_chunks)
    ]
    n_att = float(arr["mask"].sum())
    n_att_dev = jnp.float32(n_att)
    params = _init(K, U, N + pad, init)
    unit_kc = jnp.asarray(arr["unit_kc"])
    state = optax.adam(lr).init(params)
    chunk_grad, penalty_grad, apply = _steps_jitted()
    pen = tuple(jnp.float32(x) for x in (learner_l2, item_l2, l1))

    loss = float("nan")
    for i in range(steps):
        total, grads = penalty_grad(params, *pen)
        for batch in chunks:
            v, g = chunk_grad(params, batch, unit_kc)
            total, grads = total + v, jax.tree.map(jnp.add, grads, g)
        params, state = apply(params, state, grads, n_att_dev, lr=float(lr))
        loss = float(total) / n_att
        if on_step is not None:
            on_step(i, loss)
    w = np.asarray(params["w"], np.float64)
    np.fill_diagonal(w, 0.0)
    info = {
        "loss": loss,
        "e_obs": float(jax.nn.sigmoid(params["e_obs"])),
        "e_learn": float(jax.nn.sigmoid(params["e_learn"])),
        "params": params,
    }
    return w, info


def gated_graph(data: Interactions, kcs: list[str] | None = None, **kwargs) -> PrerequisiteGraph:
    """The gated-BKT graph of a data set (see the module docstring).

    Args:
        data: interactions.
        kcs: KC names of the graph (e.g. a model's vocabulary); default the data's.
        **kwargs: options of :func:`gated_scores`.

    Returns:
        A graph with ``method="gated"``, ``score`` = the graph logits w and
        ``prob`` = sigmoid(w), the fitted edge probabilities a_ik.
    """
    from kt.graph.mastery import _reindex, sigmoid

    w, info = gated_scores(data, **kwargs)
    prob = sigmoid(w)
    np.fill_diagonal(prob, 0.0)
    meta = {
        "transform": "prob = sigmoid(w_ik): the fitted probability a_ik that i is a prerequisite of k",
        "score": "graph logit w_ik of a gated-BKT model (i held back learning and success on k while unknown), "
        "fitted by gradient on the outcomes' log-likelihood",
        "final_loss": info["loss"],
        "e_obs": info["e_obs"],
        "e_learn": info["e_learn"],
        **{k: v for k, v in kwargs.items() if k != "on_step"},
    }
    return _reindex(PrerequisiteGraph(list(data.vocab.skill_id), prob, "gated", score=w, meta=meta), data, kcs)

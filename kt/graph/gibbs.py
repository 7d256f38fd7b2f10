"""Gated-BKT structure learner by Monte Carlo EM (experimental; not a graph method yet).

The model family is kt.graph.gated's (per-KC start, learn and forget rates,
learner prior and speed offsets, per-item guess and slip, shared gate
strengths e_obs and e_learn, a soft graph a_ik = sigmoid(w_ik) under a small
L1 penalty). What changes is the inference: gated.py filters each learner's
knowledge as a product of independent Bernoullis, which loses the
dependence that gating creates (a learner who knows k almost surely knows
k's prerequisites) and, on dense deep graphs, makes a wrong graph fit
better than the true one. Here the binary knowledge trajectories
z[n, t, k] are sampled jointly instead (stochastic EM):

* E-step: systematic-scan Gibbs over KCs. Given every other KC's
  trajectory, KC k's trajectory is a two-state HMM with time-varying
  factors: its own learning and forgetting transitions, the outcome of
  every attempt whose item has k as a KC or as a (soft) prerequisite of
  one, and the learning transitions of k's children (their learning is
  slowed while k is unknown). It is sampled exactly by forward filtering,
  backward sampling (``lax.scan`` over attempts, all learners at once).
* M-step: a few Adam steps on the complete-data log-likelihood of the
  sampled trajectories, every parameter and the soft graph included (warm
  started across iterations, so Adam's moments average over samples).

Per attempt t of learner n on item j with KC set S (states at the attempt):

* success: P(y = 1) = g_j + (1 - s_j - g_j) [all of S known] (1 - e_obs (1 - Q)),
  Q = prod_{i not in S} (1 - b_i [i unknown]), b_i = 1 - prod_{k in S} (1 - a_ik);
* learning, after the attempt, each k of S not known:
  P(0 -> 1) = l_nk prod_{i != k} (1 - e_learn a_ik [i unknown]), l_nk = sigmoid(r_k + v_n);
* forgetting, after learning, every known KC: P(1 -> 0) = f_k;
* start: P(z_k = 1) = sigmoid(p_k + u_n).

This is kt.data.synthetic_gated's order of events (attempt, learning of
the item's KCs, forgetting of every KC) with one simplification: the gates
of both KCs of a two-KC item read the states at the attempt, where the
generator lets the second KC's gate see the first KC just learnt.

The edge score is the mean of w_ik over the last iterations; the edge
probability reads it against the bulk of the pairs as gated.py does
(kt.graph.mastery.null_calibrated). Two variants are kept as options of
:func:`gibbs_scores`: a binary graph whose edges are redrawn from their
collapsed conditionals (KC k's trajectory summed out by its HMM's forward
pass, so an edge i -> k is judged with z_k free to rearrange), and the
collapsed log-ratio as the score of the soft fit.

Status (issue 16, measured by hand on ``kt simulate --kind gated``, seed 0,
not in bench/graphs.py):
K = 10 with 1,000 learners is recovered exactly (AUROC 1.000 random and
curriculum), but K = 30 with 3,000 learners reaches edge AUROC 0.68-0.79
(gated.py: 0.756), short of the 0.85 target. The sampler is exact and the
true graph is a stable fixed point far better in complete-data likelihood
(started there, the fit keeps AUROC 0.999); started from the filter fit
(or an empty graph, annealed gates, a sparser L1, sampled edges), EM
settles in a worse mode: with about three attempts per KC and learner the
trajectories are fixed mostly by the graph, so the sampled states confirm
the graph they were drawn under.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from jaxtyping import Array, Float, Int

from kt.data.schema import Interactions
from kt.errors import KTError
from kt.graph.graph import PrerequisiteGraph

_EPS = 1e-6  # keeps gate factors away from 0 so their logs stay finite and removable


def forward_filter(
    init1: Float[Array, " N"],
    p01: Float[Array, "T N"],
    p11: Float[Array, "T N"],
    phi0: Float[Array, "T N"],
    phi1: Float[Array, "T N"],
) -> tuple[Float[Array, "T N"], Float[Array, " N"]]:
    """Forward pass of a two-state HMM with time-varying factors, for many chains at once.

    Args:
        init1: P(z_0 = 1) per chain.
        p01, p11: P(z_{t+1} = 1 | z_t = 0) and P(z_{t+1} = 1 | z_t = 1); row T-1 is unused.
        phi0, phi1: nonnegative factor of step t as a function of z_t (likelihood terms).

    Returns:
        ``(alpha1, log_z)``: P(z_t = 1 | factors up to t) and the log of the
        total mass sum_z p(z) prod_t phi_t(z_t) per chain.
    """
    import jax
    import jax.numpy as jnp

    # Step t's prediction uses the transition out of t-1; the start acts as a transition into step 0.
    q01 = jnp.concatenate([init1[None], p01[:-1]])
    q11 = jnp.concatenate([init1[None], p11[:-1]])

    def step(prev1, x):
        a01, a11, f0, f1 = x
        pred1 = prev1 * a11 + (1.0 - prev1) * a01
        num1, num0 = pred1 * f1, (1.0 - pred1) * f0
        tot = num1 + num0 + 1e-30
        return num1 / tot, (num1 / tot, jnp.log(tot))

    # Any value works as the start carry: the first transition ignores it (q01 = q11 = init1).
    _, (alpha1, logs) = jax.lax.scan(step, init1, (q01, q11, phi0, phi1))
    return alpha1, logs.sum(axis=0)


def ffbs(
    key: Array,
    init1: Float[Array, " N"],
    p01: Float[Array, "T N"],
    p11: Float[Array, "T N"],
    phi0: Float[Array, "T N"],
    phi1: Float[Array, "T N"],
) -> Float[Array, "T N"]:
    """Exact sample of a two-state HMM's trajectory by forward filtering, backward sampling.

    Args:
        key: PRNG key.
        init1, p01, p11, phi0, phi1: the HMM, as in :func:`forward_filter`.

    Returns:
        A 0/1 trajectory per chain (float), drawn from p(z | factors).
    """
    import jax
    import jax.numpy as jnp

    alpha1, _ = forward_filter(init1, p01, p11, phi0, phi1)
    u = jax.random.uniform(key, alpha1.shape)
    last = (u[-1] < alpha1[-1]).astype(alpha1.dtype)

    def back(nxt, x):
        a1, t01, t11, ut = x
        # p(z_t | z_{t+1}, factors up to t) ∝ alpha_t(z_t) P(z_{t+1} | z_t).
        w1 = a1 * jnp.where(nxt > 0.5, t11, 1.0 - t11)
        w0 = (1.0 - a1) * jnp.where(nxt > 0.5, t01, 1.0 - t01)
        z = (ut * (w1 + w0) < w1).astype(a1.dtype)
        return z, z

    _, zs = jax.lax.scan(back, last, (alpha1[:-1], p01[:-1], p11[:-1], u[:-1]), reverse=True)
    return jnp.concatenate([zs, last[None]])


def _terms(params: dict, unit_kc: Int[Array, " U"], N: int) -> dict:
    """The model's probabilities from its unconstrained parameters (gated.py's parametrisation)."""
    import jax
    import jax.numpy as jnp

    K = params["w"].shape[0]
    u, v = params["u"][:N], params["v"][:N]
    return {
        "a": jax.nn.sigmoid(params["w"]) * (1.0 - jnp.eye(K)),
        "e_obs": jax.nn.sigmoid(params["e_obs"]),
        "e_learn": jax.nn.sigmoid(params["e_learn"]),
        "g": jax.nn.sigmoid(params["guess_kc"][unit_kc] + params["guess_item"]),
        "s": jax.nn.sigmoid(params["slip_kc"][unit_kc] + params["slip_item"]),
        "forget": jax.nn.sigmoid(params["forget"]),
        "start": jax.nn.sigmoid(params["prior"][None, :] + u[:, None]),  # (N, K)
        "learn": jax.nn.sigmoid(params["learn"][None, :] + v[:, None]),  # (N, K)
    }


def _layout(arr: dict[str, Any], K: int) -> dict[str, Array]:
    """Time-major device arrays of :func:`kt.graph.gated.gated_arrays` output, with the masks the sampler needs."""
    import jax.numpy as jnp

    kcs = np.swapaxes(arr["kcs"], 0, 1)  # (T, N, M)
    mask = arr["mask"].T
    nxt = np.zeros_like(mask)
    nxt[:-1] = mask[1:]  # a transition out of t matters only if t + 1 is an attempt
    in_s = np.zeros((K, *kcs.shape[:2]), np.float32)  # 1 where KC k is one of the attempt's KCs
    t_ix, n_ix, slot = np.nonzero(kcs >= 0)
    in_s[kcs[t_ix, n_ix, slot], t_ix, n_ix] = 1.0
    return {
        "in_s": jnp.asarray(in_s),
        "cc": jnp.asarray(np.where(kcs >= 0, kcs, 0), jnp.int32),
        "valid": jnp.asarray(kcs >= 0),
        "item": jnp.asarray(arr["item"].T, jnp.int32),
        "y": jnp.asarray(arr["y"].T > 0.5),
        "mask": jnp.asarray(mask),
        "next": jnp.asarray(nxt),
    }


def _gather_slots(z: Float[Array, "K T N"], cc: Int[Array, "T N M"], shift: int = 0) -> Float[Array, "T N M"]:
    """z of each slot's KC at attempt t + shift (shift 1 at the last attempt reads t: masked by the caller)."""
    import jax.numpy as jnp

    T, N, _ = cc.shape
    tt = jnp.minimum(jnp.arange(T) + shift, T - 1)[:, None, None]
    return z[cc, tt, jnp.arange(N)[None, :, None]]


def _log_edges(m: dict) -> tuple[Float[Array, "K K"], Float[Array, "K K"]]:
    """log(1 - a_ik) (an unknown i lets success on k through) and log(1 - e_learn a_ik) (its learning gate)."""
    import jax.numpy as jnp

    a = jnp.minimum(m["a"], 1.0 - _EPS)
    return jnp.log1p(-a), jnp.log1p(-jnp.minimum(m["e_learn"] * a, 1.0 - _EPS))


def _gates(z: Float[Array, "K T N"], m: dict, d: dict) -> tuple[Float[Array, "T N"], Float[Array, "T N M"]]:
    """log Q (no prerequisite of the item unknown) and log of each slot KC's learning gate.

    With binary states both are sums over the unknown KCs of per-edge logs, so
    one (T N, K) x (K, K) product gives them for every KC; only the item's
    slots are kept. Q leaves out the item's own KCs (they enter success directly).
    """
    import jax.numpy as jnp

    la, lg = _log_edges(m)
    unk = 1.0 - z
    q_all = jnp.einsum("ktn,kc->tnc", unk * (1.0 - d["in_s"]), la)
    g_all = jnp.einsum("ktn,kc->tnc", unk, lg)
    log_q = jnp.sum(jnp.where(d["valid"], jnp.take_along_axis(q_all, d["cc"], axis=-1), 0.0), axis=-1)
    return log_q, jnp.take_along_axis(g_all, d["cc"], axis=-1)


def gibbs_sweep(
    key: Array, z: Float[Array, "K T N"], m: dict, d: dict, edges: bool = False
) -> tuple[Float[Array, "K T N"], Float[Array, "K K"]]:
    """One systematic-scan Gibbs sweep: every KC's trajectory redrawn by FFBS given the others'.

    Args:
        key: PRNG key.
        z: current 0/1 knowledge states (KC, attempt, learner), at each attempt.
        m: model probabilities (:func:`_terms`).
        d: data layout (:func:`_layout`).
        edges: also return, for every pair (i, k), log p(y, z_-k | a_ik = 1) - log p(y, z_-k | a_ik = 0)
            with KC k's trajectory summed out (its HMM's forward pass), other edges as they are.

    Returns:
        ``(z, delta)``: the new states and the K x K collapsed edge log-ratios (zeros unless ``edges``).
    """
    import jax
    import jax.numpy as jnp

    K, T, N = z.shape
    cc, valid, mask, nxt, y = d["cc"], d["valid"], d["mask"], d["next"], d["y"]
    g, s = m["g"][d["item"]], m["s"][d["item"]]
    span = 1.0 - s - g
    e_obs, e_l = m["e_obs"], m["e_learn"]
    la, lg = _log_edges(m)
    lrn = m["learn"][jnp.arange(N)[None, :, None], cc]  # (T, N, M): base learn rate of each slot's KC
    keep_c = 1.0 - m["forget"][cc]  # a KC learnt at t is still known at t + 1 unless forgotten
    # Recomputed every sweep (not carried over), so rounding in the incremental updates cannot drift.
    log_q, log_g = _gates(z, m, d)

    def body(k, carry):
        z, log_q, log_g, key, delta = carry
        key, sub = jax.random.split(key)
        zk = z[k]
        is_k = (cc == k) & valid
        in_s = d["in_s"][k]
        # k's terms in the gates: log(1 - a_{k, c_m}) over the item's KCs (none when k is one of them),
        # and log(1 - e_learn a_{k, c_m}) per slot (0 at k's own slot: a_kk = 0).
        lq_k = jnp.sum(jnp.where(valid, la[k][cc], 0.0), axis=-1) * (1.0 - in_s)
        lg_k = jnp.where(valid, lg[k][cc], 0.0)
        q_rest = log_q - (1.0 - zk) * lq_k
        g_rest = log_g - (1.0 - zk)[..., None] * lg_k
        zc = _gather_slots(z, cc)
        zc_next = _gather_slots(z, cc, 1)
        others_known = jnp.prod(jnp.where(valid & ~is_k, zc, 1.0), axis=-1)
        # Children: slot KCs other than k, unknown at t, whose transition to t + 1 is observed in z.
        child = valid & ~is_k & (zc < 0.5) & nxt[..., None]

        def kids(zv):
            lam = lrn * jnp.exp(g_rest + (1.0 - zv) * lg_k) * keep_c
            return jnp.prod(jnp.where(child, jnp.where(zc_next > 0.5, lam, 1.0 - lam), 1.0), axis=-1)

        def factor(zv):
            q = jnp.exp(q_rest + (1.0 - zv) * lq_k)
            known = others_known * jnp.where(in_s > 0, zv, 1.0)
            p = g + span * known * (1.0 - e_obs * (1.0 - q))
            return jnp.where(mask, jnp.where(y, p, 1.0 - p), 1.0) * kids(zv)

        # k's own transitions: learnt (if practised) then possibly forgotten; no learning unpractised.
        lam_own = jnp.sum(jnp.where(is_k, lrn * jnp.exp(log_g), 0.0), axis=-1)  # no k term at k's own slot
        fk = m["forget"][k]
        p01 = jnp.where(nxt, in_s * lam_own * (1.0 - fk), 0.0)
        p11 = jnp.where(nxt, 1.0 - fk, 1.0)
        f0, f1 = factor(0.0), factor(1.0)
        zk_new = ffbs(sub, m["start"][:, k], p01, p11, f0, f1)
        if edges:
            # Edge i -> k touches only KC k's HMM: the outcomes of items with k (through Q) and k's learning.
            k0, k1 = kids(0.0), kids(1.0)

            def logz(i, v):
                unk_i = 1.0 - z[i]
                dq = in_s * (1.0 - d["in_s"][i]) * unk_i * (jnp.log(jnp.maximum(1.0 - v, _EPS)) - la[i, k])
                dg = unk_i * (jnp.log1p(-jnp.minimum(e_l * v, 1.0 - _EPS)) - lg[i, k])

                def fac(zv):
                    q = jnp.exp(q_rest + dq + (1.0 - zv) * lq_k)
                    known = others_known * jnp.where(in_s > 0, zv, 1.0)
                    p = g + span * known * (1.0 - e_obs * (1.0 - q))
                    return jnp.where(mask, jnp.where(y, p, 1.0 - p), 1.0) * (k1 if zv else k0)

                q01 = jnp.where(nxt, in_s * lam_own * jnp.exp(dg) * (1.0 - fk), 0.0)
                return jnp.sum(forward_filter(m["start"][:, k], q01, p11, fac(0.0), fac(1.0))[1])

            col = jax.lax.map(lambda i: logz(i, 1.0) - logz(i, 0.0), jnp.arange(K))
            delta = delta.at[:, k].set(jnp.where(jnp.arange(K) == k, 0.0, col))
        log_q = q_rest + (1.0 - zk_new) * lq_k
        log_g = g_rest + (1.0 - zk_new)[..., None] * lg_k
        return z.at[k].set(zk_new), log_q, log_g, key, delta

    z, _, _, _, delta = jax.lax.fori_loop(0, K, body, (z, log_q, log_g, key, jnp.zeros((K, K), z.dtype)))
    return z, delta


def complete_nll(params: dict, z: Float[Array, "S K T N"], d: dict, unit_kc: Int[Array, " U"]) -> Float[Array, ""]:
    """Negative complete-data log-likelihood of sampled trajectories (summed over samples; no penalties).

    Args:
        params: unconstrained parameters (gated.py's layout).
        z: S sampled 0/1 state arrays.
        d: data layout (:func:`_layout`).
        unit_kc: first KC of each emission unit.

    Returns:
        The summed negative log-likelihood (nats).
    """
    import jax
    import jax.numpy as jnp

    S, K, T, N = z.shape
    m = _terms(params, unit_kc, N)
    cc, valid, mask, nxt, y = d["cc"], d["valid"], d["mask"], d["next"], d["y"]
    g, s = m["g"][d["item"]], m["s"][d["item"]]
    lrn = m["learn"][jnp.arange(N)[None, :, None], cc]
    keep_c = 1.0 - m["forget"][cc]
    f = m["forget"]

    def one(zs):
        log_q, log_g = _gates(zs, m, d)
        zc = _gather_slots(zs, cc)
        zc_next = _gather_slots(zs, cc, 1)
        known = jnp.prod(jnp.where(valid, zc, 1.0), axis=-1)
        p = jnp.clip(g + (1.0 - s - g) * known * (1.0 - m["e_obs"] * (1.0 - jnp.exp(log_q))), 1e-6, 1 - 1e-6)
        ll = jnp.sum(jnp.where(mask, jnp.where(y, jnp.log(p), jnp.log1p(-p)), 0.0))
        lam = jnp.clip(lrn * jnp.exp(log_g) * keep_c, 1e-6, 1 - 1e-6)
        learning = valid & nxt[..., None] & (zc < 0.5)
        ll += jnp.sum(jnp.where(learning, jnp.where(zc_next > 0.5, jnp.log(lam), jnp.log1p(-lam)), 0.0))
        # Forgetting: every known KC at t with an attempt at t + 1 (sufficient statistics per KC).
        stay = zs[:, :-1] * nxt[None, :-1]
        n11 = jnp.sum(stay * zs[:, 1:], axis=(1, 2))
        n10 = jnp.sum(stay * (1.0 - zs[:, 1:]), axis=(1, 2))
        ll += jnp.sum(n11 * jnp.log1p(-f) + n10 * jnp.log(f))
        st = jnp.clip(m["start"].T, 1e-6, 1 - 1e-6)  # (K, N)
        first = mask[0][None, :]
        ll += jnp.sum(jnp.where(first, zs[:, 0] * jnp.log(st) + (1.0 - zs[:, 0]) * jnp.log1p(-st), 0.0))
        return ll

    return -jnp.sum(jax.lax.map(one, z))


def gibbs_scores(
    data: Interactions,
    *,
    iters: int = 60,
    sweeps: int = 1,
    samples: int = 1,
    mstep: int = 10,
    lr: float = 0.05,
    average: int = 20,
    init_steps: int = 50,
    burn: int = 5,
    l1: float = 1.0,
    learner_l2: float = 1.0,
    item_l2: float = 1.0,
    seed: int = 0,
    graph: str = "soft",
    edge_prior: float = -2.0,
    score: str = "w",
    anneal: int = 0,
    flips: int = 5,
    init_params: dict | None = None,
    on_iter: Callable[[int, dict], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """Fit the gated-BKT model by Monte Carlo EM (see the module docstring) and return its graph logits.

    Args:
        data: interactions.
        iters: EM iterations (E-step sweeps, then M-step Adam steps).
        sweeps: Gibbs sweeps per iteration.
        samples: trajectory samples per M-step (one sweep apart).
        mstep: Adam steps per iteration.
        lr: Adam learning rate.
        average: the score averages w over this many last iterations.
        init_steps: steps of gated.py's filter fit that give the starting parameters.
        burn: Gibbs sweeps under the starting parameters before the first M-step.
        l1, learner_l2, item_l2: penalties as in :func:`kt.graph.gated.gated_scores`.
        seed: PRNG seed.
        graph: ``soft`` (a = sigmoid(w) fitted in the M-step; score: w averaged), ``greedy``
            (a binary graph from the empty one, a few flips per iteration, see ``flips``) or ``sampled``
            (a binary graph, each edge redrawn every iteration from its collapsed conditional
            given the other KCs' trajectories; score: the collapsed log-ratio averaged).
        edge_prior: log prior odds of an edge (``sampled``).
        score: ``w`` (soft graph: the averaged logits) or ``delta`` (the averaged collapsed
            log-ratios; always so for ``sampled``).
        flips: ``greedy`` graph: pairs flipped per iteration (those whose collapsed log-ratio
            most disagrees with the current binary graph).
        anneal: iterations over which the gate strengths are capped by a ramp from 0.2 to 0.95
            (weak gates first, so the sampled states follow the outcomes more than the graph).
        init_params: starting parameters (gated.py's layout) instead of the filter fit.
        on_iter: optional callback ``on_iter(iteration, info)``.

    Returns:
        ``(w, info)``: K x K graph logits (row = prerequisite, zero diagonal)
        and ``info`` with the final complete-data ``loss`` per attempt, ``e_obs``,
        ``e_learn`` and the ``params``.

    Raises:
        KTError: bad options or no KC-tagged attempts.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from kt.graph.gated import _penalty, gated_arrays, gated_scores

    if min(iters, sweeps, samples, mstep, average) < 1 or burn < 0 or not lr > 0:
        raise KTError("gibbs graph: iters, sweeps, samples, mstep, average must be >= 1, burn >= 0 and lr > 0")
    arr = gated_arrays(data)
    K = arr["K"]
    N, T = arr["y"].shape
    d = _layout(arr, K)
    unit_kc = jnp.asarray(arr["unit_kc"])
    if init_params is None:
        _, info0 = gated_scores(data, steps=init_steps, l1=l1, learner_l2=learner_l2, item_l2=item_l2)
        init_params = info0["params"]
    params = {k: jnp.asarray(v)[:N] if k in ("u", "v") else jnp.asarray(v) for k, v in init_params.items()}
    n_att = float(arr["mask"].sum())

    # The data go in as arguments, not closed-over constants, so XLA does not fold them at compile time.
    sampled = graph in ("sampled", "greedy")
    use_delta = sampled or score == "delta"
    sweep = jax.jit(lambda key, z, p, d: gibbs_sweep(key, z, _terms(p, unit_kc, N), d, edges=use_delta))
    opt = optax.adam(lr)
    state = opt.init(params)

    @jax.jit
    def m_step(params, state, zs, d):
        def loss(p):
            return (complete_nll(p, zs, d, unit_kc) / zs.shape[0] + _penalty(p, learner_l2, item_l2, l1)) / n_att

        def one(carry, _):
            p, st = carry
            v, gr = jax.value_and_grad(loss)(p)
            if sampled:  # the graph is drawn in the E-step, not fitted
                gr = dict(gr, w=jnp.zeros_like(gr["w"]))
            upd, st = opt.update(gr, st, p)
            return (optax.apply_updates(p, upd), st), v

        (params, state), vals = jax.lax.scan(one, (params, state), None, length=mstep)
        return params, state, vals[-1]

    key = jax.random.PRNGKey(seed)
    key, sub = jax.random.split(key)
    m0 = _terms(params, unit_kc, N)
    # Start from independent draws of the start distribution; the burn-in sweeps bring in the outcomes.
    z = (jax.random.uniform(sub, (K, T, N)) < m0["start"].T[:, None, :]).astype(jnp.float32)
    for _ in range(burn):
        key, sub = jax.random.split(key)
        z, _ = sweep(sub, z, params, d)
    w_sum = np.zeros((K, K))
    loss = float("nan")
    for it in range(iters):
        zs = []
        for _ in range(samples):
            for _ in range(sweeps):
                key, sub = jax.random.split(key)
                z, delta = sweep(sub, z, params, d)
            zs.append(z)
        if graph == "sampled":
            key, sub = jax.random.split(key)
            on = jax.random.uniform(sub, delta.shape) < jax.nn.sigmoid(delta + edge_prior)
            params = dict(params, w=jnp.where(on, 8.0, -8.0) * (1.0 - jnp.eye(K)))
        elif graph == "greedy":
            # Flip the few pairs whose collapsed log-ratio (plus prior) most disagrees with the graph.
            cur = np.asarray(params["w"]) > 0
            gain = np.where(cur, -1.0, 1.0) * (np.asarray(delta) + edge_prior)
            np.fill_diagonal(gain, -np.inf)
            flat = np.argsort(gain, axis=None)[::-1][:flips]
            flat = flat[gain.ravel()[flat] > 0]
            cur.ravel()[flat] = ~cur.ravel()[flat]
            params = dict(params, w=jnp.asarray(np.where(cur, 8.0, -8.0) * (1.0 - np.eye(K)), jnp.float32))
        params, state, v = m_step(params, state, jnp.stack(zs), d)
        if it < anneal:
            cap = float(np.log((c := 0.2 + 0.75 * it / anneal) / (1.0 - c)))
            params = dict(params, e_obs=jnp.minimum(params["e_obs"], cap), e_learn=jnp.minimum(params["e_learn"], cap))
        loss = float(v)
        if it >= iters - average:
            w_sum += np.asarray(delta if use_delta else params["w"], np.float64)
        if on_iter is not None:
            on_iter(it, {"loss": loss, "params": params, "z": z})
    w = w_sum / min(average, iters)
    np.fill_diagonal(w, 0.0)
    info = {
        "loss": loss,
        "e_obs": float(jax.nn.sigmoid(params["e_obs"])),
        "e_learn": float(jax.nn.sigmoid(params["e_learn"])),
        "params": params,
    }
    return w, info


def gibbs_graph(data: Interactions, kcs: list[str] | None = None, **kwargs) -> PrerequisiteGraph:
    """The gated-BKT graph of a data set fitted by Monte Carlo EM (see the module docstring).

    Args:
        data: interactions.
        kcs: KC names of the graph (e.g. a model's vocabulary); default the data's.
        **kwargs: options of :func:`gibbs_scores`.

    Returns:
        A graph with ``method="gibbs"``, ``score`` = the averaged graph logits
        w and ``prob`` read against the empirical null of the pairs (as gated).
    """
    from kt.graph.mastery import _reindex, null_calibrated

    w, info = gibbs_scores(data, **kwargs)
    prob, null = null_calibrated(w, "w")
    meta = {
        **null,
        "score": "graph logit w_ik of a gated-BKT model (i held back learning and success on k while unknown), "
        "fitted by Monte Carlo EM with Gibbs-sampled knowledge trajectories",
        "final_loss": info["loss"],
        "e_obs": info["e_obs"],
        "e_learn": info["e_learn"],
        **{k: v for k, v in kwargs.items() if k not in ("on_iter", "init_params")},
    }
    return _reindex(PrerequisiteGraph(list(data.vocab.skill_id), prob, "gibbs", score=w, meta=meta), data, kcs)

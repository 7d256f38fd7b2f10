"""BKT inference and EM in JAX, on the layouts of ``kt.models.bkt.layout`` (pyBKT's EM, Corbett & Anderson 1995).

Two engines fit all KCs and random restarts at once; a KC x restart whose
log-likelihood change falls below ``tol`` is frozen, so the joint fit equals
independent per-KC fits.

* Lane engine (:func:`kt.models.bkt.lanes.fit_lanes`; standard BKT, ``forgets``, ``multiprior``,
  where every slot is constant along a packed row): a forward-only E-step
  (forward smoothing of the expected counts) runs in one
  small fixed-shape kernel over blocks of (row, restart) lanes; the host
  runs the M-step and drops converged KC x restart pairs from the layout.
  The kernel does not depend on the data's shape, so it is compiled once
  per process (in the background while the data are laid out).
* Grid engine (:func:`em_phase`; per-item slots: ``multigs``,
  ``multilearn``, ``multipair``): ``lax.scan`` forward filter and smoothing
  pass over the time axis of the packed grid, soft counts reduced to slots
  with segment sums, EM inside one ``lax.while_loop``.

:func:`filter_grid` (prediction) uses the packed grid for every variant.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

CLAMP = 1e-8


class BKTParams(eqx.Module):
    """Slot tables with a trailing restart axis R.

    Values are kept in [1e-8, 1 - 1e-8] (in float32: [eps, 1 - eps], since
    1 - 1e-8 rounds to 1); forget is exactly 0 unless forgets is on.

    Attributes:
        prior: P(known) at a subsequence's first step, per prior slot.
        learn: P(0 -> 1) out of a step, per resource slot.
        forget: P(1 -> 0) out of a step, per resource slot (0 unless forgets).
        guess: P(correct | unknown), per guess/slip slot.
        slip: P(wrong | known), per guess/slip slot.
    """

    # JAX arrays in the grid engine, NumPy arrays on the host (random_init, the lane engine).
    prior: Float[Array | np.ndarray, "P R"]
    learn: Float[Array | np.ndarray, "Rs R"]
    forget: Float[Array | np.ndarray, "Rs R"]
    guess: Float[Array | np.ndarray, "G R"]
    slip: Float[Array | np.ndarray, "G R"]


class Grid(NamedTuple):
    """Device copy of :class:`kt.models.bkt.layout.Packed` (time-major)."""

    obs: Int[Array, "L N"]
    valid: Bool[Array, "L N"]
    first: Bool[Array, "L N"]
    last: Bool[Array, "L N"]
    kc: Int[Array, "L N"]
    prior_slot: Int[Array, "L N"]
    res_slot: Int[Array, "L N"]
    gs_slot: Int[Array, "L N"]
    row_prior_slot: Int[Array, " N"]
    row_res_slot: Int[Array, " N"]
    row_gs_slot: Int[Array, " N"]


class Counts(NamedTuple):
    """Expected sufficient statistics per slot (trailing restart axis; JAX, or NumPy in the lane engine)."""

    prior_num: Array | np.ndarray
    prior_den: Array | np.ndarray
    learn_num: Array | np.ndarray
    learn_den: Array | np.ndarray
    forget_num: Array | np.ndarray
    forget_den: Array | np.ndarray
    guess_num: Array | np.ndarray
    guess_den: Array | np.ndarray
    slip_num: Array | np.ndarray
    slip_den: Array | np.ndarray


def emissions(obs: Int[Array, "..."], guess: Array, slip: Array) -> tuple[Array, Array]:
    """Likelihood of each step's observation under known (l1) / unknown (l0).

    A missing observation (-1) has likelihood 1 under both states.
    """
    o1 = (obs == 1)[..., None]
    o0 = (obs == 0)[..., None]
    l1 = jnp.where(o1, 1 - slip, jnp.where(o0, slip, 1.0))
    l0 = jnp.where(o1, guess, jnp.where(o0, 1 - guess, 1.0))
    return l1, l0


class Forward(NamedTuple):
    """Forward-filter outputs, each ``[L, N, R]``.

    Both states are carried (``*1`` known, ``*0`` unknown) so that neither
    probability is ever formed as ``1 - p``: in float32, P(known) would round
    to exactly 1 after a run of correct answers and stop reacting to errors.
    """

    p1: Array  # P(known at t | obs before t)
    p0: Array  # P(unknown at t | obs before t)
    f1: Array  # P(known at t | obs up to t)
    f0: Array  # P(unknown at t | obs up to t)
    c: Array  # P(obs_t | obs before t), the scaling factor
    n1: Array  # P(known at t+1 | obs up to t)


def forward(
    first: Bool[Array, "L N"],
    prior_t: Float[Array, "L N R"],
    l1: Float[Array, "L N R"],
    l0: Float[Array, "L N R"],
    learn_t: Float[Array, "L N R"],
    forget_t: Float[Array, "L N R"],
) -> Forward:
    """Scaled forward filter over the packed grid (see :class:`Forward`)."""
    tiny = jnp.finfo(prior_t.dtype).tiny

    def step(carry, x):
        n1_prev, n0_prev = carry
        fst, pri, a1, a0, lt, ft = x
        fst = fst[:, None]
        p1 = jnp.where(fst, pri, n1_prev)
        p0 = jnp.where(fst, 1 - pri, n0_prev)
        j1, j0 = p1 * a1, p0 * a0
        c = jnp.maximum(j1 + j0, tiny)
        f1, f0 = j1 / c, j0 / c
        n1 = f1 * (1 - ft) + f0 * lt
        n0 = f0 * (1 - lt) + f1 * ft
        return (n1, n0), (p1, p0, f1, f0, c, n1)

    init = jnp.zeros(prior_t.shape[1:], prior_t.dtype)
    _, outs = jax.lax.scan(step, (init, init), (first, prior_t, l1, l0, learn_t, forget_t))
    return Forward(*outs)


def backward(
    last: Bool[Array, "L N"],
    f1: Float[Array, "L N R"],
    f0: Float[Array, "L N R"],
    learn_t: Float[Array, "L N R"],
    forget_t: Float[Array, "L N R"],
    with_forget: bool = True,
) -> tuple[Array, Array, Array, Array | None]:
    """Smoothing pass: posteriors of both states and transition counts.

    Uses xi_t(i->j) = A[j,i] alpha_t(i) gamma_{t+1}(j) / (A alpha_t)_j, so no
    separate beta recursion is needed. Only xi(0->1) and xi(1->0) leave the
    scan: the rest follows from gamma, since xi(0->0) + xi(0->1) =
    gamma_t(0) and xi(1->0) + xi(1->1) = gamma_t(1) at every non-last step.

    Returns:
        gamma1 = P(known at t | all obs), gamma0 = P(unknown at t | all obs),
        xi01 and (if ``with_forget``) xi10, each ``[L, N, R]``; xi values at
        last steps are meaningless and must be masked by callers.
    """
    eps = jnp.asarray(1e-30, f1.dtype)

    def step(carry, x):
        g1n, g0n = carry
        lst, a1, a0, lt, ft = x
        n1 = a1 * (1 - ft) + a0 * lt  # P(known at t+1 | obs up to t)
        n0 = a0 * (1 - lt) + a1 * ft
        r1 = g1n / jnp.maximum(n1, eps)
        r0 = g0n / jnp.maximum(n0, eps)
        xi11, xi10 = (1 - ft) * a1 * r1, ft * a1 * r0
        xi01, xi00 = lt * a0 * r1, (1 - lt) * a0 * r0
        lst = lst[:, None]
        g1 = jnp.where(lst, a1, xi11 + xi10)
        g0 = jnp.where(lst, a0, xi01 + xi00)
        return (g1, g0), (g1, g0, xi01, xi10) if with_forget else (g1, g0, xi01)

    init = jnp.zeros(f1.shape[1:], f1.dtype)
    _, outs = jax.lax.scan(step, (init, init), (last, f1, f0, learn_t, forget_t), reverse=True)
    return outs if with_forget else (*outs, None)


def step_params(params: BKTParams, grid: Grid) -> tuple[Array, ...]:
    """Gather slot parameters into per-step arrays ``[L, N, R]``."""
    return (
        params.prior[grid.prior_slot],
        params.learn[grid.res_slot],
        params.forget[grid.res_slot],
        params.guess[grid.gs_slot],
        params.slip[grid.gs_slot],
    )


def e_step(
    params: BKTParams,
    grid: Grid,
    prior_kc: Int[Array, " P"],
    n_kc: int,
    forgets: bool = True,
    row_const: tuple[bool, bool] = (False, False),
) -> tuple[Counts, Float[Array, "K R"]]:
    """Expected counts per slot and log-likelihood per KC and restart.

    Args:
        params: current parameters (restart axis R).
        grid: packed data.
        prior_kc: KC of each prior slot (a subsequence has one prior slot,
            so the log-likelihood is summed per prior slot, then per KC).
        n_kc: number of KCs.
        forgets: compute forget counts (skipped when forget is fixed at 0).
        row_const: whether resource / guess-slip slots are constant along
            each packed row (true unless they are per item); such statistics
            are summed over time before the scatter. Prior slots always are.

    Returns:
        Soft counts per slot, and the log-likelihood per KC and restart.
    """
    prior_t, learn_t, forget_t, guess_t, slip_t = step_params(params, grid)
    l1, l0 = emissions(grid.obs, guess_t, slip_t)
    fw = forward(grid.first, prior_t, l1, l0, learn_t, forget_t)
    gamma, gamma0, xi01, xi10 = backward(grid.last, fw.f1, fw.f0, learn_t, forget_t, with_forget=forgets)
    c = fw.c

    dt = c.dtype
    valid = grid.valid[..., None].astype(dt)
    trans = (grid.valid & ~grid.last)[..., None].astype(dt)
    seen = (grid.valid & (grid.obs >= 0))[..., None].astype(dt)
    is1 = (grid.obs == 1)[..., None].astype(dt)
    first = (grid.first & grid.valid)[..., None].astype(dt)

    def seg(feats, ids, row_ids, n, row_const):
        if row_const:
            # Every step of a row shares the slot: sum over time, then scatter rows.
            x = jnp.stack([f.sum(axis=0) for f in feats], axis=-2)  # [N, F, R]
            out = jax.ops.segment_sum(x, row_ids, num_segments=n)
        else:
            x = jnp.stack(feats, axis=-2)  # [L, N, F, R]
            out = jax.ops.segment_sum(x.reshape(-1, *x.shape[-2:]), ids.reshape(-1), num_segments=n)
        return [out[:, i] for i in range(len(feats))]

    n_p, n_r = params.prior.shape[0], params.learn.shape[0]
    g_seen, g0_seen = gamma * seen, gamma0 * seen
    prior_f = [gamma * first, jnp.broadcast_to(first, gamma.shape), jnp.log(c) * valid]
    res_f = [xi01 * trans, gamma0 * trans] + ([xi10 * trans, gamma * trans] if xi10 is not None else [])  # None: not forgets
    gs_f = [g0_seen * is1, g0_seen, g_seen * (1 - is1), g_seen]
    res_const, gs_const = row_const
    pr = seg(prior_f, grid.prior_slot, grid.row_prior_slot, n_p, True)
    rs = seg(res_f, grid.res_slot, grid.row_res_slot, n_r, res_const)
    gs = seg(gs_f, grid.gs_slot, grid.row_gs_slot, params.guess.shape[0], gs_const)
    zeros_r = jnp.zeros((n_r, gamma.shape[-1]), dt)
    counts = Counts(
        prior_num=pr[0],
        prior_den=pr[1],
        learn_num=rs[0],
        learn_den=rs[1],
        forget_num=rs[2] if forgets else zeros_r,
        forget_den=rs[3] if forgets else zeros_r,
        guess_num=gs[0],
        guess_den=gs[1],
        slip_num=gs[2],
        slip_den=gs[3],
    )
    ll = jax.ops.segment_sum(pr[2], prior_kc, num_segments=n_kc)
    return counts, ll


class SlotTables(Protocol):
    """What :func:`m_step` reads and rebuilds: :class:`BKTParams`, or the lane engine's host tuple."""

    def __init__(self, *, prior: Any, learn: Any, forget: Any, guess: Any, slip: Any) -> None: ...

    @property
    def prior(self) -> Any: ...

    @property
    def learn(self) -> Any: ...

    @property
    def forget(self) -> Any: ...

    @property
    def guess(self) -> Any: ...

    @property
    def slip(self) -> Any: ...


_Tables = TypeVar("_Tables", bound=SlotTables)


def m_step(counts: Counts, old: _Tables, forgets: bool, xp=jnp) -> _Tables:
    """Maximise: ratios of expected counts, clamped to [1e-8, 1 - 1e-8].

    A slot with no counts keeps its prior, gets uniform emissions (0.5) and
    "stay" transitions (learn = forget = 0 before clamping). Without
    ``forgets``, forget stays exactly 0.

    Args:
        counts: expected counts per slot.
        old: current parameters (any tuple type with the BKT fields; the
            result has the same type and dtype).
        forgets: fit the forget rate.
        xp: ``jax.numpy`` (inside the jitted grid engine) or ``numpy`` (the
            lane engine's host M-step, counts in float64).

    Returns:
        The new parameters.
    """
    dt = old.prior.dtype
    # 1 - 1e-8 rounds to 1 in float32; use the dtype's epsilon there.
    lo = max(CLAMP, float(xp.finfo(dt).eps))

    def ratio(num, den, empty):
        ok = den > 0
        return xp.where(ok, num / xp.where(ok, den, 1), empty)

    def clamp(x):
        return xp.clip(x, lo, 1 - lo).astype(dt)

    forget = clamp(ratio(counts.forget_num, counts.forget_den, 0.0)) if forgets else xp.zeros_like(old.forget)
    return type(old)(
        prior=clamp(ratio(counts.prior_num, counts.prior_den, old.prior)),
        learn=clamp(ratio(counts.learn_num, counts.learn_den, 0.0)),
        forget=forget,
        guess=clamp(ratio(counts.guess_num, counts.guess_den, 0.5)),
        slip=clamp(ratio(counts.slip_num, counts.slip_den, 0.5)),
    )


class EMState(NamedTuple):
    """EM progress; carried across phases when the data grid shrinks."""

    params: BKTParams
    loglik: Float[Array | np.ndarray, "K R"]  # JAX in the grid engine, NumPy from the lane engine
    done: Bool[Array | np.ndarray, "K R"]
    iterations: Int[Array | np.ndarray, "K R"]
    it: Int[Array | np.ndarray, ""]


def random_init(rng: np.random.Generator, sizes: tuple[int, int, int], restarts: int, forgets: bool, dtype) -> BKTParams:
    """pyBKT's random initialisation, independently per slot and restart (NumPy).

    prior ~ U(0, 1), learn ~ U(0, 0.4), guess ~ U(0, 0.4), slip ~ U(0, 0.3),
    forget ~ U(0, 1) with ``forgets`` and exactly 0 otherwise. Drawn on the
    host so that fitting compiles nothing for it.
    """
    n_p, n_r, n_g = sizes

    def u(n, hi):
        return rng.uniform(0.0, hi, (n, restarts)).astype(dtype)

    prior, learn, forget_draw, guess, slip = u(n_p, 1.0), u(n_r, 0.4), u(n_r, 1.0), u(n_g, 0.4), u(n_g, 0.3)
    forget = forget_draw if forgets else np.zeros((n_r, restarts), dtype)
    return BKTParams(prior=prior, learn=learn, forget=forget, guess=guess, slip=slip)


def init_state(init: BKTParams, n_kc: int) -> EMState:
    """Fresh EM state for parameters ``init``."""
    R = init.prior.shape[-1]
    return EMState(
        init,
        jnp.full((n_kc, R), -jnp.inf, init.prior.dtype),
        jnp.zeros((n_kc, R), bool),
        jnp.zeros((n_kc, R), jnp.int32),
        jnp.asarray(0, jnp.int32),
    )


def em_phase(
    state: EMState,
    grid: Grid,
    slot_kc: tuple[Int[Array, " P"], Int[Array, " Rs"], Int[Array, " G"]],
    *,
    n_kc: int,
    forgets: bool,
    tol: float,
    max_iter: int,
    row_const: tuple[bool, bool] = (False, False),
    shrink: float = 0.0,
    truncate_ll: bool = False,
) -> EMState:
    """Run EM iterations for all KCs and restarts in one ``lax.while_loop``.

    A KC stops (its slots are frozen) when |logL_i - logL_{i-1}| < tol at
    iteration i >= 2, as in pyBKT. The loop ends when every KC and restart
    has stopped, after ``max_iter`` E-steps in total, or (with ``shrink`` >
    0) once the KCs still iterating hold less than ``shrink`` of the grid's
    steps, so the caller can continue on a smaller grid. KCs are
    independent, so continuing on a grid of the active KCs is exact.

    Args:
        state: EM state (fresh from :func:`init_state` or a previous phase).
        grid: packed data; must contain every KC that is not done.
        slot_kc: KC of every prior, resource and guess/slip slot.
        n_kc: number of KCs.
        forgets: whether forget is a free parameter.
        tol: log-likelihood tolerance per KC.
        max_iter: maximum number of E-steps overall.
        row_const: see :func:`e_step`.
        shrink: stop early when the active share of steps drops below this.
        truncate_ll: compare log-likelihoods truncated toward zero, as
            pyBKT's C++ E-step returns them (``stop_rule="pybkt_cpp"``).

    Returns:
        The updated state.
    """
    prior_kc, res_kc, gs_kc = slot_kc
    kc_steps = jax.ops.segment_sum(grid.valid.astype(jnp.float32).reshape(-1), grid.kc.reshape(-1), num_segments=n_kc)
    total = kc_steps.sum()

    def freeze(done, new, old):
        def pick(kc_of, n, o):
            return jnp.where(done[kc_of], o, n)

        return BKTParams(
            prior=pick(prior_kc, new.prior, old.prior),
            learn=pick(res_kc, new.learn, old.learn),
            forget=pick(res_kc, new.forget, old.forget),
            guess=pick(gs_kc, new.guess, old.guess),
            slip=pick(gs_kc, new.slip, old.slip),
        )

    def cond(st: EMState):
        active = (kc_steps * ~jnp.all(st.done, axis=1)).sum()
        return (st.it < max_iter) & ~jnp.all(st.done) & (active >= shrink * total)

    def body(st: EMState):
        counts, ll = e_step(st.params, grid, prior_kc, n_kc, forgets, row_const)
        if truncate_ll:
            ll = jnp.trunc(ll)
        stop = (st.it > 1) & (jnp.abs(ll - st.loglik) < tol)  # strict, as pyBKT's EM_fit
        ll = jnp.where(st.done, st.loglik, ll)
        done = st.done | stop
        iters = jnp.where(st.done, st.iterations, st.it + 1)
        params = freeze(done, m_step(counts, st.params, forgets), st.params)
        return EMState(params, ll, done, iters, st.it + 1)

    return jax.lax.while_loop(cond, body, state)


def fit_em(init: BKTParams, grid: Grid, slot_kc, *, n_kc: int, **options) -> EMState:
    """EM for all KCs and restarts on one grid: :func:`em_phase` from the starting parameters.

    Args:
        init: starting parameters.
        grid, slot_kc, n_kc, **options: as for :func:`em_phase` (``forgets``,
            ``tol`` and ``max_iter`` are required).

    Returns:
        The final state: parameters, last log-likelihood, iteration count and
        convergence flag (``done``) per KC and restart.
    """
    return em_phase(init_state(init, n_kc), grid, slot_kc, n_kc=n_kc, **options)


fit_em_jit = eqx.filter_jit(fit_em)
em_phase_jit = eqx.filter_jit(em_phase)


def best_restart(params: BKTParams, loglik: Array | np.ndarray, slot_kc) -> tuple[BKTParams, np.ndarray]:
    """Per KC, the restart with the highest log-likelihood (NumPy; R axis kept, size 1)."""
    best = np.argmax(np.asarray(loglik), axis=1)
    prior_kc, res_kc, gs_kc = (np.asarray(s) for s in slot_kc)

    def take(x, kc_of):
        return np.take_along_axis(np.asarray(x), best[kc_of][:, None], axis=1)

    p = params
    return (
        BKTParams(
            prior=take(p.prior, prior_kc),
            learn=take(p.learn, res_kc),
            forget=take(p.forget, res_kc),
            guess=take(p.guess, gs_kc),
            slip=take(p.slip, gs_kc),
        ),
        best,
    )


def filter_grid(params: BKTParams, prior_out: Float[Array, " P"], grid: Grid) -> tuple[Array, Array, Array, Array]:
    """Forward filter for prediction (restart axis of size 1).

    Args:
        params: fitted parameters (R = 1).
        prior_out: prior used to *predict* a first step (the class prior for
            standard BKT; the pooled prior for leak-free multiprior).
        grid: packed data.

    Returns:
        (P(correct) before each step, P(known) before, P(known) after the
        step's observation, P(known) at the next opportunity), each ``[L, N]``.
    """
    prior_t, learn_t, forget_t, guess_t, slip_t = step_params(params, grid)
    l1, l0 = emissions(grid.obs, guess_t, slip_t)
    fw = forward(grid.first, prior_t, l1, l0, learn_t, forget_t)
    first = grid.first[..., None]
    pout = prior_out[grid.prior_slot][..., None]
    p1 = jnp.where(first, pout, fw.p1)
    p0 = jnp.where(first, 1 - pout, fw.p0)
    p_correct = p1 * (1 - slip_t) + p0 * guess_t
    return p_correct[..., 0], p1[..., 0], fw.f1[..., 0], fw.n1[..., 0]


filter_grid_jit = jax.jit(filter_grid)

"""BKT lane engine: a forward-only EM for row-constant slots (standard BKT, ``forgets``, ``multiprior``).

A lane is one packed row (subsequences of one prior slot, end to end)
under one restart. The E-step carries expected counts forward with the
filter (:func:`lane_chunk`, no backward pass); one small fixed-shape kernel
advances ``BLOCK`` lanes by ``CHUNK`` steps; the host runs the M-step and
drops converged KC x restart pairs from the layout. The compiled program
does not depend on the data's shape, so it compiles once per process (in
the background while the data are laid out). The grid engine and the shared
parameter types are in :mod:`kt.models.bkt.em`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from kt.models.bkt.em import BKTParams, Counts, EMState, m_step

CHUNK = 64
BLOCK = 2048
# Row capacities tried at each layout, in chunks (a row plus its closing step fills them).
ROW_CHUNKS = (1, 2, 3, 4, 5, 6, 8)


def n_stats(forgets: bool, missing: bool) -> int:
    """Smoothed statistics per lane: P, L, G, H (+ F) (+ Z)."""
    return 4 + int(forgets) + int(missing)


def lane_chunk(carry: tuple, code: Array, lp: tuple, *, forgets: bool, missing: bool) -> tuple:
    """Advance a block of lanes by ``code.shape[0]`` steps: forward-only E-step.

    Forward smoothing of additive functionals. Besides the filter a(j) =
    P(L_t = j | o_1..t), each statistic S_k keeps U_k(j) = E[S_k 1{L_t = j}
    | o_1..t], updated at a step of the same subsequence as

        U_k'(j) = b_j(o) / c * sum_i A[j, i] (U_k(i) + a(i) h_k(i, j)) + e_k(j)

    (h_k: the statistic's transition term, e_k: its emission term), and at a
    subsequence's first step, which is independent of everything before it,
    as U_k'(j) = a'(j) (U_k(1) + U_k(0)) + e_k(j). So U_k(1) + U_k(0) after a
    lane's last step is the lane's expected S_k, with no backward pass and
    nothing stored per step. Statistics, summed over the lane:
    P = sum gamma_first(1), L = sum xi(0->1), G = sum gamma(0) over all steps,
    H = sum gamma(0) over right answers, F = sum xi(1->0) (``forgets``),
    Z = sum gamma(0) over wrong answers (``missing``); plus A = sum of
    gamma_last(0) (accumulated at ``CLOSE`` steps) and the log-likelihood,
    kept as a product m * 2^e of the step likelihoods c_t (m in [1, 2), e
    counted in float) so that no logarithm is taken per step: logL = e log 2
    + log m.

    Args:
        carry: ``(a1, a0, U_1(1).., U_1(0).., A, m, e)``, each ``[B]``;
            before a lane's first chunk all zeros but m = 1 (see
            :meth:`LaneKernel.initial`).
        code: ``[CHUNK, B]`` step codes (see ``kt.models.bkt.layout.FIRST``).
        lp: per-lane ``(prior, 1 - prior, learn, 1 - learn, forget,
            1 - forget, 1 - slip, slip, guess, 1 - guess)``, each ``[B]``.
        forgets: forget is free (otherwise 0, and its terms are dropped).
        missing: some responses are missing (adds Z).

    Returns:
        The carry after the chunk.
    """
    from kt.models.bkt.layout import CLOSE, FIRST, MISSING, PAD

    n = n_stats(forgets, missing)
    dt = carry[0].dtype
    tiny = jnp.finfo(dt).tiny
    prior, nprior, learn, nlearn, forget, nforget, s1, s0, g1, g0 = lp

    bits_t = jnp.int64 if dt == jnp.float64 else jnp.int32
    mbits, ebias = (52, 1023) if dt == jnp.float64 else (23, 127)
    mant_mask, one_bits = (1 << mbits) - 1, ebias << mbits

    def step(c, cd):
        a1, a0, U1, U0, totA, lm, le = c
        first = (cd & FIRST) != 0
        close = ((cd & CLOSE) != 0).astype(dt)
        o = cd & 3
        right, wrong, pad = o == 1, o == 0, o == PAD
        e1 = jnp.where(right, s1, jnp.where(wrong, s0, 1))
        e0 = jnp.where(right, g1, jnp.where(wrong, g0, 1))
        # A padding step restarts from "known" with no response: exactly the identity on the totals.
        pri, npri = jnp.where(pad, 1, prior), jnp.where(pad, 0, nprior)
        if forgets:
            p1 = jnp.where(first, pri, a1 * nforget + a0 * learn)
            p0 = jnp.where(first, npri, a0 * nlearn + a1 * forget)
        else:
            p1 = jnp.where(first, pri, a1 + a0 * learn)
            p0 = jnp.where(first, npri, a0 * nlearn)
        j1, j0 = p1 * e1, p0 * e0
        cs = jnp.maximum(j1 + j0, tiny)
        r = 1 / cs
        f1, f0 = j1 * r, j0 * r
        k1, k0 = e1 * r, e0 * r
        m10, m00 = k1 * learn, k0 * nlearn
        m11 = k1 * nforget if forgets else k1
        m01 = k0 * forget if forgets else None
        totA = totA + close * a0
        # Transition (xi) and emission (gamma) terms of each statistic, per state.
        x1 = [jnp.where(first & ~pad, f1, 0), jnp.where(first, 0, m10 * a0), None, None]
        x0 = [None, None, f0, jnp.where(right, f0, 0)]
        if forgets:
            x1.append(None)
            x0.append(jnp.where(first, 0, m01 * a1))
        if missing:
            x1.append(None)
            x0.append(jnp.where(wrong, f0, 0))
        nU1, nU0 = [], []
        for u1, u0, t1, t0 in zip(U1, U0, x1, x0):
            s = u1 + u0
            v1 = jnp.where(first, f1 * s, m11 * u1 + m10 * u0)
            v0 = jnp.where(first, f0 * s, m01 * u1 + m00 * u0 if forgets else m00 * u0)
            nU1.append(v1 if t1 is None else v1 + t1)
            nU0.append(v0 if t0 is None else v0 + t0)
        # Likelihood product, renormalised to a mantissa in [1, 2) and an exponent (bit operations).
        bits = jax.lax.bitcast_convert_type(lm * jnp.where(o >= MISSING, 1, cs), bits_t)
        le = le + ((bits >> mbits) - ebias).astype(dt)
        lm = jax.lax.bitcast_convert_type((bits & mant_mask) | one_bits, dt)
        return (f1, f0, tuple(nU1), tuple(nU0), totA, lm, le), None

    a1, a0 = carry[0], carry[1]
    U1, U0 = tuple(carry[2 : 2 + n]), tuple(carry[2 + n : 2 + 2 * n])
    totA, lm, le = carry[2 + 2 * n], carry[3 + 2 * n], carry[4 + 2 * n]
    (a1, a0, U1, U0, totA, lm, le), _ = jax.lax.scan(step, (a1, a0, U1, U0, totA, lm, le), code)
    return (a1, a0, *U1, *U0, totA, lm, le)


class LaneKernel:
    """``lane_chunk`` compiled for one dtype and flag set, optionally in a background thread.

    XLA releases the GIL while it compiles, so the host can prepare the data
    meanwhile; the persistent compilation cache, when enabled, applies.
    """

    def __init__(self, dtype, forgets: bool, missing: bool, *, block: int = BLOCK, chunk: int = CHUNK, background: bool = True):
        self.dtype = np.dtype(dtype)
        self.forgets, self.missing, self.block, self.chunk = forgets, missing, block, chunk
        self.n_carry = 5 + 2 * n_stats(forgets, missing)
        self._compiled: jax.stages.Compiled | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._compile, name="kt-bkt-compile", daemon=True)
            self._thread.start()

    def _compile(self) -> None:
        try:
            x64 = self.dtype == np.float64
            with jax.enable_x64(x64) if x64 else contextlib.nullcontext():
                vec = jax.ShapeDtypeStruct((self.block,), self.dtype)
                fn = jax.jit(
                    functools.partial(lane_chunk, forgets=self.forgets, missing=self.missing),
                    compiler_options={
                        # Region-based copy insertion drops most per-step copies of the carried statistics.
                        "xla_cpu_copy_insertion_use_region_analysis": True,
                        # Compiles ~15% faster; no measurable change in the kernel's speed.
                        "xla_llvm_disable_expensive_passes": True,
                    },
                )
                self._compiled = fn.lower(
                    (vec,) * self.n_carry, jax.ShapeDtypeStruct((self.chunk, self.block), jnp.int8), (vec,) * 10
                ).compile()
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def initial(self):
        """The carry before a lane's first chunk (host arrays)."""
        zero = np.zeros(self.block, self.dtype)
        return (zero,) * (self.n_carry - 2) + (np.ones(self.block, self.dtype), zero)

    def __call__(self, carry, code, lp):
        if self._compiled is None:
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            if self._error is not None:
                raise self._error
            if self._compiled is None:
                self._compile()
                if self._error is not None:
                    raise self._error
        assert self._compiled is not None  # set by _compile, which otherwise recorded the error raised above
        return self._compiled(carry, code, lp)


_KERNELS: dict = {}


def lane_kernel(dtype, forgets: bool, missing: bool) -> LaneKernel:
    """The process-wide kernel for these settings (compilation starts in the background)."""
    key = (np.dtype(dtype).str, bool(forgets), bool(missing))
    if key not in _KERNELS:
        _KERNELS[key] = LaneKernel(dtype, forgets, missing)
    return _KERNELS[key]


class _HostParams(NamedTuple):
    """The fit's parameters on the host (a plain tuple: cheaper to rebuild every iteration than a module)."""

    prior: np.ndarray
    learn: np.ndarray
    forget: np.ndarray
    guess: np.ndarray
    slip: np.ndarray


class _Block(NamedTuple):
    kc: np.ndarray  # KC of each real lane
    r: np.ndarray  # restart of each real lane
    idx: tuple  # flat (slot * R + restart) index of each lane into the prior, resource, guess/slip and KC tables
    chunks: list  # device step codes, one [CHUNK, BLOCK] array per chunk


def fit_lanes(
    init: BKTParams,
    data,
    slot_kc: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    n_kc: int,
    forgets: bool,
    tol: float,
    max_iter: int,
    truncate_ll: bool = False,
    kernel: LaneKernel | None = None,
    relayout: float = 0.9,
    on_iter: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[EMState, dict]:
    """EM for all KCs and restarts with the lane engine (row-constant slots).

    The host runs the EM loop: M-step, stopping rule and freezing exactly as
    :func:`em_phase` (a KC x restart stops when |logL_i - logL_{i-1}| < tol
    at iteration i >= 2), in NumPy; the device runs the E-step through
    ``kernel`` on blocks of lanes. Lanes are the (packed row, restart) pairs
    whose KC and restart are still iterating, longest first; the layout (row
    capacity included) is redone when that cuts the E-step's kernel calls to
    ``relayout`` of the current ones or fewer, so converged KC x restart
    pairs stop costing anything.

    Args:
        init: starting parameters (NumPy, restart axis R; their dtype is the
            compute dtype).
        data: :class:`kt.models.bkt.layout.LaneData`.
        slot_kc: KC of every prior, resource and guess/slip slot.
        n_kc: number of KCs.
        forgets: whether forget is a free parameter.
        tol: log-likelihood tolerance per KC.
        max_iter: maximum number of E-steps.
        truncate_ll: compare truncated log-likelihoods (``pybkt_cpp``).
        kernel: the compiled kernel (default: :func:`lane_kernel`).
        relayout: redo the layout when it cuts the calls to this share.
        on_iter: progress hook called after each iteration with the
            iterations run and the ``[n_kc, R]`` converged flags (host arrays).

    Returns:
        The final state (NumPy; log-likelihoods in float64) and counters:
        ``lane_steps`` (computed, padding included), ``kernel_calls``,
        ``layouts``.
    """
    dt = np.asarray(init.prior).dtype
    kernel = kernel or lane_kernel(dt, forgets, data.missing)
    B, C = kernel.block, kernel.chunk
    R = init.prior.shape[1]
    n = n_stats(forgets, data.missing)
    prior_kc, res_kc, gs_kc = (np.asarray(s) for s in slot_kc)
    n_p, n_r, n_g = len(prior_kc), len(res_kc), len(gs_kc)
    group_steps = np.bincount(data.seq_group, weights=data.seq_len, minlength=n_p)
    group_long = np.zeros(n_p, np.int64)
    np.maximum.at(group_long, data.seq_group, data.seq_len)

    def plan(active):
        """Best row capacity for the active KC x restart pairs, and its kernel calls (estimate)."""
        pairs = active[data.group_kc]  # [groups, R]
        best = None
        for cap in (k * C - 1 for k in ROW_CHUNKS):
            rows = np.ceil(group_steps / cap)
            lanes = int((rows[:, None] * pairs).sum())
            longest = int(group_long[pairs.any(1)].max(initial=0))
            calls = -(-lanes // B) * -(-(cap + 1) // C) + max(0, -(-(longest + 1) // C) - -(-(cap + 1) // C))
            if best is None or calls < best[1]:
                best = (cap, calls)
        return best

    def layout(active, cap):
        from kt.models.bkt.layout import PAD_CODE

        pairs = active[data.group_kc]
        rows = data.rows(cap, C)
        lane_row, lane_r = np.nonzero(pairs[rows.group])
        order = np.argsort(-rows.length[lane_row], kind="stable")
        lane_row, lane_r = lane_row[order], lane_r[order]
        blocks = []
        for s in range(0, len(lane_row), B):
            row, r = lane_row[s : s + B], lane_r[s : s + B]
            k = len(row)
            n_ch = -(-int(rows.length[row[0]]) // C)
            cols = np.full((n_ch * C, B), PAD_CODE, np.int8)
            cols[:, :k] = rows.code[: n_ch * C, row]
            g = rows.group[row]
            real = [g * R + r, data.group_res[g] * R + r, data.group_gs[g] * R + r, data.group_kc[g] * R + r]
            # Padding lanes read slot 0 (their step codes are all padding) and are not summed.
            idx = tuple(np.r_[x, np.zeros(B - k, x.dtype)] for x in real[:3]) + tuple(real)
            chunks = jax.device_put([cols[i * C : (i + 1) * C] for i in range(n_ch)])
            blocks.append(_Block(data.group_kc[g], r, idx, chunks))
        return rows, blocks

    p = _HostParams(*(np.array(x, dt) for x in (init.prior, init.learn, init.forget, init.guess, init.slip)))
    loglik = np.full((n_kc, R), -np.inf)
    done = np.zeros((n_kc, R), bool)
    iterations = np.zeros((n_kc, R), np.int32)
    it = 0
    blocks: list[_Block] = []
    calls_now, planned_for = 0, -1
    counters = {"lane_steps": 0, "kernel_calls": 0, "layouts": 0}
    zeros = tuple(jax.device_put(list(kernel.initial())))
    sizes = {"p": n_p * R, "r": n_r * R, "g": n_g * R, "k": n_kc * R}
    targets = {
        "prior_num": "p",
        "learn_num": "r",
        "learn_den": "r",
        "forget_num": "r",
        "guess_num": "g",
        "gamma0_seen": "g",
        "loglik": "k",
    }
    while it < max_iter and not done.all():
        active = ~done
        if blocks:
            blocks = [b for b in blocks if active[b.kc, b.r].any()]
            calls_now = sum(len(b.chunks) for b in blocks)
        n_done = int(done.sum())
        if n_done != planned_for:
            (cap, calls_new), planned_for = plan(active), n_done
        if not blocks or calls_new <= relayout * calls_now:
            _, blocks = layout(active, cap)
            counters["layouts"] += 1
        flat = [x.reshape(-1) for x in (p.prior, p.learn, p.forget, p.guess, p.slip)]
        outs = []
        for b in blocks:
            ip, ir, ig = b.idx[:3]
            pri, lea, fo, gu, sl = flat[0][ip], flat[1][ir], flat[2][ir], flat[3][ig], flat[4][ig]
            # NumPy arguments: the compiled call transfers them faster than jax.device_put.
            lp = (pri, 1 - pri, lea, 1 - lea, fo, 1 - fo, 1 - sl, sl, gu, 1 - gu)
            carry = zeros
            for ch in b.chunks:
                carry = kernel(carry, ch, lp)
            outs.append(carry)
            counters["kernel_calls"] += len(b.chunks)
            counters["lane_steps"] += len(b.chunks) * C * B
        # Expected counts per slot x restart, summed over lanes (float64).
        tot = {name: np.zeros(sizes[key]) for name, key in targets.items()}
        for b, carry in zip(blocks, outs):
            host = [np.asarray(x)[: len(b.r)] for x in carry]
            P, L, G, H, *rest = (host[2 + k] + host[2 + n + k] for k in range(n))
            A, m, e = host[2 + 2 * n : 5 + 2 * n]
            per_lane = {
                "prior_num": P,
                "learn_num": L,
                "learn_den": G - A,
                "guess_num": H,
                "gamma0_seen": G,
                "loglik": np.log(m.astype(np.float64)) + e.astype(np.float64) * np.log(2.0),
            }
            if forgets:
                per_lane["forget_num"] = rest[0]
            if data.missing:
                per_lane["gamma0_seen"] = H + rest[-1]  # right + wrong answers
            for name, x in per_lane.items():
                ids = b.idx[3 + "prgk".index(targets[name])]
                tot[name] += np.bincount(ids, weights=x, minlength=sizes[targets[name]])
        t = {name: x.reshape(-1, R) for name, x in tot.items()}
        learn_den, guess_den = t["learn_den"], t["gamma0_seen"]
        counts = Counts(
            prior_num=t["prior_num"],
            prior_den=np.repeat(data.n_first[:, None], R, 1),
            learn_num=t["learn_num"],
            learn_den=learn_den,
            forget_num=t["forget_num"] if forgets else np.zeros_like(learn_den),
            forget_den=data.n_trans[:, None] - learn_den if forgets else np.zeros_like(learn_den),
            guess_num=t["guess_num"],
            guess_den=guess_den,
            slip_num=data.n_wrong[:, None] - (guess_den - t["guess_num"]),  # wrong answers minus their gamma(0)
            slip_den=data.n_seen[:, None] - guess_den,
        )
        ll = t["loglik"]
        if truncate_ll:
            ll = np.trunc(ll)
        stop = (it > 1) & (np.abs(ll - loglik) < tol)
        ll = np.where(done, loglik, ll)
        new_done = done | stop
        iterations = np.where(done, iterations, it + 1).astype(np.int32)
        new = m_step(counts, p, forgets, xp=np)
        p = _HostParams(
            *(
                np.where(new_done[kc_of], old, nw)
                for kc_of, old, nw in (
                    (prior_kc, p.prior, new.prior),
                    (res_kc, p.learn, new.learn),
                    (res_kc, p.forget, new.forget),
                    (gs_kc, p.guess, new.guess),
                    (gs_kc, p.slip, new.slip),
                )
            )
        )
        loglik, done, it = ll, new_done, it + 1
        if on_iter is not None:
            on_iter(it, done)  # progress: iterations run, [K, R] converged flags (host arrays)
    return EMState(BKTParams(*p), loglik, done, iterations, np.asarray(it, np.int32)), counters

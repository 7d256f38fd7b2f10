"""Bayesian Knowledge Tracing with pyBKT's EM and variants, vectorised in JAX.

Model and fitting follow ``shared/spec/BKT.md`` (Corbett & Anderson 1995;
pyBKT, Badrinath et al. 2021): per-KC two-state HMMs fitted by EM with
random restarts, plus the ``forgets``, ``multigs`` (KT-IDEM), ``multilearn``,
``multiprior`` and ``multipair`` variants.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
from jaxtyping import Array, Float

from kt.data.schema import Interactions
from kt.errors import KTError, check_choice
from kt.models.bkt import em
from kt.models.bkt import lanes as bkt_lanes
from kt.models.base import Capabilities, Model, register
from kt.models.fusion import question_means
from kt.models.seeds import numpy_rng
from kt.models.bkt.layout import DEFAULT_CLASS, LaneData, Slots, build_packed, lookup, slots_of, subsequence_order

MULTIPRIOR_MODES = ("leak_free", "pybkt")
STOP_RULES = ("exact", "pybkt_cpp")
# Grid engine (per-item slots): EM continues on a re-packed grid of the
# still-iterating KCs once they hold less than SHRINK of the steps (at most
# MAX_PHASES grids; exact, see em_phase).
SHRINK = 0.25
MAX_PHASES = 3


@dataclass(frozen=True)
class BKTConfig:
    """Options of ``bkt``.

    Attributes:
        num_fits: random restarts per KC; the best log-likelihood is kept.
        tol: EM stops for a KC when its log-likelihood changes by <= tol.
        max_iter: maximum EM iterations.
        forgets: learn a forget probability (otherwise it is exactly 0).
        multigs: guess/slip per item (KT-IDEM).
        multilearn: learn (and forget) per item; the transition out of a
            step uses that step's item.
        multiprior: prior per first-response class.
        multiprior_mode: ``leak_free`` predicts the first attempt with the
            pooled prior; ``pybkt`` reproduces pyBKT (leaky; such rows are
            flagged and not scored by default).
        multipair: learn per (previous item, current item) pair.
        x64: fit and predict in float64.
        stop_rule: ``exact`` compares log-likelihoods as floats (the spec);
            ``pybkt_cpp`` truncates them toward zero first, as pyBKT's C++
            core does, which stops EM (and picks restarts) on integer
            log-likelihoods: fewer iterations, less converged parameters.
    """

    num_fits: int = 5
    tol: float = 1e-3
    max_iter: int = 100
    forgets: bool = False
    multigs: bool = False
    multilearn: bool = False
    multiprior: bool = False
    multiprior_mode: str = "leak_free"
    multipair: bool = False
    x64: bool = False
    stop_rule: str = "exact"

    def validate(self) -> None:
        """Reject impossible combinations (pyBKT's rule) and bad values."""
        exclusive = [n for n in ("multilearn", "multiprior", "multipair") if getattr(self, n)]
        if len(exclusive) > 1:
            raise KTError(
                f"bkt: {' and '.join(exclusive)} cannot be combined; use at most one of multilearn, "
                "multiprior, multipair (each combines with multigs and forgets)"
            )
        check_choice("--set multiprior_mode=", self.multiprior_mode, MULTIPRIOR_MODES)
        check_choice("--set stop_rule=", self.stop_rule, STOP_RULES)
        if self.num_fits < 1 or self.max_iter < 1 or self.tol < 0:
            raise KTError("bkt: num_fits and max_iter must be >= 1 and tol >= 0")


class BKTFitted(eqx.Module):
    """Saved parameters: best restart per KC, plus the prior used to predict first steps."""

    params: em.BKTParams
    prior_out: Float[Array | np.ndarray, " P"]  # NumPy or JAX, as BKTParams


def _x64(flag: bool):
    return jax.enable_x64(True) if flag else contextlib.nullcontext()


@register
class BKT(Model):
    """Per-KC Bayesian Knowledge Tracing fitted by EM (pyBKT-compatible)."""

    name = "bkt"
    Config = BKTConfig
    summary = "Bayesian Knowledge Tracing, EM with restarts; pyBKT variants"
    capabilities = Capabilities(on_step=True, params_table=True)

    # -- class keys -----------------------------------------------------
    def _class_keys(self, kc, user, item, obs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prior, resource and guess/slip class of each row (subsequence order)."""
        cfg = self.config
        n = len(kc)
        start = np.ones(n, dtype=bool)
        start[1:] = (kc[1:] != kc[:-1]) | (user[1:] != user[:-1])
        zeros = np.zeros(n, np.int64)
        gs = item.astype(np.int64) if cfg.multigs else zeros
        if cfg.multilearn:
            res = item.astype(np.int64)
        elif cfg.multipair:
            prev = np.r_[-1, item[:-1]].astype(np.int64)
            res = np.where(start, DEFAULT_CLASS, prev * (len(self._fitted_vocab.item_id) + 1) + item)
        else:
            res = zeros
        if cfg.multiprior:
            seq = np.cumsum(start) - 1
            prior = obs[np.flatnonzero(start)][seq].astype(np.int64)
        else:
            prior = zeros
        return prior, res, gs

    def _rows(self, data: Interactions):
        ex = data.explode()
        kc = ex["skill_idx"].to_numpy().astype(np.int64)
        user = ex["user_idx"].to_numpy().astype(np.int64)
        order = subsequence_order(kc, user)
        item = ex["item_idx"].to_numpy().astype(np.int64)[order]
        obs = ex["correct"].to_numpy().astype(np.int8)[order]
        return ex, order, kc[order], user[order], item, obs

    # -- fit --------------------------------------------------------------
    def fit(self, data: Interactions, *, valid=None, key=None, progress=None, init=None, on_step=None) -> "BKT":
        """Fit all KCs by EM with ``num_fits`` restarts.

        Args:
            data: training interactions.
            valid: unused (EM needs no early stopping).
            key: JAX PRNG key or integer seed (default 0).
            progress: unused.
            init: optional starting values ``{kc name: {"prior", "learn",
                "guess", "slip"[, "forget"]}}`` (standard BKT only); every
                restart of a listed KC starts there, e.g. to compare EM with
                pyBKT from identical initial values.
            on_step: progress hook ``(done, total, metrics)``: KCs whose
                restarts have all converged (``done``) of ``total`` KCs,
                after each EM iteration (each grid phase for the per-item
                variants), with ``metrics["iteration"]``; called on the host
                between iterations, from values already there.

        Returns:
            ``self``.
        """
        # Automatic garbage collections would rescan every live object (JAX's included) a few times
        # during the fit, for no garbage: the fit makes no reference cycles worth collecting early.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._fit(data, key=key, init=init, on_step=on_step)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _fit(self, data: Interactions, *, key, init, on_step=None) -> "BKT":
        cfg = self.config
        self.vocab = data.vocab
        K = len(self.vocab.skill_id)
        _, _, kc, user, item, obs = self._rows(data)
        if (kc < 0).any():
            raise KTError("bkt: training data has KCs outside the vocabulary")
        if self._needs_item() and (item < 0).any():
            raise KTError("bkt: multigs/multilearn/multipair need an item for every row (map one with --map item_id=COLUMN)")
        row_const = (not (cfg.multilearn or cfg.multipair), not cfg.multigs)
        dt = np.float64 if cfg.x64 else np.float32
        # Start compiling the E-step kernel now: XLA compiles in the background while the data are laid out.
        kernel = bkt_lanes.lane_kernel(dt, cfg.forgets, bool((obs < 0).any())) if all(row_const) else None
        prior_c, res_c, gs_c = self._class_keys(kc, user, item, obs)
        (prior_t, p_slot), (res_t, r_slot), (gs_t, g_slot) = (slots_of(kc, c) for c in (prior_c, res_c, gs_c))
        slots = Slots(prior=prior_t, res=res_t, gs=gs_t)

        rng = numpy_rng(key)
        slot_kc = (slots.kc_of("prior"), slots.kc_of("res"), slots.kc_of("gs"))
        sizes = (slots.prior.height, slots.res.height, slots.gs.height)
        start = em.random_init(rng, sizes, cfg.num_fits, cfg.forgets, dt)
        if init is not None:
            start = self._seed_init(start, init, slots)
        kw = dict(n_kc=K, forgets=cfg.forgets, tol=cfg.tol, max_iter=cfg.max_iter, truncate_ll=cfg.stop_rule == "pybkt_cpp")
        on_iter = None
        if on_step is not None:

            def on_iter(it: int, done: np.ndarray) -> None:
                on_step(int(done.all(axis=1).sum()), K, {"what": "EM: KCs converged", "iteration": it})

        if kernel is not None:
            lanes = LaneData.build(kc, user, obs, p_slot, r_slot, g_slot, sizes)
            with _x64(cfg.x64):
                state, engine = bkt_lanes.fit_lanes(start, lanes, slot_kc, kernel=kernel, on_iter=on_iter, **kw)
            engine = {"engine": "lanes", **engine}
            n_first = lanes.n_first
        else:
            packed, _ = build_packed(kc, user, obs, p_slot, r_slot, g_slot)
            with _x64(cfg.x64):
                state, engine = self._fit_grid(
                    start, packed, (kc, user, obs, p_slot, r_slot, g_slot), slot_kc, row_const, kw, on_iter=on_iter
                )
            n_first = np.bincount(packed.prior_slot[packed.first & packed.valid], minlength=sizes[0])
        best_params, best = em.best_restart(state.params, state.loglik, slot_kc)
        prior_out = self._prior_out(best_params.prior[:, 0], slots, n_first)
        self.params = BKTFitted(best_params, np.asarray(prior_out, dt))
        kc_rows = np.arange(K)
        self.meta = {
            "slots": slots.to_dict(),
            "fit": {
                "loglik": np.asarray(state.loglik, np.float64)[kc_rows, best].tolist(),
                "iterations": np.asarray(state.iterations)[kc_rows, best].tolist(),
                "converged": np.asarray(state.done)[kc_rows, best].tolist(),
                "restart": best.tolist(),
                "max_iterations": int(state.it),
                **engine,
            },
        }
        self._slots = slots
        self._warn_degenerate()
        return self

    def _fit_grid(self, start, packed, flat, slot_kc, row_const, kw, on_iter=None):
        """EM on the time-major grid (per-item slots: multigs, multilearn, multipair).

        EM continues on a re-packed grid of the still-iterating KCs once they
        hold less than ``SHRINK`` of the steps (at most ``MAX_PHASES`` grids).
        """
        kc, user, obs, p_slot, r_slot, g_slot = flat
        slot_kc = tuple(jnp.asarray(s) for s in slot_kc)
        state = em.init_state(jax.tree.map(jnp.asarray, start), kw["n_kc"])
        active = np.ones(kw["n_kc"], bool)
        phases = []
        for phase in range(MAX_PHASES):
            keep = active[kc]
            grid = (
                packed
                if phase == 0
                else build_packed(kc[keep], user[keep], obs[keep], p_slot[keep], r_slot[keep], g_slot[keep])[0]
            )
            g = em.Grid(*(jnp.asarray(getattr(grid, f)) for f in em.Grid._fields))
            shrink = SHRINK if phase < MAX_PHASES - 1 else 0.0
            state = em.em_phase_jit(state, g, slot_kc, shrink=shrink, row_const=row_const, **kw)
            phases.append({"grid": list(grid.obs.shape), "until_iteration": int(state.it)})
            done = np.asarray(state.done)
            active = ~done.all(axis=1)
            if on_iter is not None:
                on_iter(int(state.it), done)
            if not active.any() or int(state.it) >= kw["max_iter"]:
                break
        return jax.tree.map(np.asarray, state), {"engine": "grid", "phases": phases}

    def _seed_init(self, start: em.BKTParams, init: dict, slots: Slots) -> em.BKTParams:
        c = self.config
        if c.multigs or c.multilearn or c.multiprior or c.multipair:
            raise KTError("bkt: init= supports standard BKT only (no multigs/multilearn/multiprior/multipair)")
        index = {name: i for i, name in enumerate(self._fitted_vocab.skill_id)}
        unknown = sorted(set(init) - set(index))
        if unknown:
            raise KTError(f"bkt: init= names KCs not in the training data: {', '.join(map(str, unknown[:5]))}")
        cols = {}
        for kind, names in (("prior", ("prior",)), ("res", ("learn", "forget")), ("gs", ("guess", "slip"))):
            slot_of_kc = np.full(len(index), -1)
            kc_of = slots.kc_of(kind)
            slot_of_kc[kc_of] = np.arange(len(kc_of))
            for name in names:
                arr = np.array(getattr(start, name))
                for kc, values in init.items():
                    if name in values and (name != "forget" or c.forgets):
                        arr[slot_of_kc[index[kc]], :] = values[name]
                cols[name] = arr
        return em.BKTParams(**cols)

    def _prior_out(self, prior, slots: Slots, n_first) -> np.ndarray:
        if not (self.config.multiprior and self.config.multiprior_mode == "leak_free"):
            return prior
        # Pooled prior sum_c w_c pi_c, w_c = share of the KC's training learners in class c.
        counts = np.asarray(n_first, np.float64)
        kc_of = slots.kc_of("prior")
        tot = np.bincount(kc_of, weights=counts, minlength=len(self._fitted_vocab.skill_id))
        pooled = np.bincount(kc_of, weights=counts * np.asarray(prior, np.float64), minlength=len(tot)) / np.maximum(tot, 1)
        return pooled[kc_of].astype(prior.dtype)

    def _warn_degenerate(self) -> None:
        p = self.params.params
        bad = np.asarray(p.guess[:, 0]) >= 1 - np.asarray(p.slip[:, 0])
        self.meta["degenerate_gs_slots"] = int(bad.sum())
        warnings = []
        if bad.any():
            warnings.append(
                f"{int(bad.sum())} guess/slip classes have guess >= 1 - slip, so a correct answer lowers "
                "P(known) there (see `kt export-params`)"
            )
        stuck = len(self.meta["fit"]["converged"]) - sum(self.meta["fit"]["converged"])
        if stuck:
            warnings.append(f"{stuck} KCs had not converged after max_iter={self.config.max_iter} EM iterations")
        self.meta["warnings"] = warnings

    # -- load support ---------------------------------------------------
    def _skeleton(self) -> BKTFitted:
        s = self.meta["slots"]
        n_p, n_r, n_g = (len(s[k]["skill_idx"]) for k in ("prior", "res", "gs"))
        z = lambda n: np.zeros((n, 1), np.float64 if self.config.x64 else np.float32)  # noqa: E731
        return BKTFitted(em.BKTParams(z(n_p), z(n_r), z(n_r), z(n_g), z(n_g)), z(n_p)[:, 0])

    @property
    def slots(self) -> Slots:
        """Slot tables of the fitted model."""
        if getattr(self, "_slots", None) is None:
            self._slots = Slots.from_dict(self.meta["slots"])
        return self._slots

    # -- prediction -------------------------------------------------------
    def _extended(self) -> tuple[em.BKTParams, np.ndarray]:
        """Parameters with fallback slots appended: per-KC means, then the global mean."""
        K = len(self._fitted_vocab.skill_id)
        p = self.params.params
        out = {}
        for kind, names in (("prior", ("prior",)), ("res", ("learn", "forget")), ("gs", ("guess", "slip"))):
            kc_of = self.slots.kc_of(kind)
            n = np.bincount(kc_of, minlength=K).astype(np.float64)
            for name in names:
                v = np.asarray(getattr(p, name))[:, 0].astype(np.float64)
                glob = float(v.mean()) if len(v) else 0.5
                per_kc = np.where(n > 0, np.bincount(kc_of, weights=v, minlength=K) / np.maximum(n, 1), glob)
                out[name] = np.concatenate([v, per_kc, [glob]])[:, None]
        pv = np.asarray(self.params.prior_out, np.float64)
        kc_of = self.slots.kc_of("prior")
        n_prior = np.bincount(kc_of, minlength=K)
        glob = float(pv.mean()) if len(pv) else 0.5
        per_kc = np.where(n_prior > 0, np.bincount(kc_of, weights=pv, minlength=K) / np.maximum(n_prior, 1), glob)
        prior_out = np.concatenate([pv, per_kc, [glob]])
        dt = np.float64 if self.config.x64 else np.float32
        return em.BKTParams(**{k: v.astype(dt) for k, v in out.items()}), prior_out.astype(dt)

    def _run_filter(self, data: Interactions):
        K = len(self._fitted_vocab.skill_id)
        ex, order, kc, user, item, obs = self._rows(data)
        unknown_kc = kc < 0
        kc_key = np.where(unknown_kc, K, kc).astype(np.int32)
        # Unseen items have index -1; their classes match no fitted slot and fall back.
        prior_c, res_c, gs_c = self._class_keys(kc_key, user, item, obs)
        s = self.slots

        def slot(kind, cls):
            keys = pl.DataFrame({"skill_idx": kc_key, "cls": cls})
            return lookup(keys, getattr(s, kind), getattr(s, kind).height)

        p_slot, p_fb = slot("prior", prior_c)
        r_slot, r_fb = slot("res", res_c)
        g_slot, g_fb = slot("gs", gs_c)
        packed, flat = build_packed(kc_key, user, obs, p_slot, r_slot, g_slot)
        params, prior_out = self._extended()
        with _x64(self.config.x64):
            grid = em.Grid(*(jnp.asarray(getattr(packed, f)) for f in em.Grid._fields))
            outs = em.filter_grid_jit(params, jnp.asarray(prior_out), grid)
        cols = [np.asarray(o).reshape(-1)[flat].astype(np.float64) for o in outs]
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        cols = [c[inv] for c in cols]  # back to exploded-frame order
        fallback = (unknown_kc | ((r_fb | g_fb) & ~unknown_kc))[inv]
        first = np.zeros(len(kc), bool)
        first[0:1] = True
        first[1:] = (kc[1:] != kc[:-1]) | (user[1:] != user[:-1])
        return ex, cols, unknown_kc[inv], fallback, first[inv]

    def _needs_item(self) -> bool:
        c = self.config
        return c.multigs or c.multilearn or c.multipair

    def _predict_probs(self, data: Interactions):
        ex, (p_correct, p_before, _, _), kc_fb, cls_fb, first = self._run_filter(data)
        leaky = first & self.config.multiprior & (self.config.multiprior_mode == "pybkt")
        agg = question_means(ex["attempt"], p=p_correct, k=p_before, kf=kc_fb, cf=cls_fb, lk=leaky)
        extra = {
            "p_known_before": agg["k"].to_numpy(),
            "kc_fallback": (agg["kf"] > 0).to_numpy(),  # a flag of any KC row
            "class_fallback": (agg["cf"] > 0).to_numpy(),
        }
        if self.config.multiprior and self.config.multiprior_mode == "pybkt":
            extra["leaky"] = (agg["lk"] > 0).to_numpy()
        return agg["p"].to_numpy(), extra

    def mastery(self, data: Interactions) -> pl.DataFrame:
        """P(known) per learner x KC after the learner's history.

        Returns:
            ``user_id``, ``skill_id``, ``attempts``, ``p_known`` (after the
            last observation) and ``p_known_next`` (at the next opportunity,
            after the learn/forget transition).
        """
        self._require_fitted()
        ex, (_, _, pf, pn), kc_fb, _, _ = self._run_filter(data)
        f = ex.select("user_id", "skill_id", "user_idx", "skill_idx").with_columns(
            pl.Series("p_known", pf), pl.Series("p_known_next", pn), pl.Series("kc_fallback", kc_fb)
        )
        return (
            f.group_by("user_idx", "skill_idx", maintain_order=True)
            .agg(
                pl.col("user_id").first(),
                pl.col("skill_id").first(),
                pl.len().alias("attempts"),
                pl.col("p_known").last(),
                pl.col("p_known_next").last(),
                pl.col("kc_fallback").first(),
            )
            .drop("user_idx", "skill_idx")
        )

    def params_table(self) -> pl.DataFrame:
        """Fitted parameters as a tidy table.

        Returns:
            ``skill_id``, ``param`` (prior/learn/forget/guess/slip), ``class``
            (``all``, an item id, an item pair or a first-response class) and
            ``value``, followed by per-KC fit diagnostics in ``loglik``,
            ``iterations``, ``converged`` and ``restart``.
        """
        self._require_fitted()
        p = self.params.params
        items = self._fitted_vocab.item_id
        kcs = self._fitted_vocab.skill_id
        fit = self.meta.get("fit", {})
        rows = []

        def cls_name(kind, c):
            if kind == "prior":
                return f"first={c}" if self.config.multiprior else "all"
            if kind == "res" and self.config.multipair:
                if c == DEFAULT_CLASS:
                    return "Default"
                prev, cur = divmod(int(c), len(items) + 1)
                return f"{items[prev]}->{items[cur]}"
            if (kind == "res" and self.config.multilearn) or (kind == "gs" and self.config.multigs):
                return items[int(c)]
            return "all"

        for kind, names in (("prior", ("prior",)), ("res", ("learn", "forget")), ("gs", ("guess", "slip"))):
            t = getattr(self.slots, kind).sort("slot")
            for name in names:
                vals = np.asarray(getattr(p, name))[:, 0]
                for k, c, v in zip(t["skill_idx"].to_list(), t["cls"].to_list(), vals):
                    rows.append((kcs[k], name, cls_name(kind, c), float(v)))
        table = pl.DataFrame(rows, schema=["skill_id", "param", "class", "value"], orient="row")
        if fit:
            diag = pl.DataFrame(
                {
                    "skill_id": kcs,
                    "loglik": fit["loglik"],
                    "iterations": fit["iterations"],
                    "converged": fit["converged"],
                    "restart": fit["restart"],
                }
            )
            table = table.join(diag, on="skill_id", how="left", maintain_order="left")
        return table

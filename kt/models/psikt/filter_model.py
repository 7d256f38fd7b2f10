"""The ``psikt`` model with ``inference=filter``: knowledge states integrated out by a Gaussian filter.

The equations are in :mod:`kt.models.psikt.filter`. This class moves data in
and out: host-side gaps in days, length-bucketed batches, the shared
training loop (:func:`kt.train.loop.fit`: its binary cross-entropy on the
filter's logits is the negative marginal log-likelihood), per-learner
filtered states (mean and covariance of (z, mu)) for prediction, mastery,
traits and continual updates. It shares the options, the vocabulary and
time handling, the graph export and the saved-model format of
:class:`kt.models.psikt.model.PsiKT`.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from kt.data.graph import with_refit_stability
from kt.data.schema import Interactions, correct_rate
from kt.data.splits import resample_learners
from kt.data.sequences import Sequences, build_sequences, length_batches
from kt.models.seeds import seed_of
from kt.models.psikt import core
from kt.models.psikt import filter as pf
from kt.models.psikt import train as tr
from kt.models.baselines import _kc_counts
from kt.models.psikt.model import PsiKT, _fuse, _pow2
from kt.train import loop


class FilterState(eqx.Module):
    """Per-learner filtered states (rows = ``meta['state_users']``), NumPy leaves.

    Attributes:
        m: mean of (z_1..z_K, mu) [N, K + 1].
        P: covariance [N, K + 1, K + 1].
        t_last: model time of the last interaction (days or steps, float64).
        count: interactions seen.
    """

    m: np.ndarray
    P: np.ndarray
    t_last: np.ndarray
    count: np.ndarray

    @staticmethod
    def empty(n: int, K: int) -> "FilterState":
        return FilterState(
            np.zeros((n, K + 1), np.float32),
            np.zeros((n, K + 1, K + 1), np.float32),
            np.zeros(n, np.float64),
            np.zeros(n, np.float64),
        )


_FIELDS = ("m", "P", "t_last", "count")


class FilterParams(eqx.Module):
    """What ``params.eqx`` holds for ``inference=filter``: population parameters and learners' states.

    Attributes:
        net: the population parameters of the fit used for predictions.
        state: per-learner filtered states.
        graph_fits: with ``num_fits`` > 1, the edge probabilities of every
            fit [fits, K, K] (the exported graph is their mean); None with one fit.
    """

    net: pf.FilterNet
    state: FilterState
    graph_fits: np.ndarray | None = None


@functools.partial(jax.jit, static_argnames=("hyper",))
def _run(net, m0, P0, steps, hyper):
    return pf.run_batch(net, m0, P0, steps, hyper)


@functools.partial(jax.jit, static_argnames=("hyper",))
def _forecast(net, m0, P0, skill, dt, hyper):
    return pf.forecast(net, m0, P0, skill, dt, hyper)


@functools.partial(jax.jit, static_argnames=("hyper", "B"))
def _prior(net, hyper, B):
    return pf.prior_batch(net, hyper, B)


def _fit_score(res: loop.FitResult) -> float:
    """A fit's selection score: its best validation AUC, or minus its last training loss without validation."""
    aucs = [h["valid_auc"] for h in res.history if "valid_auc" in h]
    if aucs:
        return float(max(aucs))
    return -float(res.history[-1]["train_loss"]) if res.history else float("-inf")


def _tag_epoch(inner, tag: str, rec: dict) -> None:
    inner({**rec, "fit": tag})


def _tag_step(inner, tag: str, done, total, metrics: dict) -> None:
    inner(done, total, {**metrics, "fit": tag})


class PsiKTFilter(PsiKT):
    """PSI-KT with filter-based inference (``--set inference=filter``)."""

    _state_fields = _FIELDS

    # -- set-up ---------------------------------------------------------------------------------
    def _fhyper(self) -> pf.FilterHyper:
        c = self.config
        return pf.FilterHyper(
            n_kc=self.n_kc,
            use_graph=self.use_graph,
            cov=c.covariance(self.n_kc),
            kc_bias=c.kc_bias,
            grouped=bool(self.meta.get("grouped", False)),
            alpha_link=c.alpha_link,
            graph_category=c.graph_category,
            graph_scale=c.shift_scale(),
            edge_bias=c.existence_offset(),
        )

    def _skeleton(self) -> FilterParams:
        n = len(self.meta.get("state_users", []))
        fits = len(self.meta.get("fits", []))
        graphs = np.zeros((fits, self.n_kc, self.n_kc), np.float32) if fits > 1 else None
        return self._empty_params(pf.FilterNet.init(0, self.n_kc, self.config.dim), n, graphs)

    def _steps(self, seqs: Sequences, unit, t_prev: np.ndarray | None = None, rows: int | None = None) -> pf.Steps:
        """Device inputs for padded sequences; ``t_prev`` = each sequence's stored last time (continuations)."""
        n, T = seqs.mask.shape
        dt = gaps(seqs, unit, t_prev)
        new = np.ones((n, T), bool)
        new[:, 1:] = seqs.group[:, 1:] != seqs.group[:, :-1]
        pad = (rows or n) - n

        def arr(x, dtype, fill=0):
            x = np.asarray(x).astype(dtype)
            if pad > 0:
                x = np.concatenate([x, np.full((pad, *x.shape[1:]), fill, dtype)])
            return jnp.asarray(x)

        skill = np.maximum(seqs.skill, 0)
        return pf.Steps(
            arr(skill, np.int32),
            arr(seqs.correct, np.int32),
            arr(dt, np.float32),
            arr(seqs.mask & (seqs.skill >= 0), bool),
            arr(new, bool, True),
            arr(skill, np.int32),
        )

    def _buckets(self) -> tuple[int, ...]:
        # Few lengths: each compiles a filter scan and its gradient (seconds each on 2 cores).
        w = self.config.window
        return tuple(sorted({b for b in (32, 96) if b < w} | {w}))

    def _slots(self) -> int:
        """C: covariance slots of a training window (K when every KC fits, or with the exact graph covariance)."""
        if self.config.covariance(self.n_kc) == "full":
            return self.n_kc
        return min(self.n_kc, self.config.filter_slots)

    def _make_batch(self, seqs: Sequences, batch_size: int, *, unit) -> dict:
        batch = loop.to_batch(seqs, batch_size)
        rows = batch["skill"].shape[0]
        st = self._steps(seqs, unit, rows=rows)
        kcs, slot = window_slots(seqs.skill, seqs.mask, self._slots(), self.n_kc)
        pad = rows - kcs.shape[0]
        kcs = np.concatenate([kcs, np.full((pad, kcs.shape[1]), self.n_kc + 1, np.int32)])
        slot = np.concatenate([slot, np.zeros((pad, slot.shape[1]), np.int32)])
        batch.update(dt=st.dt, new=st.new, mask=st.mask, kcs=jnp.asarray(kcs), slot=jnp.asarray(slot))
        return batch

    def _windows(self, frame: pl.DataFrame, min_len: int = 1) -> Sequences:
        """Training/validation windows: ``window`` steps, cut earlier where a window would practise more than C KCs."""
        wid = window_ids(frame, self.config.window, self._slots())
        return build_sequences(frame.with_columns(pl.Series("user_idx", wid)), min_len=min_len)

    def _batches(self, seqs: Sequences):
        """(indices, padded sub-sequences) in length order, batch rows bounded by memory (K^2 per state)."""
        S = self.n_kc + 1
        return length_batches(seqs, int(max(1, min(self.config.batch_size * 8, 2**28 // (S * S * 4)))), self._buckets())

    # -- training -------------------------------------------------------------------------------
    def _fit_notes(self, data: Interactions) -> dict:
        return {"inference": "filter", "grouped": bool(data.multi_kc)}

    def _selection(self) -> str:
        return "auc"

    def _empty_params(self, net, n: int = 0, graph_fits: np.ndarray | None = None) -> FilterParams:
        return FilterParams(net, FilterState.empty(n, self.n_kc), graph_fits)

    def _fitted_params(self, res: loop.FitResult) -> FilterParams:
        return self._empty_params(res.model, 0, getattr(self, "_graph_fits", None))

    def _with_stability(self, g):
        G = self.params.graph_fits
        if G is None or not self.config.fit_resample:
            return g
        return with_refit_stability(
            g,
            np.asarray(G, np.float64)[1:],
            seeds=[f["seed"] for f in self.meta["fits"][1:]],
            resample="learners with replacement",
            method="learned (PSI-KT refitted on each resample)",
        )

    def _graph_probs(self) -> np.ndarray:
        if self.params.graph_fits is not None:
            return np.asarray(self.params.graph_fits, np.float64).mean(0)
        return super()._graph_probs()

    def _train(
        self, data: Interactions, frame: pl.DataFrame, train: Sequences, vframe: pl.DataFrame | None, unit, key, hooks: dict
    ) -> loop.FitResult:
        """Maximise the filter's marginal likelihood of the training windows, early-stopping on next-step AUC."""
        cfg = self.config
        seed = seed_of(key)
        vseqs = None if vframe is None else self._windows(vframe)
        hyper = self._fhyper()
        # Each KC's smoothed logit success rate starts b: the filter then begins at the KC-rate baseline.
        cnt, succ = _kc_counts(data, self.n_kc)
        rate = (succ + 1.0) / (cnt + 2.0)
        self.meta["base_rate"] = correct_rate(frame) if frame.height else 0.5
        b0 = np.log(rate / (1.0 - rate)) if cfg.kc_bias else None
        self._graph_fits = None
        results: list[loop.FitResult] = []
        scores: list[float] = []
        fits: list[dict] = []
        for r in range(cfg.num_fits):
            # Fit 0 is the single fit's (same seed); the others get seeds of their own.
            s_r = seed if r == 0 else int(np.random.SeedSequence([seed, r]).generate_state(1)[0] >> 1)
            h = dict(hooks)
            if cfg.num_fits > 1:  # progress says which fit an epoch belongs to
                tag = f"{r + 1}/{cfg.num_fits}"
                if hooks.get("on_epoch") is not None:
                    h["on_epoch"] = functools.partial(_tag_epoch, hooks["on_epoch"], tag)
                if hooks.get("on_step") is not None:
                    h["on_step"] = functools.partial(_tag_step, hooks["on_step"], tag)
            if cfg.num_fits > 1 and hooks.get("checkpoint") is not None:
                h["checkpoint"] = hooks["checkpoint"] / f"fit{r}"
                h["resume"] = bool(hooks.get("resume")) and (h["checkpoint"] / loop.CKPT_JSON).exists()
            train_r = train
            if r > 0 and cfg.fit_resample:  # bagging: the refit sees a learner bootstrap sample
                drawn = resample_learners(data, np.random.default_rng(s_r))
                train_r = self._windows(self._frame(drawn), min_len=2)
            res = loop.fit(
                pf.FilterNet.init(s_r, self.n_kc, cfg.dim, cfg.initial_graph_std(), b0),
                pf.TrainLogits(hyper),
                train_r,
                vseqs,
                self._loop_settings(loop.LoopSettings, batching="bucket"),
                jax.random.key(s_r),
                make_batch=functools.partial(self._make_batch, unit=unit),
                **h,
            )
            results.append(res)
            scores.append(_fit_score(res))
            fits.append({"seed": s_r, "best_epoch": res.best_epoch, "stopped": res.stopped, "score": scores[-1]})
        best = int(np.argmax(scores))
        self.meta["fits"] = [dict(f, used=i == best) for i, f in enumerate(fits)]
        if cfg.num_fits > 1:
            self._graph_fits = np.stack(
                [np.asarray(core.graph_probs(res.model.u, res.model.M, hyper.edge_bias), np.float32) for res in results]
            )
        return results[best]

    # -- filtering ------------------------------------------------------------------------------
    def _filter(
        self, seqs: Sequences, unit, start: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Filter whole sequences; ``start`` = per-sequence stored states (m, P, t_last) or the prior.

        Returns:
            (final states per sequence, per-position outputs [N, T]: prob, share).
        """
        net, hyper = self.params.net, self._fhyper()
        n, T = seqs.mask.shape
        S = self.n_kc + 1
        fin = {"m": np.zeros((n, S), np.float32), "P": np.zeros((n, S, S), np.float32)}
        outs = {"prob": np.zeros((n, T)), "share": np.zeros((n, T))}
        for idx, sub in self._batches(seqs):
            B = _pow2(len(idx))
            if start is None:
                m0, P0 = _prior(net, hyper, B)
                t_prev = None
            else:
                m0 = jnp.asarray(_pad_rows(start["m"][idx], B))
                P0 = jnp.asarray(_pad_rows(start["P"][idx], B, eye=True))
                t_prev = start["t_last"][idx]
            (m, P), out = _run(net, m0, P0, self._steps(sub, unit, t_prev, rows=B), hyper)
            k = len(idx)
            fin["m"][idx], fin["P"][idx] = np.asarray(m)[:k], np.asarray(P)[:k]
            Ts = min(sub.mask.shape[1], T)
            outs["prob"][idx, :Ts] = np.asarray(out.prob)[:k, :Ts]
            outs["share"][idx, :Ts] = np.asarray(out.share)[:k, :Ts]
        return fin, outs

    def _encode_states(self, frame: pl.DataFrame, unit, net=None) -> tuple[list[str], dict[str, np.ndarray]]:
        """Filtered state after each learner's whole history in ``frame``."""
        del net
        seqs = build_sequences(frame.filter(pl.col("skill_idx") >= 0))
        n = seqs.mask.shape[0]
        fin, _ = self._filter(seqs, unit)
        days = tr.seq_days(seqs, unit)
        last = np.maximum(seqs.lengths - 1, 0)
        fin["t_last"] = days[np.arange(n), last] if n else np.zeros(0)
        fin["count"] = seqs.lengths.astype(np.float64)
        uid = frame.filter(pl.col("skill_idx") >= 0)["user_id"].to_numpy()
        users = [str(uid[r]) for r in seqs.row[:, 0]] if n else []
        return users, fin

    def _start_for(
        self, users: list[str], st: dict[str, np.ndarray], wanted: list[str]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Stored states for ``wanted`` learners; the prior (t_last NaN) for learners without one."""
        index = {u: i for i, u in enumerate(users)}
        rows = np.array([index.get(u, -1) for u in wanted], np.int64)
        has = rows >= 0
        m0, P0 = (np.asarray(a[0]) for a in _prior(self.params.net, self._fhyper(), 1))
        S = self.n_kc + 1
        out = {
            "m": np.broadcast_to(m0, (len(wanted), S)).copy(),
            "P": np.broadcast_to(P0, (len(wanted), S, S)).copy(),
            "t_last": np.full(len(wanted), np.nan),
            "count": np.zeros(len(wanted)),
        }
        if has.any():
            for k in _FIELDS:
                out[k][has] = st[k][rows[has]]
        return out, has

    # -- predictions ----------------------------------------------------------------------------
    def _predict_probs(self, data: Interactions):
        frame = self._frame(data)
        unit = self._unit(data)
        known = frame["skill_idx"].to_numpy() >= 0
        sub = frame.filter(pl.col("skill_idx") >= 0)
        seqs = build_sequences(sub)
        _, outs = self._filter(seqs, unit)
        probs = np.full(frame.height, self.meta.get("base_rate", 0.5))
        vals = np.zeros(sub.height)
        vals[seqs.row[seqs.mask]] = outs["prob"][seqs.mask]
        probs[np.flatnonzero(known)] = vals
        return _fuse(probs, frame["attempt"].to_numpy(), data.n_rows), {}

    def _forecast(
        self, fframe: pl.DataFrame, unit, users: list[str], st: dict[str, np.ndarray], net=None
    ) -> dict[str, np.ndarray]:
        """Open-loop predictions for every row of ``fframe`` from the learners' filtered states."""
        del net
        hyper = self._fhyper()
        prob = np.full(fframe.height, self.meta.get("base_rate", 0.5))
        share = prob.copy()
        known = np.flatnonzero(fframe["skill_idx"].to_numpy() >= 0)
        sub = fframe.filter(pl.col("skill_idx") >= 0)
        seqs = build_sequences(sub)
        n = seqs.mask.shape[0]
        if n == 0:
            return {"prob": prob, "pos_share": share}
        uid = sub["user_id"].to_numpy()
        start, _ = self._start_for(users, st, [str(uid[r]) for r in seqs.row[:, 0]])
        dt = gaps(continued(seqs, start, unit), unit, start["t_last"])  # fresh learners (t_last NaN) start at gap 0
        p_out = np.zeros(sub.height)
        s_out = np.zeros(sub.height)
        for idx, part in self._batches(seqs):
            B = _pow2(len(idx))
            T = part.mask.shape[1]
            d = np.zeros((len(idx), T))
            d[:, : min(T, dt.shape[1])] = dt[idx, :T]
            p, s, _, _ = _forecast(
                self.params.net,
                jnp.asarray(_pad_rows(start["m"][idx], B)),
                jnp.asarray(_pad_rows(start["P"][idx], B, eye=True)),
                jnp.asarray(_pad_rows(np.maximum(part.skill, 0).astype(np.int32), B)),
                jnp.asarray(_pad_rows(d.astype(np.float32), B)),
                hyper,
            )
            p, s = np.asarray(p)[: len(idx)], np.asarray(s)[: len(idx)]
            p_out[part.row[part.mask]] = p[part.mask]
            s_out[part.row[part.mask]] = s[part.mask]
        prob[known], share[known] = p_out, s_out
        return {"prob": prob, "pos_share": share}

    def mastery(self, data: Interactions | None = None, at_days: float | None = None) -> pl.DataFrame:
        """Filtered knowledge per learner x KC after the history.

        Args:
            data: interactions to filter; ``None`` = the learners stored in
                the model (after training or ``update``).
            at_days: propagate each state this many days (steps without
                timestamps) past the learner's last interaction first.

        Returns:
            ``user_id``, ``skill_id``, ``z_mean``, ``z_std`` and
            ``p_correct`` = E[sig(z + b)] (b: the KC's offset).
        """
        users, st = self._states_for(data)
        hyper = self._fhyper()
        K = self.n_kc
        m, P = st["m"].astype(np.float32), st["P"].astype(np.float32)
        if at_days is not None and len(users):
            m, P = pf.propagate(
                self.params.net, jnp.asarray(m), jnp.asarray(P), jnp.full((len(users),), float(at_days), jnp.float32), hyper
            )
        if len(users):
            zm, zv = (np.asarray(a) for a in pf.knowledge(jnp.asarray(m), jnp.asarray(P), hyper))
            p = np.asarray(pf.kc_probs(self.params.net, jnp.asarray(m), jnp.asarray(P), hyper))
        else:
            zm, zv, p = (np.zeros((0, K)) for _ in range(3))
        std = np.sqrt(np.maximum(zv, 0.0))
        return pl.DataFrame(
            {
                "user_id": pl.Series([u for u in users for _ in range(K)], dtype=pl.String),
                "skill_id": np.tile(np.asarray(self._fitted_vocab.skill_id), len(users)),
                "z_mean": zm.ravel().astype(np.float64),
                "z_std": std.ravel().astype(np.float64),
                "p_correct": p.ravel().astype(np.float64),
            }
        )

    def traits(self, data: Interactions | None = None) -> pl.DataFrame:
        """Per-learner traits: mu (filtered level, with its std); alpha, sigma, gamma are population values.

        Args:
            data: interactions to filter; ``None`` = the stored learners.

        Returns:
            The same columns as the amortised model's ``traits``
            (``alpha_std``, ``sigma2_std`` and ``gamma_std`` are 0: shared values).
        """
        users, st = self._states_for(data)
        t = pf.traits(self.params.net, self._fhyper())
        K = self.n_kc
        n = len(users)
        mu = st["m"][:, K].astype(np.float64) if n else np.zeros(0)
        mu_std = np.sqrt(np.maximum(st["P"][:, K, K], 0.0)).astype(np.float64) if n else np.zeros(0)
        full = lambda v: np.full(n, float(v))  # noqa: E731
        return pl.DataFrame(
            {
                "user_id": pl.Series(users, dtype=pl.String),
                "alpha": full(t.alpha),
                "alpha_std": full(0.0),
                "mu": mu,
                "mu_std": mu_std,
                "sigma": full(np.sqrt(t.sigma2)),
                "sigma2": full(t.sigma2),
                "sigma2_std": full(0.0),
                "gamma": full(t.gamma),
                "gamma_std": full(0.0),
            }
        )

    def params_table(self) -> pl.DataFrame:
        """Population parameters as a tidy table (alpha, sigma^2, gamma, priors, KC offsets)."""
        self._require_fitted()
        net = self.params.net
        t = pf.traits(net, self._fhyper())
        rows = [
            ("alpha", "", "", float(t.alpha)),
            ("sigma2", "", "", float(t.sigma2)),
            ("gamma", "", "", float(t.gamma)),
            ("mu_prior_mean", "", "", float(net.m_mu)),
            ("mu_prior_var", "", "", float(jnp.exp(net.log_v_mu))),
            ("mu_step_var", "", "", float(t.q_mu)),
            ("z0_offset", "", "", float(net.d0)),
            ("z0_var", "", "", float(jnp.exp(net.log_v0))),
        ]
        rows += [("kc_offset", str(s), "", float(v)) for s, v in zip(self._fitted_vocab.skill_id, np.asarray(net.b))]
        return pl.DataFrame(rows, schema=["param", "row", "col", "value"], orient="row")

    # -- continual learning ---------------------------------------------------------------------
    def update(self, new: Interactions, *, steps: int | None = None, lr: float | None = None, key=0) -> dict:
        """Continual update: the filter continues from each learner's stored state (no retraining).

        The stored (mean, covariance) is the prior of the new interactions;
        filtering them gives exactly the state that filtering the
        concatenated history would (tested). Learners the model has not seen
        start from the prior. The parameters are unchanged.

        Args:
            new: new interactions (encoded with this model's vocabulary), after
                each learner's stored history.
            steps, lr, key: unused (the amortised inference's options).

        Returns:
            Report: ``arrivals``, ``learners``, ``new_learners``,
            ``interactions``, ``seconds``, ``seconds_per_update`` (per
            interaction round), ``first_update_seconds``.
        """
        del steps, lr, key
        self._require_fitted()
        t0 = time.perf_counter()
        frame = self._frame(new)
        unit = self._unit(new)
        sub = frame.filter(pl.col("skill_idx") >= 0)
        seqs = build_sequences(sub)
        uid = sub["user_id"].to_numpy()
        wanted = [str(uid[r]) for r in seqs.row[:, 0]] if seqs.mask.shape[0] else []
        users = list(self.meta.get("state_users", []))
        st = {k: getattr(self.params.state, k) for k in _FIELDS}
        start, has = self._start_for(users, st, wanted)
        seqs = continued(seqs, start, unit)
        days = tr.seq_days(seqs, unit)
        first_t = days[:, 0] if len(wanted) else np.zeros(0)
        backwards = int(((first_t < start["t_last"]) & has).sum())
        start["t_last"] = np.where(has, np.minimum(start["t_last"], first_t), first_t)
        fin, _ = self._filter(seqs, unit, start)
        last = np.maximum(seqs.lengths - 1, 0)
        fin["t_last"] = days[np.arange(len(wanted)), last] if len(wanted) else np.zeros(0)
        fin["count"] = start["count"] + seqs.lengths
        self._store_states(wanted, fin)
        if backwards:
            self._warn(f"{new.source}: {backwards} learners' new interactions start before their last stored one; gap set to 0")
        total = time.perf_counter() - t0
        rounds = int(seqs.lengths.max()) if len(wanted) else 0
        report = {
            "arrivals": rounds,
            "learners": len(wanted),
            "new_learners": int((~has).sum()),
            "interactions": int(frame.height),
            "steps": 0,
            "seconds": total,
            "first_update_seconds": total,
            "seconds_per_update": total / max(rounds, 1),
        }
        self.meta.setdefault("updates", []).append(
            {k: report[k] for k in ("arrivals", "learners", "new_learners", "interactions", "seconds")}
        )
        return report


def gaps(seqs: Sequences, unit, t_prev: np.ndarray | None = None) -> np.ndarray:
    """Gap in model days before every step (0 on padding).

    Args:
        seqs: padded sequences.
        unit: seconds per model day, or None (the step index is the time).
        t_prev: each sequence's time before its first step (a stored state's
            last time; NaN or None: the first gap is 0).

    Returns:
        [N, T] float64 gaps, clipped at 0.
    """
    days = tr.seq_days(seqs, unit)
    dt = np.zeros(days.shape)
    dt[:, 1:] = days[:, 1:] - days[:, :-1]
    if t_prev is not None:
        dt[:, 0] = days[:, 0] - t_prev
    return np.where(seqs.mask & np.isfinite(dt), np.maximum(dt, 0.0), 0.0)


def continued(seqs: Sequences, start: dict[str, np.ndarray], unit) -> Sequences:
    """Without timestamps the step index continues after each learner's stored history (``start['count']``)."""
    if unit is not None:
        return seqs
    return dataclasses.replace(seqs, start=seqs.start + start["count"].astype(np.int64))


def window_ids(frame: pl.DataFrame, window: int, cap: int) -> np.ndarray:
    """A window index per row: a new window at each learner, every ``window`` rows, and before a
    question that would make the window practise more than ``cap`` distinct KCs.

    Args:
        frame: canonical (exploded) frame sorted by learner.
        window: longest window.
        cap: most distinct KCs per window.

    Returns:
        Non-decreasing int64 window ids, one per row.
    """
    user = frame["user_idx"].to_numpy()
    skill = frame["skill_idx"].to_numpy()
    group = frame["attempt"].to_numpy() if "attempt" in frame.columns else np.arange(len(user))
    out = np.empty(len(user), np.int64)
    wid, length = -1, 0
    seen: set[int] = set()
    prev_user, prev_group = None, None
    for i in range(len(user)):
        u, k, g = user[i], skill[i], group[i]
        if u != prev_user or (g != prev_group and (length >= window or (k not in seen and len(seen) >= cap))):
            wid, length, seen = wid + 1, 0, set()
        seen.add(k)
        length += 1
        out[i] = wid
        prev_user, prev_group = u, g
    return out


def window_slots(skill: np.ndarray, mask: np.ndarray, C: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Covariance slots of padded windows: the KC of each slot and each step's slot.

    Args:
        skill: [N, T] KC per step (-1 on padding).
        mask: [N, T] real steps.
        C: slots per window (every window practises at most C KCs).
        K: number of KCs (padding slots get K + 1).

    Returns:
        (kcs [N, C] int32, slot [N, T] int32).
    """
    N, T = skill.shape
    kcs = np.full((N, C), K + 1, np.int32)
    slot = np.zeros((N, T), np.int32)
    if C == K:  # the full state: slot = KC
        kcs[:] = np.arange(K, dtype=np.int32)
        return kcs, np.where(mask, np.maximum(skill, 0), 0).astype(np.int32)
    for i in range(N):
        ks = skill[i][mask[i] & (skill[i] >= 0)]
        uniq, inv = np.unique(ks, return_inverse=True)
        if len(uniq) > C:
            raise ValueError(f"window practises {len(uniq)} KCs, more than its {C} slots")
        kcs[i, : len(uniq)] = uniq
        slot[i, np.flatnonzero(mask[i] & (skill[i] >= 0))] = inv
    return kcs, slot


def _pad_rows(x: np.ndarray, B: int, eye: bool = False) -> np.ndarray:
    """Pad the leading axis to B rows (identity covariances when ``eye``, so padded filters stay finite)."""
    n = x.shape[0]
    if n >= B:
        return x
    fill = np.zeros((B - n, *x.shape[1:]), x.dtype)
    if eye:
        fill[:] = np.eye(x.shape[-1], dtype=x.dtype)
    return np.concatenate([x, fill])

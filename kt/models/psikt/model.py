"""PSI-KT (Zhou, Bamler, Wu, Tejero-Cantero, ICLR 2024): OU knowledge dynamics on a learned graph.

Per learner, one real-valued state per KC evolves as coupled
Ornstein-Uhlenbeck processes in real time (days); a shared prerequisite
graph p_ik = sig(u_i.u_k) sig(u_i^T (M - M^T) u_k) shifts each KC's
long-run target towards its prerequisites' states (1/K normalisation, all
KCs move each step); four time-varying learner traits (alpha rate, mu
level, sigma volatility, gamma transfer) follow a linear-Gaussian Markov
prior. Amortised mean-field posteriors (LSTM for q(z), a per-step trait
network with a pooled learner category for q(s)) are trained on a
weighted ELBO. See ``shared/spec/PSIKT.md``; the equations are in
:mod:`kt.models.psikt.core`, the training loop in :mod:`kt.models.psikt.train`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import ClassVar, Optional, Self, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.data.sequences import Sequences, build_sequences
from kt.errors import KTError
from kt import metrics
from kt.models.psikt import core
from kt.models.seeds import seed_of
from kt.models.psikt import train as tr
from kt.models.base import Capabilities, Model, register
from kt.train import loop

SELECT = ("auc", "elbo", "f1")
# Default weights per objective (``official``: the official code's defaults).
OBJECTIVES = {
    "official": {"w_s": 1.0, "w_z": 1.0, "w_y": 1.0, "w_0": 1e-4, "lambda_s": 0.1, "lambda_z": 0.1},
    "elbo": {"w_s": 1.0, "w_z": 1.0, "w_y": 1.0, "w_0": 1.0, "lambda_s": 1.0, "lambda_z": 1.0},
}
FULL_COV_MAX_KC = 32  # filter_cov=auto: the exact O(K^3) covariance up to this many KCs
ELBO_WEIGHTS_NOTE = "ELBO weights are the official code's defaults; the paper's values are unknown"
_Settings = TypeVar("_Settings", bound=loop.LoopSettings)


@dataclass(frozen=True)
class PsiKTConfig:
    """Options of ``psikt`` (defaults: the official code's, see shared/spec/PSIKT.md).

    Attributes:
        dim: D, size of the KC embeddings u (shared by graph and encoder).
        categories: C, learner categories of q(s).
        encoder: ``causal`` (the official LSTM for q(z)) or
            ``bidirectional`` (adds a backward LSTM: a smoothing posterior
            over the window in training; at prediction the backward state at
            the end of the observed prefix, so nothing later is seen).
        trait_input: ``pooled`` (q(s_n) reads e_n, c and the pooled learner
            summary c is drawn from) or ``category`` (official: e_n and c;
            with the Gumbel noise and w_c the traits barely differ between
            learners).
        prior_terms: ``analytic`` (the closed-form expectation of
            log p~(s), log p~(z) under q: the same objective without
            sampling noise) or ``sampled`` (official: at reparameterised
            samples).
        z_prior_variance: ``propagated`` (p~(z_n) has the variance of the
            propagated q(z_{n-1}), r^2 v + ((1 - r) gamma / K)^2 v A^2 + Q, as
            p~(s_n) carries H P H^T) or ``transition`` (official: Q alone).
        hidden: width of the q(s) and pooling layers.
        graph: learn the prerequisite graph (off, or K = 1: 3 traits, no gamma).
        graph_init_std: standard deviation of the initial u and M (default: 0.3 filter; amortized: official
            1; with D = 16, sig(u_i.u_k) then starts saturated near 0 or 1).
        mc_samples: Monte-Carlo samples (training) and stratified quantile
            points (prediction).
        graph_samples: 0 = the expected graph A = p enters the dynamics;
            S > 0 = average of S straight-through hard Gumbel-softmax samples.
        graph_category: ``kt`` (A = p) or ``official`` (1 - p in the
            dynamics, the official code's category; parity runs only).
        alpha_link: ``softplus`` or ``relu`` (relu + 1e-6, official).
        objective: ``official`` (the official code's weighted objective:
            (w_s log p~(s) + w_z log p~(z) + w_y log p(y)) / 3 averaged over
            steps n >= 1, w_0 times the same at n = 0, lambda entropies) or
            ``elbo`` (log p~(s) + log p~(z) + log p(y) + H[q(s)] + H[q(z)]
            per real step: the ELBO, bounded above).
        w_s, w_z, w_y: weights of the trait prior, knowledge prior and
            emission terms (default: the objective's: 1, 1, 1).
        w_0: weight of the n = 0 terms (default: official 1e-4, elbo 1).
        lambda_s, lambda_z: entropy weights (default: official 0.1, elbo 1).
        w_c: weight of KL(q(c) || Uniform).
        lr: Adam learning rate (default: 5e-3 amortized, 0.05 filter).
        weight_decay: coupled L2 on weight matrices.
        clip_norm: global gradient-norm clip.
        batch_size: sequences per batch.
        epochs: maximum epochs.
        patience: epochs without validation gain before stopping (default: 10 amortized, 5 filter).
        window: training chunk length (longer learners are cut).
        select_on: validation score for early stopping: ``auc``
            (next-step), ``elbo`` or ``f1`` (within-learner open loop:
            observe ``select_history`` steps, predict ``select_horizon``).
        select_history: observed steps for ``f1`` selection.
        select_horizon: predicted steps for ``f1`` selection.
        accumulate_variance: predictions carry the z variance forward
            (r^2 var + graph term + Q) instead of using the one-step Q
            (official); default: as ``z_prior_variance`` (propagated: yes).
        time_unit: unit of numeric timestamps (seconds, minutes, hours,
            days); model time is in days.
        multi_kc: ``error`` or ``expand`` (one step per KC, gap ~1e-6;
            predictions of a question average its KCs).
        update_steps: optimisation steps per arrival in continual updates.
        update_lr: Adam learning rate of those steps.
        inference: ``filter`` (the knowledge states integrated out by a
            Gaussian filter; population parameters fitted on the marginal
            likelihood, see :mod:`kt.models.psikt.filter`) or ``amortized``
            (the official LSTM/trait-network posteriors on the ELBO).
        filter_cov: ``mean`` (the graph shift enters the filter's mean only;
            O(K^2) per step), ``full`` (exact covariance, O(K^3) per step) or
            ``auto`` (default: ``full`` up to ``FULL_COV_MAX_KC`` KCs, where
            it recovers graphs better, ``mean`` above).
        kc_bias: per-KC emission offsets b_k, P(y = 1) = sig(z_k + b_k)
            (filter only; the spec's emission has none).
        graph_scale: ``fixed`` (the spec's shift gamma/K) or ``learned``
            (gamma/K times a learned positive scale; filter only). Default:
            ``learned`` for the filter (gamma < 1 caps the spec's shift at
            1/K per unit of a parent's knowledge, so a stronger dependence
            could only be fitted by adding false edges), ``fixed`` amortized.
        edge_bias: offset of the existence logit, p_ik = sig(u_i.u_k +
            edge_bias) sig(u_i^T (M - M^T) u_k) (filter only; 0 is the
            spec). Default -3 for the filter: the graph starts sparse
            (p about 0.02) instead of at p about 0.25 everywhere, from
            where the fit settles in denser graphs with worse likelihood.
        num_fits: independent fits from different initialisations (filter
            only). Predictions use the fit with the best validation score
            (the lowest training loss without validation); the learned
            graph is the mean edge probability over all fits, whose
            spurious edges differ from fit to fit while the supported ones
            recur.
        fit_resample: with ``num_fits`` > 1, the fits after the first
            train on learner resamples (drawn with replacement, the
            bootstrap of ``kt export-graph --bootstrap``), and the learned
            graph carries each edge's stability: the share of those refits
            that keep it (probability >= 0.5 and above the reverse edge),
            with a 2.5-97.5% interval of its probability.
        filter_slots: covariance slots of a training window (filter, mean
            covariance): windows are also cut before they would practise
            more than this many KCs, and filtering costs O(slots^2) per step
            instead of O(K^2) (exact for each window).
    """

    dim: int = 16
    categories: int = 10
    encoder: str = "causal"
    trait_input: str = "pooled"
    prior_terms: str = "analytic"
    z_prior_variance: str = "propagated"
    hidden: int = 64
    graph: bool = True
    graph_init_std: Optional[float] = None
    mc_samples: int = 10
    graph_samples: int = 0
    graph_category: str = "kt"
    alpha_link: str = "softplus"
    objective: str = "elbo"
    w_s: Optional[float] = None
    w_z: Optional[float] = None
    w_y: Optional[float] = None
    w_0: Optional[float] = None
    lambda_s: Optional[float] = None
    lambda_z: Optional[float] = None
    w_c: float = 10.0
    lr: Optional[float] = None
    weight_decay: float = 1e-5
    clip_norm: float = 100.0
    batch_size: int = 32
    epochs: int = 200
    patience: Optional[int] = None
    window: int = 200
    select_on: str = "auc"
    select_history: int = 10
    select_horizon: int = 10
    accumulate_variance: Optional[bool] = None
    time_unit: str = "seconds"
    multi_kc: str = "error"
    update_steps: int = 10
    update_lr: float = 0.05
    inference: str = "filter"
    filter_cov: str = "auto"
    kc_bias: bool = True
    filter_slots: int = 64
    graph_scale: Optional[str] = None
    edge_bias: Optional[float] = None
    num_fits: int = 1
    fit_resample: bool = False

    def covariance(self, n_kc: int) -> str:
        """``filter_cov`` resolved for K KCs (``auto``: ``full`` up to ``FULL_COV_MAX_KC``, else ``mean``)."""
        if self.filter_cov != "auto":
            return self.filter_cov
        return "full" if n_kc <= FULL_COV_MAX_KC else "mean"

    def shift_scale(self) -> str:
        """``graph_scale`` (explicit, else ``learned`` filter, ``fixed`` amortized)."""
        if self.graph_scale is not None:
            return self.graph_scale
        return "learned" if self.inference == "filter" else "fixed"

    def existence_offset(self) -> float:
        """``edge_bias`` (explicit, else -3 filter, 0 amortized)."""
        if self.edge_bias is not None:
            return float(self.edge_bias)
        return -3.0 if self.inference == "filter" else 0.0

    def learning_rate(self) -> float:
        """The Adam learning rate (explicit ``lr``, else the inference's default)."""
        if self.lr is not None:
            return float(self.lr)
        return 0.05 if self.inference == "filter" else 5e-3

    def initial_graph_std(self) -> float:
        """Standard deviation of the initial u and M (explicit, else 0.3 filter, 1.0 amortized as official)."""
        if self.graph_init_std is not None:
            return float(self.graph_init_std)
        return 0.3 if self.inference == "filter" else 1.0

    def early_stop_patience(self) -> int:
        """Epochs without validation gain before stopping (explicit ``patience``, else the inference's default)."""
        if self.patience is not None:
            return int(self.patience)
        return 5 if self.inference == "filter" else 10

    def weights(self) -> dict[str, float]:
        """The resolved objective weights (explicit values override the objective's defaults)."""
        base = OBJECTIVES[self.objective]
        return {k: float(getattr(self, k) if getattr(self, k) is not None else v) for k, v in base.items()}

    def validate(self) -> None:
        """Reject invalid values with a one-line message."""
        choices = {
            "graph_category": ("kt", "official"),
            "alpha_link": ("softplus", "relu"),
            "select_on": SELECT,
            "time_unit": tuple(tr.DAY_SECONDS),
            "multi_kc": ("error", "expand"),
            "encoder": ("causal", "bidirectional"),
            "prior_terms": ("analytic", "sampled"),
            "z_prior_variance": ("propagated", "transition"),
            "trait_input": ("pooled", "category"),
            "objective": tuple(OBJECTIVES),
            "inference": ("filter", "amortized"),
            "filter_cov": ("auto", "mean", "full"),
            "graph_scale": ("fixed", "learned"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed and not (name == "graph_scale" and self.graph_scale is None):
                raise KTError(f"--set {name}={getattr(self, name)!r}: choose one of {', '.join(allowed)}")
        for name in (
            "dim",
            "categories",
            "hidden",
            "mc_samples",
            "batch_size",
            "epochs",
            "select_history",
            "select_horizon",
            "filter_slots",
            "num_fits",
        ):
            if getattr(self, name) < 1:
                raise KTError(f"--set {name}={getattr(self, name)}: must be >= 1")
        if self.window < 2:
            raise KTError(f"--set window={self.window}: must be >= 2")
        if self.graph_samples < 0 or self.early_stop_patience() < 1 or self.update_steps < 0:
            raise KTError("psikt: graph_samples and update_steps must be >= 0 and patience >= 1")
        if not (self.learning_rate() > 0 and self.update_lr > 0 and self.clip_norm > 0 and self.weight_decay >= 0):
            raise KTError("psikt: lr, update_lr and clip_norm must be > 0 and weight_decay >= 0")
        if self.inference == "amortized":
            for name, neutral in (("edge_bias", 0.0), ("num_fits", 1), ("graph_scale", "fixed"), ("fit_resample", False)):
                if getattr(self, name) not in (None, neutral):
                    raise KTError(f"--set {name}={getattr(self, name)}: only for inference=filter")
        if self.edge_bias is not None and not np.isfinite(self.edge_bias):
            raise KTError(f"--set edge_bias={self.edge_bias}: must be a finite number")
        for name in ("w_s", "w_z", "w_y", "w_0", "lambda_s", "lambda_z", "w_c"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:
                raise KTError(f"--set {name}={getattr(self, name)}: must be >= 0")


class LearnerState(eqx.Module):
    """Per-learner posterior after the last seen interaction (rows = ``meta['state_users']``).

    NumPy leaves (times in float64 days) saved with the parameters.
    """

    s_mean: np.ndarray
    s_std: np.ndarray
    z_mean: np.ndarray
    z_std: np.ndarray
    h: np.ndarray
    c: np.ndarray
    pool_sum: np.ndarray
    count: np.ndarray
    t_last: np.ndarray
    t_first: np.ndarray

    @staticmethod
    def empty(n: int, S: int, K: int, Hd: int, P: int) -> "LearnerState":
        f = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
        return LearnerState(
            f(n, S),
            np.ones((n, S), np.float32),
            f(n, K),
            np.ones((n, K), np.float32),
            f(n, Hd),
            f(n, Hd),
            f(n, P),
            f(n),
            np.zeros(n, np.float64),
            np.zeros(n, np.float64),
        )

    def rows(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: getattr(self, k)[idx] for k in _STATE_FIELDS}


_STATE_FIELDS = ("s_mean", "s_std", "z_mean", "z_std", "h", "c", "pool_sum", "count", "t_last", "t_first")
_NET_FIELDS = ("s_mean", "s_std", "z_mean", "z_std", "h", "c", "pool_sum", "count")


class Params(eqx.Module):
    """What ``params.eqx`` holds: the network and the learners' states."""

    net: core.Net
    state: LearnerState


@eqx.filter_jit
def _final(net, batch, hyper):
    del hyper
    return core.final_state(net, batch)


@eqx.filter_jit
def _rollout(net, start, skill, dt, known, has_hist, hyper):
    return core.rollout(net, start, skill, dt, known, has_hist, hyper)


@eqx.filter_jit
def _next_probs_q(net, batch, qpos, hyper):
    zm, zv = core.next_step_dists(net, batch, hyper)
    zm = jnp.take_along_axis(zm, qpos[..., None], axis=1)
    zv = jnp.take_along_axis(zv, qpos[..., None], axis=1)
    pk = jnp.take_along_axis(zm, batch.skill[..., None], axis=-1)[..., 0]
    vk = jnp.take_along_axis(zv, batch.skill[..., None], axis=-1)[..., 0]
    p, _ = core.emission_probs(pk, vk, hyper)
    p_any = jax.nn.sigmoid(zm / jnp.sqrt(1.0 + math.pi * zv / 8.0)).mean(-1)
    return jnp.where(batch.known, p, p_any)


@eqx.filter_jit
def _arrival(net, state, arr, key, hyper, steps, lr):
    return core.arrival_update(net, state, arr, key, hyper, steps, lr)


@eqx.filter_jit
def _propagate(net, s_mean, s_cov, z_mean, z_var, dt, hyper):
    return core.propagate(net, s_mean, s_cov, z_mean, z_var, dt, hyper)


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


@register
class PsiKT(Model):
    """PSI-KT: OU knowledge dynamics with a learned prerequisite graph and learner traits."""

    name = "psikt"
    Config = PsiKTConfig
    capabilities = Capabilities(resumable=True, on_step=True, graph="learned", update=True, params_table=True)
    _state_fields: ClassVar[tuple[str, ...]] = _STATE_FIELDS  # the per-learner state's fields (see ``_store_states``)
    summary = "PSI-KT: OU dynamics on a learned prerequisite graph, learner traits, continual updates"

    @classmethod
    def saved_config(cls, raw: dict) -> dict:
        """Models saved before ``inference`` existed used the amortised posteriors."""
        raw.setdefault("inference", "amortized")
        # Options whose defaults changed keep the values older models were trained with.
        raw.setdefault("graph_scale", "fixed")
        raw.setdefault("edge_bias", 0.0)
        raw.setdefault("filter_cov", "mean")
        return raw

    @classmethod
    def variant(cls, config) -> type["PsiKT"]:
        """:class:`~kt.models.psikt.filter_model.PsiKTFilter` for ``inference=filter``."""
        if cls is PsiKT and getattr(config, "inference", "filter") == "filter":
            from kt.models.psikt.filter_model import PsiKTFilter

            return PsiKTFilter
        return cls

    # -- set-up ---------------------------------------------------------------------------------
    @property
    def n_kc(self) -> int:
        return len(self._fitted_vocab.skill_id)

    @property
    def use_graph(self) -> bool:
        return bool(self.config.graph) and self.n_kc > 1

    def _hyper(self) -> core.Hyper:
        c = self.config
        return core.Hyper(
            n_kc=self.n_kc,
            n_traits=4 if self.use_graph else 3,
            mc=c.mc_samples,
            graph_samples=c.graph_samples,
            graph_category=c.graph_category,
            alpha_link=c.alpha_link,
            **c.weights(),
            w_c=c.w_c,
            accumulate_variance=(c.z_prior_variance == "propagated") if c.accumulate_variance is None else c.accumulate_variance,
            objective=c.objective,
            analytic=c.prior_terms == "analytic",
            propagate_z_var=c.z_prior_variance == "propagated",
        )

    def _buckets(self) -> tuple[int, ...]:
        w = self.config.window
        return tuple(sorted({b for b in (16, 32, 50, 64, 100, 128) if b < w} | {w}))

    def _new_net(self, key) -> core.Net:
        c = self.config
        return core.Net.init(
            key,
            self.n_kc,
            4 if self.use_graph else 3,
            c.dim,
            c.categories,
            c.hidden,
            bidirectional=c.encoder == "bidirectional",
            pooled_traits=c.trait_input == "pooled",
            graph_init_std=c.initial_graph_std(),
        )

    def _skeleton(self) -> eqx.Module:  # Params here; the filter variant's FilterParams
        return self._empty_params(self._new_net(0), len(self.meta.get("state_users", [])))

    @property
    def net(self) -> core.Net:
        self._require_fitted()
        return self.params.net

    def _frame(self, data: Interactions) -> pl.DataFrame:
        """Single-KC frame with an ``attempt`` column (multi-KC rows expanded when allowed)."""
        if data.multi_kc:
            if self.config.multi_kc != "expand":
                raise KTError(
                    f"{data.source}: psikt needs one KC per attempt and this file has attempts with several KCs; "
                    "use one KC column (--map skill_id=COLUMN) or --set multi_kc=expand"
                )
            self._warn("multi-KC attempts expanded to one step per KC (gap ~1e-6 days); a question's prediction averages its KCs")
        return data.explode()

    def _warn(self, msg: str) -> None:
        w = self.meta.setdefault("warnings", [])
        if msg not in w:
            w.append(msg)

    def _unit(self, data: Interactions, *, fitting: bool = False) -> float | None:
        """Seconds per model day, or None when the step index is the time."""
        ts = data.frame["timestamp"]
        has = data.has_time and ts.null_count() == 0
        if fitting:
            if data.has_time and not has:
                self._warn(f"{data.source}: some timestamps are missing; time = step index for all learners")
            elif not has:
                self._warn(f"{data.source}: no timestamps; time = step index (alpha is a rate per step, not per day)")
            self.meta["time"] = "days" if has else "steps"
            return tr.DAY_SECONDS[self.config.time_unit] if has else None
        if self.meta.get("time", "days") == "steps":
            return None
        if not has:
            raise KTError(
                f"{data.source}: this psikt model was trained with timestamps; the data needs a timestamp on every row "
                "(--map timestamp=COLUMN)"
            )
        return tr.DAY_SECONDS[self.config.time_unit]

    # -- training -------------------------------------------------------------------------------
    def fit(
        self, data: Interactions, *, valid=None, key=None, progress=None, checkpoint=None, resume=False, on_step=None
    ) -> Self:
        """Train on ``data`` (windows of ``window`` steps), early-stopping on ``valid``.

        Args:
            data: training interactions (one KC per attempt unless
                ``multi_kc=expand``; timestamps in ``time_unit`` are converted to days).
            valid: validation learners (early stopping on ``select_on``; the
                filter variant on next-step AUC), or ``None`` (no early stopping).
            key, progress, checkpoint, resume, on_step: as in :meth:`kt.models.base.Model.fit`.

        Returns:
            ``self``; ``meta`` holds ``history``, ``warnings`` and the stored
            learners (``state_users``: training and validation learners).
        """
        self.vocab = data.vocab
        self.meta = {"warnings": [], **self._fit_notes(data)}
        frame = self._frame(data)
        unit = self._unit(data, fitting=True)
        train = self._windows(frame, min_len=2)
        if train.mask.shape[0] == 0:
            raise KTError(f"{data.source}: no learner has 2 or more attempts; psikt needs sequences")
        vframe = None
        if valid is not None:
            if valid.has_time != data.has_time:
                raise KTError(f"{valid.source}: validation data must have timestamps exactly when the training data does")
            vframe = self._frame(valid)
        hooks = {"on_epoch": progress, "checkpoint": checkpoint, "resume": resume, "on_step": on_step}
        self._record_fit(
            lambda: self._train(data, frame, train, vframe, unit, key, hooks),
            self._fitted_params,
            self.meta,
            failed={"state_users": []},
        )
        self.meta.update({"train_windows": int(train.mask.shape[0]), "select_on": self._selection()})
        self.meta["state_users"] = []
        for f in [frame] if vframe is None else [frame, vframe]:
            self._store_states(*self._encode_states(f, unit))
        return self

    def _fitted_params(self, res: loop.FitResult):
        """``params`` from the training result (learner states are stored after training)."""
        return self._empty_params(res.model)

    def _fit_notes(self, data: Interactions) -> dict:
        """What ``meta`` records about the variant before training."""
        return {"elbo_weights": ELBO_WEIGHTS_NOTE}

    def _windows(self, frame: pl.DataFrame, min_len: int = 1) -> Sequences:
        """Training windows: ``window`` steps."""
        return build_sequences(frame, window=self.config.window, min_len=min_len)

    def _selection(self) -> str:
        """The validation score that selects the epoch."""
        return self.config.select_on

    def _empty_params(self, net, n: int = 0) -> eqx.Module:
        """``params`` with the population network ``net`` and ``n`` empty learner states."""
        c = self.config
        return Params(net, LearnerState.empty(n, 4 if self.use_graph else 3, self.n_kc, 2 * c.dim, c.hidden))

    def _loop_settings(self, kind: type[_Settings], **extra) -> _Settings:
        """The loop settings of the config (``kind``: the settings class; ``extra``: its other fields)."""
        cfg = self.config
        return kind(
            epochs=cfg.epochs,
            patience=cfg.early_stop_patience(),
            min_delta=1e-4,
            batch_size=cfg.batch_size,
            lr=cfg.learning_rate(),
            buckets=self._buckets(),
            **extra,
        )

    def _train(
        self, data: Interactions, frame: pl.DataFrame, train: Sequences, vframe: pl.DataFrame | None, unit, key, hooks: dict
    ) -> loop.FitResult:
        """Fit the population parameters on the training windows (the variant's inference and objective).

        Args:
            data: the training interactions.
            frame: their single-KC frame.
            train: the training windows of ``frame``.
            vframe: the validation learners' frame, or ``None``.
            unit: seconds per day, or ``None`` (step index as time).
            key: the ``key`` given to :meth:`fit`.
            hooks: ``on_epoch``, ``checkpoint``, ``resume`` and ``on_step`` of the loop.

        Returns:
            The loop's :class:`~kt.train.loop.FitResult`.
        """
        cfg = self.config
        seeds = np.random.default_rng(seed_of(key)).integers(0, 2**31 - 1, 2)
        hyper = self._hyper()
        valid_score = None if vframe is None else self._valid_scorer(vframe, unit, hyper, self._buckets())
        settings = self._loop_settings(tr.Settings, weight_decay=cfg.weight_decay, clip_norm=cfg.clip_norm)
        return tr.fit(self._new_net(int(seeds[0])), hyper, train, unit, settings, int(seeds[1]), valid_score=valid_score, **hooks)

    def _valid_scorer(self, vframe: pl.DataFrame, unit, hyper, buckets):
        cfg = self.config
        if cfg.select_on == "auc":
            vseqs = build_sequences(vframe)
            return lambda net, _state: tr.auc_score(net, vseqs, unit, hyper, cfg.batch_size, buckets)
        if cfg.select_on == "elbo":
            vseqs = build_sequences(vframe, window=cfg.window, min_len=2)
            key = jax.random.key(0, impl="rbg")
            return lambda net, _state: tr.elbo_score(net, vseqs, unit, hyper, cfg.batch_size, buckets, key)
        pos = vframe.select(pl.int_range(pl.len()).over("user_idx").alias("p"))["p"]
        hist = vframe.filter(pos < cfg.select_history)
        fut = vframe.filter((pos >= cfg.select_history) & (pos < cfg.select_history + cfg.select_horizon))
        if fut.height == 0:
            raise KTError(f"--set select_on=f1: validation learners need more than select_history={cfg.select_history} attempts")

        def f1_score(net, _state):
            users, st = self._encode_states(hist, unit, net=net)
            out = self._forecast(fut, unit, users, st, net=net)
            y = fut["correct"].to_numpy().astype(np.float64)
            f1 = sample_f1(y, out["pos_share"])
            acc = float(np.mean(np.where(y > 0, out["pos_share"], 1 - out["pos_share"])))
            return tr.selected(f1, {"f1": f1, "accuracy": acc, "auc": metrics.auc(y, out["prob"])})

        return f1_score

    # -- encoding -------------------------------------------------------------------------------
    def _batches(self, seqs: Sequences):
        """(indices, padded sub-sequences) in length order for prediction (:func:`kt.models.psikt.train.predict_batches`)."""
        return tr.predict_batches(seqs, self.n_kc, self.config.batch_size, self._buckets())

    def _encode_states(self, frame: pl.DataFrame, unit, net=None) -> tuple[list[str], dict[str, np.ndarray]]:
        """Posterior after each learner's whole history in ``frame`` (full sequences, no windows)."""
        net = self.params.net if net is None else net
        hyper = self._hyper()
        seqs = build_sequences(frame)
        n = seqs.mask.shape[0]
        out: dict[str, np.ndarray] = {}
        for idx, sub in self._batches(seqs):
            res = _final(net, tr.to_batch(sub, unit), hyper)
            for k, v in res.items():
                if k not in out:
                    out[k] = np.zeros((n, *v.shape[1:]), np.float32)
                out[k][idx] = np.asarray(v)[: len(idx)]
        days = tr.seq_days(seqs, unit)
        last = np.maximum(seqs.lengths - 1, 0)
        out["t_last"] = days[np.arange(n), last] if n else np.zeros(0)
        out["t_first"] = days[:, 0] if n else np.zeros(0)
        uid = frame["user_id"].to_numpy()
        first_rows = seqs.row[:, 0] if n else np.zeros(0, np.int64)
        users = [str(uid[r]) for r in first_rows]
        return users, out

    def _store_states(self, users: list[str], st: dict[str, np.ndarray]) -> None:
        """Insert or replace learners' states (keyed by user id); each field keeps its stored dtype."""
        known = {u: i for i, u in enumerate(self.meta.get("state_users", []))}
        old = self.params.state
        rep = [(known[u], j) for j, u in enumerate(users) if u in known]
        add = [j for j, u in enumerate(users) if u not in known]
        fields = {}
        for k in self._state_fields:
            arr = getattr(old, k).copy()
            v = np.asarray(st[k], arr.dtype)
            if rep:
                a, b = zip(*rep)
                arr[list(a)] = v[list(b)]
            if add:
                arr = np.concatenate([arr, v[add]])
            fields[k] = arr
        self.meta["state_users"] = list(self.meta.get("state_users", [])) + [users[j] for j in add]
        self.params = dataclasses.replace(self.params, state=type(old)(**fields))

    def _states_for(self, data: Interactions | None) -> tuple[list[str], dict[str, np.ndarray]]:
        self._require_fitted()
        if data is None:
            st = self.params.state
            return list(self.meta.get("state_users", [])), {k: getattr(st, k) for k in self._state_fields}
        return self._encode_states(self._frame(data), self._unit(data))

    # -- predictions ----------------------------------------------------------------------------
    def _predict_probs(self, data: Interactions):
        frame = self._frame(data)
        unit = self._unit(data)
        hyper = self._hyper()
        seqs = build_sequences(frame)
        attempt = frame["attempt"].to_numpy()
        probs = np.zeros(frame.height)
        for _, sub in self._batches(seqs):
            att = np.where(sub.mask, attempt[np.maximum(sub.row, 0)], -1)
            T = att.shape[1]
            first = np.ones_like(att, bool)
            first[:, 1:] = att[:, 1:] != att[:, :-1]
            qpos = np.maximum.accumulate(np.where(first, np.arange(T)[None, :], 0), axis=1)
            batch = tr.to_batch(sub, unit)
            qpos = np.concatenate([qpos, np.zeros((batch.mask.shape[0] - len(qpos), T), qpos.dtype)])
            p = np.asarray(_next_probs_q(self.params.net, batch, jnp.asarray(qpos, jnp.int32), hyper))[: sub.mask.shape[0]]
            probs[sub.row[sub.mask]] = p[sub.mask]
        return _fuse(probs, attempt, data.n_rows), {}

    def predict_ahead(self, history: Interactions | None, future: Interactions, mode: str = "nonacc") -> pl.DataFrame:
        """Open-loop multi-step prediction: observe ``history``, predict all of ``future``.

        Each learner's last posterior (after its history) is propagated
        through the true future time gaps: traits m <- H m, P <- H P H^T + R,
        knowledge through the OU map at the propagated trait mean; outcomes
        of ``future`` are never used. Learners without history start from
        the n = 0 prior.

        Args:
            history: observed interactions, or ``None`` to start from the
                states stored in the model (after training / ``update``).
            future: interactions to predict (their outcomes are only copied
                to the output).
            mode: ``nonacc`` (open loop, PSI-KT's protocol); ``acc`` feeds
                thresholded predictions back through the generic
                pseudo-learner implementation (needs ``history``).

        Returns:
            ``user_id``, ``skill_id``, ``item_id``, ``position`` (index in
            the learner's whole sequence), ``step`` (1-based index after the
            history), ``line``, ``correct``, ``prob`` (mean P(correct), for
            AUC) and ``sample_positive_rate`` (share of MC points predicting
            correct, for per-sample accuracy/F1; see :func:`sample_f1`).
        """
        self._require_fitted()
        if mode in ("acc", "accumulative"):
            if history is None:
                raise KTError("predict_ahead mode 'acc' needs the history interactions")
            return super().predict_ahead(history, future, mode)
        if mode not in ("nonacc", "non-accumulative", "open"):
            raise KTError(f"--mode {mode!r}: choose nonacc (non-accumulative) or acc (accumulative)")
        users, st = self._states_for(history)
        fframe = self._frame(future)
        out = self._forecast(fframe, self._unit(future), users, st)
        attempt = fframe["attempt"].to_numpy()
        prob = _fuse(out["prob"], attempt, future.n_rows)
        share = _fuse(out["pos_share"], attempt, future.n_rows)
        index = {u: i for i, u in enumerate(users)}
        f = future.frame.select(
            "user_id", "skill_id", "item_id", "line", "correct", (pl.int_range(pl.len()).over("user_idx") + 1).alias("step")
        )
        seen = np.array([st["count"][index[u]] if u in index else 0 for u in f["user_id"].to_list()], np.int64)
        return f.with_columns(
            pl.Series("position", seen + f["step"].to_numpy() - 1, dtype=pl.Int64),
            pl.Series("prob", prob),
            pl.Series("sample_positive_rate", share),
        ).select("user_id", "skill_id", "item_id", "position", "step", "line", "correct", "prob", "sample_positive_rate")

    def _forecast(
        self, fframe: pl.DataFrame, unit, users: list[str], st: dict[str, np.ndarray], net=None
    ) -> dict[str, np.ndarray]:
        """Open-loop predictions for every row of ``fframe`` from the given start states."""
        net = self.params.net if net is None else net
        hyper = self._hyper()
        index = {u: i for i, u in enumerate(users)}
        seqs = build_sequences(fframe)
        n = seqs.mask.shape[0]
        uid = fframe["user_id"].to_numpy()
        srow = np.array([index.get(str(uid[r]), -1) for r in seqs.row[:, 0]], np.int64) if n else np.zeros(0, np.int64)
        has = srow >= 0
        days = tr.seq_days(seqs, unit)
        if unit is None:  # step index continues after the history
            prev = np.where(has, st["count"][np.maximum(srow, 0)] if len(users) else 0, 0)
            days = np.where(seqs.mask, prev[:, None] + np.arange(seqs.mask.shape[1])[None, :], np.nan)
        t_last = np.where(has, st["t_last"][np.maximum(srow, 0)] if len(users) else 0.0, days[:, 0] if n else 0.0)
        dt = np.zeros_like(days)
        dt[:, 0] = days[:, 0] - t_last
        dt[:, 1:] = days[:, 1:] - days[:, :-1]
        dt = np.where(seqs.mask & np.isfinite(dt), np.maximum(dt, 0.0), 0.0)
        prob = np.zeros(fframe.height)
        share = np.zeros(fframe.height)
        S, K = hyper.n_traits, hyper.n_kc
        for idx, sub in self._batches(seqs):
            B = _pow2(len(idx))
            T = sub.mask.shape[1]

            def pad(x, fill=0):
                return np.concatenate([x, np.full((B - len(x), *x.shape[1:]), fill, x.dtype)])

            rows = np.maximum(srow[idx], 0)
            if len(users):
                start = {
                    "s_mean": st["s_mean"][rows],
                    "s_std": st["s_std"][rows],
                    "z_mean": st["z_mean"][rows],
                    "z_std": st["z_std"][rows],
                }
            else:
                start = {
                    "s_mean": np.zeros((len(idx), S), np.float32),
                    "s_std": np.ones((len(idx), S), np.float32),
                    "z_mean": np.zeros((len(idx), K), np.float32),
                    "z_std": np.ones((len(idx), K), np.float32),
                }
            start = {k: jnp.asarray(pad(v.astype(np.float32), 1.0)) for k, v in start.items()}
            d = np.zeros((len(idx), T), np.float32)
            d[:, : min(T, dt.shape[1])] = dt[idx, :T]
            p, s, _, _ = _rollout(
                net,
                start,
                jnp.asarray(pad(np.maximum(sub.skill, 0).astype(np.int32))),
                jnp.asarray(pad(d)),
                jnp.asarray(pad(sub.mask & (sub.skill >= 0))),
                jnp.asarray(pad(has[idx])),
                hyper,
            )
            p, s = np.asarray(p)[: len(idx)], np.asarray(s)[: len(idx)]
            prob[sub.row[sub.mask]] = p[sub.mask]
            share[sub.row[sub.mask]] = s[sub.mask]
        return {"prob": prob, "pos_share": share}

    def mastery(self, data: Interactions | None = None, at_days: float | None = None) -> pl.DataFrame:
        """Posterior knowledge per learner x KC after the history.

        Args:
            data: interactions to encode; ``None`` = the learners stored in
                the model (after training or ``update``).
            at_days: propagate each learner's state this many days past its
                last interaction (open loop) first.

        Returns:
            ``user_id``, ``skill_id``, ``z_mean``, ``z_std`` and
            ``p_correct`` = E[sigmoid(z)].
        """
        users, st = self._states_for(data)
        hyper = self._hyper()
        zm, zv = st["z_mean"].astype(np.float32), st["z_std"].astype(np.float32) ** 2
        if at_days is not None and len(users):
            s_cov = np.stack([np.diag(v) for v in st["s_std"] ** 2]).astype(np.float32)
            _, _, zm, zv = _propagate(
                self.params.net,
                jnp.asarray(st["s_mean"]),
                jnp.asarray(s_cov),
                jnp.asarray(zm),
                jnp.asarray(zv),
                jnp.full((len(users),), float(at_days), jnp.float32),
                hyper,
            )
            zm, zv = np.asarray(zm), np.asarray(zv)
        p, _ = core.emission_probs(jnp.asarray(zm), jnp.asarray(zv), hyper)
        K = self.n_kc
        return pl.DataFrame(
            {
                "user_id": pl.Series([u for u in users for _ in range(K)], dtype=pl.String),
                "skill_id": np.tile(np.asarray(self._fitted_vocab.skill_id), len(users)),
                "z_mean": zm.ravel().astype(np.float64),
                "z_std": np.sqrt(zv).ravel().astype(np.float64),
                "p_correct": np.asarray(p).ravel().astype(np.float64),
            }
        )

    def traits(self, data: Interactions | None = None) -> pl.DataFrame:
        """Per-learner trait posterior after the history (alpha per day, mu, sigma, gamma).

        Means and standard deviations are taken over the stratified
        quantile points of the diagonal q(s); ``sigma`` is sqrt(E[sigma^2])
        (only sigma^2 enters the model).

        Args:
            data: interactions to encode; ``None`` = the stored learners.

        Returns:
            ``user_id``, ``alpha``, ``alpha_std``, ``mu``, ``mu_std``,
            ``sigma``, ``sigma2``, ``sigma2_std``, ``gamma``, ``gamma_std``
            (gamma is 0 without a graph).
        """
        users, st = self._states_for(data)
        hyper = self._hyper()
        q = np.asarray(core.quantile_noise(hyper.mc), np.float64)
        m, s = st["s_mean"].astype(np.float64), st["s_std"].astype(np.float64)
        x = m[..., None] + s[..., None] * q  # [N, S, Q]
        a = (np.logaddexp(0.0, x[:, 0]) if self.config.alpha_link == "softplus" else np.maximum(x[:, 0], 0)) + core.ALPHA_FLOOR
        mu, s2 = x[:, 1], x[:, 2] ** 2
        g = 1.0 / (1.0 + np.exp(-x[:, 3])) if hyper.use_graph else np.zeros_like(a)
        return pl.DataFrame(
            {
                "user_id": pl.Series(users, dtype=pl.String),
                "alpha": a.mean(1),
                "alpha_std": a.std(1),
                "mu": mu.mean(1),
                "mu_std": mu.std(1),
                "sigma": np.sqrt(s2.mean(1)),
                "sigma2": s2.mean(1),
                "sigma2_std": s2.std(1),
                "gamma": g.mean(1),
                "gamma_std": g.std(1),
            }
        )

    def graph(self):
        """The learned prerequisite graph (A = p, the matrix of the dynamics); None without a graph."""
        from kt.data.graph import PrerequisiteGraph

        self._require_fitted()
        if not self.use_graph:
            return None
        p = self._graph_probs()
        np.fill_diagonal(p, 0.0)
        fits = len(self.meta.get("fits", []))
        meta = {"fits": fits, "prob": f"mean edge probability over {fits} fits"} if fits > 1 else {}
        g = PrerequisiteGraph(list(self.vocab.skill_id), p, "learned", meta=meta)
        return self._with_stability(g)

    def _with_stability(self, g):
        """The graph with the resampled fits' per-edge stability (``fit_resample``); unchanged otherwise."""
        return g

    def _graph_probs(self) -> np.ndarray:
        """The K x K edge probabilities the exported graph holds."""
        net = self.params.net
        return np.asarray(core.graph_probs(net.u, net.M, self.config.existence_offset()), np.float64)

    def graph_factors(self) -> dict[str, np.ndarray]:
        """``existence`` sig(u_i.u_k + edge_bias) (symmetric) and ``orientation`` sig(u_i^T (M - M^T) u_k), of the fit used for predictions."""
        self._require_fitted()
        e, o = core.graph_factors(self.params.net.u, self.params.net.M, self.config.existence_offset())
        return {"existence": np.asarray(e, np.float64), "orientation": np.asarray(o, np.float64)}

    def params_table(self) -> pl.DataFrame:
        """Generative parameters as a tidy table: H, R, the trait and knowledge priors."""
        self._require_fitted()
        net = self.params.net
        names = ["alpha_raw", "mu", "sigma", "gamma_raw"][: net.m_s0.shape[0]]
        rows = []
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                rows.append(("H", a, b, float(net.H[i, j])))
            rows.append(("R_var", a, "", float(jnp.exp(net.log_R[i]))))
            rows.append(("s0_mean", a, "", float(net.m_s0[i])))
            rows.append(("s0_var", a, "", float(jnp.exp(net.log_s0[i]))))
        rows.append(("z0_mean", "", "", float(net.m_z0)))
        rows.append(("z0_var", "", "", float(jnp.exp(net.log_z0))))
        return pl.DataFrame(rows, schema=["param", "row", "col", "value"], orient="row")

    # -- continual learning ---------------------------------------------------------------------
    def update(self, new: Interactions, *, steps: int | None = None, lr: float | None = None, key=0) -> dict:
        """Continual update: new interactions refine the learners' posteriors; the network is frozen.

        For each arrival (one interaction per learner at a time, in time
        order) the stored posterior is propagated to the arrival's time and
        becomes the prior; the arrival is encoded on its own and its
        posterior optimised for ``steps`` Adam steps (see
        :func:`kt.models.psikt.core.arrival_update`), then stored as the
        learner's new state. Learners the model has not seen start from the
        n = 0 prior. The graph, H, R and the priors stay unchanged.

        Args:
            new: new interactions (encoded with this model's vocabulary).
            steps: optimisation steps per arrival (default ``update_steps``).
            lr: their learning rate (default ``update_lr``).
            key: PRNG key or integer seed.

        Returns:
            Report: ``arrivals``, ``learners``, ``new_learners``,
            ``interactions``, ``seconds`` (total), ``seconds_per_update``
            (mean wall time of one arrival round after the first, which
            includes compilation), ``first_update_seconds``.
        """
        self._require_fitted()
        cfg = self.config
        steps = cfg.update_steps if steps is None else int(steps)
        lr = cfg.update_lr if lr is None else float(lr)
        nrng = np.random.default_rng(seed_of(key))
        t_start = time.perf_counter()
        frame = self._frame(new)
        unit = self._unit(new)
        hyper = self._hyper()
        uid = frame["user_id"].to_numpy().astype(str)
        pos = frame.select(pl.int_range(pl.len()).over("user_idx").alias("p"))["p"].to_numpy()
        users_new = list(dict.fromkeys(uid.tolist()))
        known_before = set(self.meta.get("state_users", []))
        fresh = [u for u in users_new if u not in known_before]
        if fresh:  # new learners enter with an empty state (count 0 -> the n = 0 prior)
            S, K, Hd, P = hyper.n_traits, self.n_kc, 2 * cfg.dim, cfg.hidden
            e = LearnerState.empty(len(fresh), S, K, Hd, P)
            self._store_states(fresh, {k: getattr(e, k) for k in _STATE_FIELDS})
        index = {u: i for i, u in enumerate(self.meta["state_users"])}
        sidx = np.array([index[u] for u in uid], np.int64)
        if unit is None:
            base = self.params.state.count[sidx].astype(np.float64)
            t = base + pos  # the step index continues after the stored history
        else:
            t = frame["timestamp"].to_numpy().astype(np.float64) / unit
        skill = frame["skill_idx"].to_numpy()
        correct = frame["correct"].to_numpy()
        n_rounds = int(pos.max()) + 1 if len(pos) else 0
        timings = []
        backwards = 0
        st = self.params.state
        fields = {k: getattr(st, k).copy() for k in _STATE_FIELDS}
        for j in range(n_rounds):
            t0 = time.perf_counter()
            rows = np.flatnonzero(pos == j)
            who = sidx[rows]
            B = _pow2(len(rows))
            first = fields["count"][who] <= 0
            t_first = np.where(first, t[rows], fields["t_first"][who])
            dt = t[rows] - fields["t_last"][who]
            backwards += int(((dt < 0) & ~first).sum())
            dt = np.where(first, 0.0, np.maximum(dt, 0.0))
            tau = t[rows] - t_first

            def pad(x, dtype):
                x = np.asarray(x).astype(dtype)
                return jnp.asarray(np.concatenate([x, np.zeros((B - len(x), *x.shape[1:]), dtype)]))

            arr = core.Arrival(
                pad(np.maximum(skill[rows], 0), np.int32),
                pad(correct[rows], np.int32),
                pad(dt, np.float32),
                pad(tau, np.float32),
                pad(skill[rows] >= 0, bool),
                pad(np.ones(len(rows), bool), bool),
            )
            state = {k: pad(fields[k][who], np.float32) for k in _NET_FIELDS}
            res = _arrival(self.params.net, state, arr, tr.noise_key(nrng), hyper, steps, lr)
            for k in _NET_FIELDS:
                fields[k][who] = np.asarray(res[k])[: len(rows)]
            fields["t_last"][who] = t[rows]
            fields["t_first"][who] = t_first
            timings.append(time.perf_counter() - t0)
        self.params = Params(self.params.net, LearnerState(**fields))
        if backwards:
            self._warn(f"{new.source}: {backwards} new interactions are older than the learner's last one; gap set to 0")
        total = time.perf_counter() - t_start
        steady = timings[1:] or timings
        report = {
            "arrivals": n_rounds,
            "learners": len(users_new),
            "new_learners": len(fresh),
            "interactions": int(frame.height),
            "steps": steps,
            "seconds": total,
            "first_update_seconds": timings[0] if timings else 0.0,
            "seconds_per_update": float(np.mean(steady)) if steady else 0.0,
        }
        self.meta.setdefault("updates", []).append(
            {k: report[k] for k in ("arrivals", "learners", "new_learners", "interactions", "seconds")}
        )
        return report


def _fuse(values: np.ndarray, attempt: np.ndarray, n: int) -> np.ndarray:
    """Mean of per-KC values per attempt (identity for single-KC data)."""
    if len(values) == n and (attempt == np.arange(n)).all():
        return values
    s = np.bincount(attempt, weights=values, minlength=n)
    c = np.bincount(attempt, minlength=n)
    return s / np.maximum(c, 1)


def sample_f1(y: np.ndarray, pos_share: np.ndarray) -> float:
    """F1 of per-sample 0.5-threshold decisions, pooled over the MC points.

    With q = the share of points predicting correct: TP = sum y q,
    FP = sum (1 - y) q, FN = sum y (1 - q).
    """
    tp = float(np.sum(y * pos_share))
    fp = float(np.sum((1 - y) * pos_share))
    fn = float(np.sum(y * (1 - pos_share)))
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0

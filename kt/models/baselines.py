"""Reference baselines that also serve as test doubles for the whole CLI.

* ``majority``: the global correctness rate of the training data.
* ``kc-rate``: each KC's training correctness rate, shrunk toward the global
  rate with ``prior`` pseudo-attempts. A question with several KCs gets the
  mean of its KCs' rates; a KC unseen in training gets the global rate.

Neither uses the learner's history, so they bound from below what a
knowledge-tracing model should reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import numpy as np
import polars as pl
from jaxtyping import Float

from kt.data.schema import Interactions, correct_rate
from kt.errors import KTError
from kt.models.base import Model, register
from kt.models.fusion import question_means


class RateParams(eqx.Module):
    """Global rate and per-KC rates (length K, may be 0 for ``majority``)."""

    global_rate: Float[np.ndarray, ""]
    kc_rate: Float[np.ndarray, " K"]


@dataclass(frozen=True)
class MajorityConfig:
    """``majority`` has no options."""


@dataclass(frozen=True)
class KCRateConfig:
    """Options of ``kc-rate``.

    Attributes:
        prior: pseudo-attempts at the global rate added to every KC (>= 0).
    """

    prior: float = 10.0

    def validate(self) -> None:
        """Reject invalid values."""
        if not 0 <= self.prior < float("inf"):  # also rejects NaN
            raise KTError(f"--set prior={self.prior}: must be a finite number >= 0")


def _kc_counts(data: Interactions, n_kc: int) -> tuple[np.ndarray, np.ndarray]:
    ex = data.explode().filter(pl.col("skill_idx") >= 0)
    k = ex["skill_idx"].to_numpy()
    y = ex["correct"].to_numpy().astype(np.float64)
    return np.bincount(k, minlength=n_kc).astype(np.float64), np.bincount(k, weights=y, minlength=n_kc)


class _RateModel(Model):
    def _skeleton(self) -> RateParams:
        return RateParams(np.zeros((), np.float64), np.zeros(self._n_kc(), np.float64))

    def _n_kc(self) -> int:
        return 0

    def _predict_probs(self, data: Interactions) -> np.ndarray:
        g = float(self.params.global_rate)
        if self._n_kc() == 0:
            return np.full(data.n_rows, g)
        table = np.append(np.asarray(self.params.kc_rate), g)  # index -1 -> global rate
        ex = data.explode()
        rates = table[ex["skill_idx"].to_numpy()]
        return question_means(ex["attempt"], r=rates)["r"].to_numpy()


@register
class Majority(_RateModel):
    """Predicts the global training correctness rate for every attempt."""

    name = "majority"
    Config = MajorityConfig
    summary = "global correctness rate (baseline)"

    def fit(self, data: Interactions, *, valid=None, key=None, progress=None) -> "Majority":
        """Record the mean outcome of ``data``; returns ``self``."""
        self.vocab = data.vocab
        self.params = RateParams(np.asarray(data.frame["correct"].mean(), np.float64), np.zeros(0, np.float64))
        return self

    def mastery(self, data: Interactions) -> pl.DataFrame:
        """The global rate for every learner x practised KC."""
        self._require_fitted()
        pairs = data.explode().select("user_id", "skill_id").unique(maintain_order=True)
        return pairs.with_columns(pl.lit(float(self.params.global_rate)).alias("mastery"))


@register
class KCRate(_RateModel):
    """Per-KC correctness rate with a prior toward the global rate."""

    name = "kc-rate"
    Config = KCRateConfig
    summary = "per-KC correctness rate with a prior (baseline)"

    def _n_kc(self) -> int:
        return len(self.vocab.skill_id) if self.vocab else 0

    def fit(self, data: Interactions, *, valid=None, key=None, progress=None) -> "KCRate":
        """Count attempts and successes per KC of ``data``; returns ``self``."""
        self.vocab = data.vocab
        n, c = _kc_counts(data, self._n_kc())
        g = correct_rate(data.frame)
        rate = (c + self.config.prior * g) / np.maximum(n + self.config.prior, 1e-12)
        rate = np.where(n + self.config.prior > 0, rate, g)
        self.params = RateParams(np.asarray(g, np.float64), rate.astype(np.float64))
        self.meta = {"train_attempts_per_kc_median": float(np.median(n)) if len(n) else 0.0}
        return self

    def mastery(self, data: Interactions) -> pl.DataFrame:
        """Each learner's own smoothed rate on each KC they practised.

        Returns:
            ``user_id``, ``skill_id``, ``attempts``, ``mastery`` where mastery
            = (correct + prior x KC rate) / (attempts + prior).
        """
        self._require_fitted()
        g = float(self.params.global_rate)
        table = np.append(np.asarray(self.params.kc_rate), g)
        ex = data.explode()
        agg = ex.group_by("user_id", "skill_id", "skill_idx", maintain_order=True).agg(
            pl.len().alias("attempts"), pl.col("correct").sum().alias("n_correct")
        )
        base = table[agg["skill_idx"].to_numpy()]
        m = (agg["n_correct"].to_numpy() + self.config.prior * base) / (agg["attempts"].to_numpy() + self.config.prior)
        return agg.select("user_id", "skill_id", "attempts").with_columns(pl.Series("mastery", m))

"""Learner-level splits and k-fold assignment, seeded and reproducible."""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.errors import KTError


def split_learners(users: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Partition learner ids into groups of the given fractions.

    Args:
        users: distinct learner ids.
        fractions: group sizes, summing to 1 (the last group takes the rest).
        seed: permutation seed.

    Returns:
        One sorted id array per fraction; every learner is in exactly one.
    """
    if not all(f >= 0 for f in fractions) or not abs(sum(fractions) - 1) <= 1e-9:  # NaN-safe
        raise KTError(f"split fractions {fractions} must be non-negative and sum to 1")
    users = np.sort(np.unique(users))
    perm = np.random.default_rng(seed).permutation(users)
    cuts = np.round(np.cumsum(fractions)[:-1] * len(users)).astype(int)
    return [np.sort(g) for g in np.split(perm, cuts)]


def kfold(users: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Assign learners to k disjoint folds of near-equal size.

    Args:
        users: distinct learner ids.
        k: number of folds (>= 2 and <= number of learners).
        seed: permutation seed.

    Returns:
        k sorted arrays of learner ids (test folds); their union is ``users``.
    """
    users = np.sort(np.unique(users))
    if not 2 <= k <= len(users):
        raise KTError(f"--folds {k}: need 2 <= folds <= number of learners ({len(users)})")
    perm = np.random.default_rng(seed).permutation(users)
    return [np.sort(f) for f in np.array_split(perm, k)]


def train_valid(data: Interactions, valid_frac: float, seed: int) -> tuple[Interactions, Interactions | None]:
    """Hold out a fraction of learners for validation.

    Args:
        data: training interactions.
        valid_frac: share of learners held out (0 = no validation set).
        seed: split seed.

    Returns:
        (train, valid) interactions; ``valid`` is ``None`` when ``valid_frac`` is 0.
    """
    if not 0 <= valid_frac < 1:
        raise KTError(f"--valid-frac {valid_frac}: must be in [0, 1)")
    if valid_frac == 0:
        return data, None
    users = data.frame["user_idx"].unique().to_numpy()
    train_u, valid_u = split_learners(users, (1 - valid_frac, valid_frac), seed)
    if len(valid_u) == 0 or len(train_u) == 0:
        return data, None
    return data.subset(train_u), data.subset(valid_u)


def resample_learners(data: Interactions, rng: np.random.Generator) -> Interactions:
    """The data of ``n_users`` learners drawn with replacement; each draw is a new learner.

    Args:
        data: interactions (frame grouped by learner, as kt.load gives it).
        rng: NumPy generator.

    Returns:
        Interactions sharing the vocabulary; ``user_idx`` = the draw number,
        ``user_id`` = ``"<original>#<draw>"``.
    """
    users = data.frame["user_idx"].to_numpy()
    if len(users) == 0:
        raise KTError(f"{data.source}: no attempts to resample")
    start = np.r_[0, np.flatnonzero(np.diff(users) != 0) + 1]
    length = np.diff(np.r_[start, len(users)])
    draw = rng.integers(0, len(start), len(start))
    n = length[draw]
    # Row indices of every drawn learner, in draw order.
    offsets = np.repeat(start[draw] - np.r_[0, np.cumsum(n)[:-1]], n)
    idx = np.arange(int(n.sum())) + offsets
    new_user = np.repeat(np.arange(len(draw), dtype=np.int32), n)
    f = data.frame[idx].with_columns(
        pl.Series("user_idx", new_user, dtype=data.frame.schema["user_idx"]),
        (pl.col("user_id").cast(pl.Utf8) + pl.lit("#") + pl.Series("d", new_user).cast(pl.Utf8)).alias("user_id"),
    )
    return Interactions(f, data.vocab, data.source, data.colmap, data.fmt, (), dict(data.stats))

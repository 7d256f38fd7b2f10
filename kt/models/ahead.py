"""Open-loop (multi-step) prediction on top of any model's ``predict``: the generic ``Model.predict_ahead``.

After a learner's first h attempts (the history), the next N attempts are
predicted without seeing their outcomes (EVALUATION.md §7, pyKT's
"predict future"):

* non-accumulative (pyKT ``use_pred=0``): every future attempt is predicted
  from the history alone.
* accumulative (pyKT ``use_pred=1``): future attempt j is predicted from the
  history plus future attempts 1..j-1 whose outcomes are replaced by the
  model's own predictions, thresholded as 1[p >= 0.5].

``model.predict`` predicts each attempt from the attempts before it, so both
modes reduce to predicting the last attempt of a made-up learner whose
sequence is the history followed by the future attempts that may be seen.
Such pseudo-learners are batched into few ``predict`` calls. This works for
every model; models with a cheaper open-loop propagation (PSI-KT) override
``Model.predict_ahead`` instead. The evaluation protocol built on it (the
history/future split and the metrics) is :mod:`kt.eval.multistep`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.data.vocab import Vocab
from kt.errors import KTError

# Accepted spellings -> the short names passed to Model.predict_ahead.
MODES = {"nonacc": "nonacc", "non-accumulative": "nonacc", "acc": "acc", "accumulative": "acc"}
MODE_NAMES = {"nonacc": "non-accumulative", "acc": "accumulative"}
# Rows per predict() call; bounds memory when histories are long.
MAX_ROWS = 2_000_000


def canonical_mode(mode: str) -> str:
    """``nonacc`` or ``acc`` for any accepted spelling.

    Raises:
        KTError: unknown mode.
    """
    try:
        return MODES[mode]
    except KeyError:
        raise KTError(f"--mode {mode!r}: choose nonacc (non-accumulative) or acc (accumulative)") from None


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``range(s, s + l)`` for each (s, l), vectorised."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts.astype(np.int64), lengths) + np.arange(total, dtype=np.int64) - offsets


def _pseudo_predict(model, combined: pl.DataFrame, segments: np.ndarray, vocab: Vocab, source: str) -> pl.DataFrame:
    """Predict the last row of each pseudo-learner.

    Args:
        model: fitted model.
        combined: frame the segments index into.
        segments: ``[P, 4]`` int array: per pseudo-learner, (start, length)
            of its history and (start, length) of its seen future, the
            last row of which is the target.
        vocab: vocabulary of the model (KCs, items).
        source: name for messages.

    Returns:
        ``model.predict`` rows of the P targets, in order.
    """
    out = []
    lengths = segments[:, 1] + segments[:, 3]
    ends = np.cumsum(lengths)
    lo = 0
    while lo < len(segments):
        # as many pseudo-learners as fit in MAX_ROWS (at least one)
        hi = max(lo + 1, int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + MAX_ROWS, side="right")))
        seg = segments[lo:hi]
        starts = np.stack([seg[:, 0], seg[:, 2]], axis=1).ravel()
        lens = np.stack([seg[:, 1], seg[:, 3]], axis=1).ravel()
        idx = _ranges(starts, lens)
        per = seg[:, 1] + seg[:, 3]
        pid = np.repeat(np.arange(len(seg), dtype=np.int32), per)
        names = [f"pseudo{i:09d}" for i in range(len(seg))]
        frame = combined[idx].with_columns(
            pl.Series("user_idx", pid, dtype=pl.Int32),
            pl.Series("user_id", np.asarray(names, dtype=object)[pid], dtype=pl.String),
        )
        pseudo = Interactions(frame, Vocab(user_id=names, skill_id=vocab.skill_id, item_id=vocab.item_id), source)
        preds = model.predict(pseudo)
        out.append(preds[(np.cumsum(per) - 1).tolist()])
        lo = hi
    return pl.concat(out, how="vertical_relaxed") if out else pl.DataFrame()


def predict_ahead(model, history: Interactions, future: Interactions, mode: str = "nonacc") -> pl.DataFrame:
    """Open-loop predictions of ``future`` after ``history``, for any model.

    Args:
        model: fitted kt model (only its ``predict`` is used).
        history: observed attempts (learner-sorted).
        future: attempts to predict, per learner in order, right after
            that learner's history (learner-sorted).
        mode: ``nonacc`` (each future attempt from the history alone) or
            ``acc`` (earlier future attempts are fed back with outcome
            1[p >= 0.5]).

    Returns:
        One row per row of ``future.frame``, in its order: ``user_id``,
        ``skill_id``, ``item_id``, ``position`` (index in the learner's full
        sequence), ``step`` (1-based index after the history), ``line``,
        ``correct`` (the true outcome), ``prob`` and any extra columns the
        model's ``predict`` returns (e.g. ``prob_kc``).
    """
    mode = canonical_mode(mode)
    H, F = history.frame, future.frame
    if F.height == 0:
        raise KTError(f"{future.source}: nothing to predict (no attempts after the history)")
    hu = H["user_idx"].to_numpy()
    fu = F["user_idx"].to_numpy()
    if (np.diff(hu) < 0).any() or (np.diff(fu) < 0).any():
        raise KTError("predict_ahead: history and future must be sorted by learner (as loaded)")
    h_start = np.searchsorted(hu, fu, side="left")
    h_len = np.searchsorted(hu, fu, side="right") - h_start
    f_first = np.searchsorted(fu, fu, side="left")  # first future row of the same learner
    step = np.arange(F.height) - f_first
    base = H.height
    drop = [c for c in ("attempt",) if c in F.columns]
    if mode == "nonacc":
        seg = np.stack([h_start, h_len, base + np.arange(F.height), np.ones(F.height, np.int64)], axis=1)
        combined = pl.concat([H, F], how="vertical_relaxed")
        preds = _pseudo_predict(model, combined, seg, history.vocab, future.source)
    else:
        fed = F["correct"].to_numpy().copy()
        parts: list[tuple[np.ndarray, pl.DataFrame]] = []
        for j in range(int(step.max()) + 1):
            rows = np.flatnonzero(step == j)
            combined = pl.concat(
                [H, F.with_columns(pl.Series("correct", fed, dtype=F.schema["correct"]))], how="vertical_relaxed"
            )
            seg = np.stack([h_start[rows], h_len[rows], base + f_first[rows], np.full(len(rows), j + 1)], axis=1)
            pr = _pseudo_predict(model, combined, seg, history.vocab, future.source)
            fed[rows] = (pr["prob"].to_numpy() >= 0.5).astype(fed.dtype)  # the model's own guess becomes the outcome
            parts.append((rows, pr))
        order = np.concatenate([r for r, _ in parts])
        preds = pl.concat([p for _, p in parts], how="vertical_relaxed")[np.argsort(order, kind="stable").tolist()]
    extra = [c for c in preds.columns if c not in ("user_id", "skill_id", "item_id", "position", "line", "correct")]
    return (
        F.drop(drop)
        .select("user_id", "skill_id", "item_id", "line", "correct")
        .with_columns(
            pl.Series("position", h_len + step, dtype=pl.Int64),
            pl.Series("step", step + 1, dtype=pl.Int64),
            *(preds[c] for c in extra),
        )
        .select("user_id", "skill_id", "item_id", "position", "step", "line", "correct", *extra)
    )

"""Learner-level cross-validation and multi-model comparison on one split.

Learners, never attempts, are split (EVALUATION.md §6):

* ``kfold``: k shuffled learner folds (explicit seed); each fold is the test
  set once, and the validation learners (early stopping) come from that
  fold's training learners (``valid_frac``).
* ``pykt``: a fixed 20% of learners is the test set (seed 1024, pyKT's);
  the other 80% form k folds; model k trains on k-1 folds, early-stops on
  fold k, and every model is scored on the same test set.

Metrics are reported per fold and as mean ± sample standard deviation.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kt.data.schema import Interactions
from kt.data.splits import kfold, split_learners, train_valid
from kt.errors import KTError, check_choice
from kt.eval.protocols import EvalSpec

SCHEMES = ("kfold", "pykt")
PYKT_TEST_SEED = 1024
PYKT_TEST_FRAC = 0.2
SUMMARY_METRICS = ("auc", "accuracy", "f1", "rmse", "logloss", "brier", "ece")


def aggregate(results: list[dict], keys: tuple[str, ...] = SUMMARY_METRICS) -> dict:
    """Mean, sample standard deviation (ddof=1), min and max of each metric over folds.

    Args:
        results: per-fold result dicts.
        keys: metric names to aggregate.

    Returns:
        ``{metric: {"mean", "std", "min", "max", "values"}}``; ``std`` is
        NaN for a single fold.
    """
    out = {}
    for k in keys:
        v = np.array([r[k] for r in results if r.get(k) is not None], dtype=np.float64)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        out[k] = {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
            "min": float(v.min()),
            "max": float(v.max()),
            "values": [float(x) for x in v],
        }
    return out


def _ids(data: Interactions, users: np.ndarray) -> list[str]:
    return [data.vocab.user_id[int(u)] for u in users]


def fit_and_evaluate(
    model_name: str,
    train: Interactions,
    test: Interactions,
    *,
    valid: Interactions | None = None,
    valid_frac: float = 0.1,
    seed: int = 0,
    spec: EvalSpec | None = None,
    sets: list[str] | None = None,
    toml_path: str | os.PathLike[str] | None = None,
    progress: Callable[[dict], None] | None = None,
    save_to: str | Path | None = None,
    options: dict | None = None,
    on_step: Callable[[int, int | None, dict], None] | None = None,
) -> dict:
    """Train a fresh model and evaluate it on held-out learners.

    Args:
        model_name: registry name.
        train: training learners.
        test: test learners (encoded with ``train``'s vocabulary).
        valid: validation learners; when ``None``, ``valid_frac`` of
            ``train``'s learners are held out (seeded).
        valid_frac: share of training learners for validation.
        seed: split and model seed.
        spec: evaluation protocol (default: next-step, question level).
        sets: ``key=value`` model options.
        toml_path: TOML file with model options.
        progress: per-epoch callback of gradient models.
        save_to: also save the fitted model to this directory.
        options: model options as Python values (after ``toml_path`` and ``sets``).
        on_step: progress hook ``(done, total, metrics)`` passed to the
            model's ``fit`` when it takes one (gradient models, BKT).

    Returns:
        The protocol's result plus ``config``, ``train_seconds``,
        ``train_learners``, ``valid_learners`` and ``training_history``
        (per-epoch records of gradient models).
    """
    from kt.models.base import create
    from kt.models.config import to_dict

    spec = (spec or EvalSpec()).checked()
    m = create(model_name, toml_path=toml_path, sets=sets, **(options or {}))
    tr, va = (train, valid) if valid is not None else train_valid(train, valid_frac, seed)
    t0 = time.perf_counter()
    extra = {"on_step": on_step} if on_step is not None and m.capabilities.on_step else {}
    m.fit(tr, valid=va, key=seed, progress=progress, **extra)
    seconds = time.perf_counter() - t0
    if save_to is not None:
        m.save(save_to)
    res = spec.run(m, test)
    res.update(
        {
            "config": to_dict(m.config),
            "seed": seed,
            "train_seconds": seconds,
            "train_learners": tr.n_users,
            "valid_learners": va.n_users if va is not None else 0,
        }
    )
    if m.meta.get("history"):
        res["training_history"] = m.meta["history"]
    if save_to is not None:
        res["model_dir"] = str(save_to)
    return res


def cross_validate(
    data: Interactions,
    model_name: str,
    *,
    folds: int = 5,
    seed: int = 0,
    valid_frac: float = 0.1,
    scheme: str = "kfold",
    spec: EvalSpec | None = None,
    sets: list[str] | None = None,
    toml_path: str | os.PathLike[str] | None = None,
    progress: Callable[[dict], None] | None = None,
    on_fold: Callable[[int, dict], None] | None = None,
    options: dict | None = None,
    on_step: Callable[[int, int | None, dict], None] | None = None,
) -> dict:
    """Learner-level k-fold cross-validation of one model.

    Args:
        data: all interactions.
        model_name: registry name.
        folds: number of folds (>= 2).
        seed: fold shuffling, validation split and model seed.
        valid_frac: share of each fold's training learners held out for
            validation (``kfold``; ``pykt`` validates on the held-out fold).
        scheme: ``kfold`` or ``pykt`` (see the module docstring).
        spec: evaluation protocol for each test set.
        sets: ``key=value`` model options.
        toml_path: TOML file with model options.
        progress: per-epoch callback of gradient models.
        on_fold: called with (fold index, fold record) after each fold.
        options: model options as Python values (after ``toml_path`` and ``sets``).
        on_step: progress hook of each fold's fit (see :func:`fit_and_evaluate`).

    Returns:
        JSON-ready dict: ``scheme``, ``model``, ``folds``, ``seed``, the
        evaluation ``settings``, ``fold_results`` (per fold: learner ids of
        the test (``kfold``) or validation (``pykt``) fold and the full
        result) and ``summary`` (mean ± std per metric).
    """
    check_choice("--protocol ", scheme, SCHEMES)
    spec = (spec or EvalSpec()).checked()
    users = data.frame["user_idx"].unique().sort().to_numpy()
    record: dict = {
        "kind": "cv",
        "scheme": scheme,
        "model": model_name,
        "folds": folds,
        "seed": seed,
        "valid_frac": valid_frac if scheme == "kfold" else None,
        "data": data.source,
        "learners": int(len(users)),
        "settings": spec.settings(),
        "std": "sample (ddof=1)",
    }
    if scheme == "pykt":
        rest, test_u = split_learners(users, (1 - PYKT_TEST_FRAC, PYKT_TEST_FRAC), PYKT_TEST_SEED)
        if len(test_u) == 0 or len(rest) < folds:
            raise KTError(f"--protocol pykt: {len(users)} learners are too few for a 20% test set and {folds} folds")
        record.update({"test_frac": PYKT_TEST_FRAC, "test_seed": PYKT_TEST_SEED, "test_users": _ids(data, test_u)})
        parts = kfold(rest, folds, seed)
        test = data.subset(test_u)
    else:
        parts = kfold(users, folds, seed)
    # Every fold's model is fitted and evaluated alike; only the data differ.
    fit = functools.partial(
        fit_and_evaluate,
        model_name,
        seed=seed,
        spec=spec,
        sets=sets,
        toml_path=toml_path,
        progress=progress,
        options=options,
        on_step=on_step,
    )
    results: list[dict[str, Any]] = []
    for k, part in enumerate(parts):
        if scheme == "kfold":
            res = fit(data.subset(np.setdiff1d(users, part)), data.subset(part), valid_frac=valid_frac)
            fold = {"fold": k, "test_users": _ids(data, part), "result": res}
        else:
            res = fit(data.subset(np.setdiff1d(np.concatenate(parts), part)), test, valid=data.subset(part))
            fold = {"fold": k, "valid_users": _ids(data, part), "result": res}
        results.append(fold)
        if on_fold is not None:
            on_fold(k, fold)
    record["fold_results"] = results
    record["summary"] = aggregate([f["result"] for f in results])
    return record


def holdout(data: Interactions, test_frac: float, seed: int) -> tuple[Interactions, Interactions]:
    """Split learners into train and test (seeded).

    Args:
        data: all interactions.
        test_frac: share of learners in the test set, in (0, 1).
        seed: permutation seed.

    Returns:
        (train, test) interactions.
    """
    if not 0 < test_frac < 1:
        raise KTError(f"--test-frac {test_frac}: must be in (0, 1)")
    users = data.frame["user_idx"].unique().to_numpy()
    tr, te = split_learners(users, (1 - test_frac, test_frac), seed)
    if len(tr) == 0 or len(te) == 0:
        raise KTError(f"--test-frac {test_frac}: {len(users)} learners give an empty train or test set")
    return data.subset(tr), data.subset(te)


def model_sets(models: list[str], sets: list[str] | None, epochs: int | None = None) -> dict[str, list[str]]:
    """Distribute ``--set`` options over several models.

    ``MODEL.KEY=VALUE`` goes to that model only; ``KEY=VALUE`` goes to every
    model that has the option (at least one must). ``epochs`` is set on the
    models that have an ``epochs`` option.

    Args:
        models: registry names.
        sets: the ``--set`` strings.
        epochs: optional epoch cap for gradient models.

    Returns:
        ``{model: [key=value, ...]}``.

    Raises:
        KTError: unknown model prefix or an option no model has.
    """
    from kt.models.base import get

    fields = {m: {f.name for f in dataclasses.fields(get(m).Config)} for m in models}
    out: dict[str, list[str]] = {m: [] for m in models}
    for pair in sets or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise KTError(f"--set {pair!r}: expected MODEL.KEY=VALUE or KEY=VALUE")
        key = key.strip()
        name, dot, opt = key.rpartition(".")
        if dot and name in out:
            out[name].append(f"{opt}={value}")
            continue
        if dot:
            raise KTError(f"--set {pair!r}: {name!r} is not one of the compared models ({', '.join(models)})")
        targets = [m for m in models if key in fields[m]]
        if not targets:
            raise KTError(f"--set {pair!r}: no compared model has option {key!r} (see `kt models`)")
        for m in targets:
            out[m].append(f"{key}={value}")
    if epochs is not None:
        for m in models:
            if "epochs" in fields[m]:
                out[m].append(f"epochs={epochs}")
    return out

"""kt.data.splits: learner-level splits and folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kt
from kt.data.splits import kfold, split_learners, train_valid
from kt.errors import KTError

USERS = np.arange(100, 200)


def _assert_partition(groups, users):
    allu = np.concatenate(groups)
    assert len(allu) == len(np.unique(users))  # disjoint
    np.testing.assert_array_equal(np.sort(allu), np.unique(users))  # covering
    for g in groups:
        np.testing.assert_array_equal(g, np.sort(g))


@pytest.mark.parametrize("fractions", [(0.8, 0.2), (0.7, 0.15, 0.15), (1.0,), (0.5, 0.0, 0.5), (1 / 3, 1 / 3, 1 / 3)])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_split_learners_partition(fractions, seed):
    groups = split_learners(USERS, fractions, seed)
    assert len(groups) == len(fractions)
    _assert_partition(groups, USERS)
    for g, f in zip(groups, fractions):
        assert abs(len(g) - f * len(USERS)) <= 1


def test_split_learners_ignores_duplicates_and_order():
    users = np.r_[USERS, USERS[::-1], USERS[:10]]
    a = split_learners(users, (0.8, 0.2), 5)
    b = split_learners(USERS, (0.8, 0.2), 5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_split_learners_seeded():
    a = split_learners(USERS, (0.8, 0.2), 7)
    b = split_learners(USERS, (0.8, 0.2), 7)
    c = split_learners(USERS, (0.8, 0.2), 8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_split_learners_string_ids():
    users = np.array([f"s{i:03d}" for i in range(30)])
    groups = split_learners(users, (0.5, 0.5), 0)
    _assert_partition(groups, users)
    assert len(groups[0]) == len(groups[1]) == 15


@pytest.mark.parametrize(
    "fractions", [(0.5, 0.6), (0.5, 0.4), (1.2, -0.2), (), (float("nan"), 1.0), (float("nan"),), (0.5, float("inf"))]
)
def test_split_learners_bad_fractions(fractions):
    with pytest.raises(KTError):
        split_learners(USERS, fractions, 0)


@pytest.mark.parametrize("k", [2, 3, 5, 7, 100])
@pytest.mark.parametrize("seed", [0, 3])
def test_kfold_partition(k, seed):
    folds = kfold(USERS, k, seed)
    assert len(folds) == k
    _assert_partition(folds, USERS)
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_seeded():
    a, b, c = kfold(USERS, 5, 1), kfold(USERS, 5, 1), kfold(USERS, 5, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("k", [1, 0, -3, 101])
def test_kfold_bad_k(k):
    with pytest.raises(KTError, match="folds"):
        kfold(USERS, k, 0)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> kt.Interactions:
    rows = ["user_id,skill_id,correct,order"]
    rng = np.random.default_rng(0)
    for u in range(40):
        for t in range(2 + u % 5):
            rows.append(f"u{u},k{rng.integers(0, 4)},{rng.integers(0, 2)},{t}")
    path: Path = tmp_path_factory.mktemp("splits") / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    return kt.load(str(path))


@pytest.mark.parametrize("frac", [0.1, 0.25, 0.5])
def test_train_valid_disjoint_and_covering(data, frac):
    tr, va = train_valid(data, frac, 0)
    assert va is not None
    tu = set(tr.frame["user_idx"].unique().to_list())
    vu = set(va.frame["user_idx"].unique().to_list())
    assert not tu & vu
    assert tu | vu == set(data.frame["user_idx"].unique().to_list())
    assert tr.n_rows + va.n_rows == data.n_rows
    assert len(vu) == round(frac * data.n_users)
    # whole learners move, in their original order; vocabulary is shared
    for part in (tr, va):
        assert part.vocab is data.vocab
        for (u,), g in part.frame.group_by("user_idx"):
            orig = data.frame.filter(data.frame["user_idx"] == u)
            assert g["line"].to_list() == orig["line"].to_list()


def test_train_valid_seeded(data):
    a = train_valid(data, 0.2, 11)[1].frame["user_id"].unique().sort().to_list()
    b = train_valid(data, 0.2, 11)[1].frame["user_id"].unique().sort().to_list()
    c = train_valid(data, 0.2, 12)[1].frame["user_id"].unique().sort().to_list()
    assert a == b
    assert a != c


def test_train_valid_zero_is_no_validation(data):
    tr, va = train_valid(data, 0.0, 0)
    assert va is None and tr is data


def test_train_valid_tiny_fraction_gives_no_empty_valid(data):
    tr, va = train_valid(data, 0.001, 0)  # rounds to zero learners
    assert va is None and tr.n_rows == data.n_rows


@pytest.mark.parametrize("frac", [1.0, 1.5, -0.1, float("nan")])
def test_train_valid_bad_fraction(data, frac):
    with pytest.raises(KTError, match="valid-frac"):
        train_valid(data, frac, 0)

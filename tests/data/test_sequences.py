"""kt.data.sequences: padding, masks, row mapping, windows, buckets and batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import kt
from kt.data.sequences import DEFAULT_BUCKETS, Sequences, batches, bucket_length, build_sequences

NAN = np.nan

# Deliberately out of order: kt sorts by learner, then timestamp.
SMALL_CSV = """user_id,skill_id,item_id,correct,timestamp
u2,B,i2,1,5
u1,A,i1,0,10
u1,B,i2,1,20
u2,A,i1,0,1
u1,A,i3,1,30
u3,C,i1,1,7
"""


@pytest.fixture
def small(tmp_path: Path) -> kt.Interactions:
    path = tmp_path / "small.csv"
    path.write_text(SMALL_CSV)
    return kt.load(str(path), min_attempts=1)


def _frame(lengths: list[int], seed: int = 0) -> pl.DataFrame:
    """A canonical-like frame with learners of the given lengths."""
    rng = np.random.default_rng(seed)
    n = int(sum(lengths))
    return pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(len(lengths)), lengths).astype(np.int32),
            "skill_idx": rng.integers(0, 20, n).astype(np.int32),
            "item_idx": rng.integers(0, 50, n).astype(np.int32),
            "correct": rng.integers(0, 2, n).astype(np.int8),
            "timestamp": np.arange(n, dtype=np.float64),
        }
    )


def test_small_frame_is_sorted_and_encoded(small):
    f = small.frame
    assert f["user_id"].to_list() == ["u1", "u1", "u1", "u2", "u2", "u3"]
    assert f["timestamp"].to_list() == [10, 20, 30, 1, 5, 7]
    assert small.vocab.skill_id == ["A", "B", "C"]
    assert small.vocab.item_id == ["i1", "i2", "i3"]


def test_build_pads_and_masks_exactly(small):
    s = build_sequences(small.frame)
    np.testing.assert_array_equal(s.skill, [[0, 1, 0], [0, 1, -1], [2, -1, -1]])
    np.testing.assert_array_equal(s.item, [[0, 1, 2], [0, 1, -1], [0, -1, -1]])
    np.testing.assert_array_equal(s.correct, [[0, 1, 1], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(s.time, [[10, 20, 30], [1, 5, NAN], [7, NAN, NAN]])
    np.testing.assert_array_equal(s.mask, [[True, True, True], [True, True, False], [True, False, False]])
    np.testing.assert_array_equal(s.row, [[0, 1, 2], [3, 4, -1], [5, -1, -1]])
    np.testing.assert_array_equal(s.user, [0, 1, 2])
    np.testing.assert_array_equal(s.start, [0, 0, 0])
    np.testing.assert_array_equal(s.lengths, [3, 2, 1])
    assert s.skill.dtype == np.int32 and s.correct.dtype == np.int8 and s.mask.dtype == bool
    assert s.row.dtype == np.int64 and s.time.dtype == np.float64


def test_row_maps_back_to_frame(small):
    f = small.frame
    s = build_sequences(f)
    m = s.mask
    rows = s.row[m]
    np.testing.assert_array_equal(f["skill_idx"].to_numpy()[rows], s.skill[m])
    np.testing.assert_array_equal(f["item_idx"].to_numpy()[rows], s.item[m])
    np.testing.assert_array_equal(f["correct"].to_numpy()[rows], s.correct[m])
    np.testing.assert_array_equal(f["user_idx"].to_numpy()[rows], np.broadcast_to(s.user[:, None], m.shape)[m])
    assert np.all(s.row[~m] == -1)


def test_window_splits_learners_with_start_offsets(small):
    s = build_sequences(small.frame, window=2)
    np.testing.assert_array_equal(s.row, [[0, 1], [2, -1], [3, 4], [5, -1]])
    np.testing.assert_array_equal(s.skill, [[0, 1], [0, -1], [0, 1], [2, -1]])
    np.testing.assert_array_equal(s.user, [0, 0, 1, 2])
    np.testing.assert_array_equal(s.start, [0, 2, 0, 0])
    np.testing.assert_array_equal(s.time, [[10, 20], [30, NAN], [1, 5], [7, NAN]])


def test_window_larger_than_every_learner_is_no_window(small):
    a, b = build_sequences(small.frame), build_sequences(small.frame, window=10)
    for name in ("skill", "item", "correct", "mask", "row", "user", "start"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("window", [1, 3, 7, 16, 50])
def test_windows_cover_learners_in_order(window):
    lengths = [1, 5, 16, 17, 40, 3]
    frame = _frame(lengths)
    s = build_sequences(frame, window=window)
    assert s.mask.shape[1] == min(window, max(lengths))
    assert len(s.user) == sum(-(-n // window) for n in lengths)
    # every row exactly once, in order
    np.testing.assert_array_equal(np.sort(s.row[s.mask]), np.arange(frame.height))
    np.testing.assert_array_equal(s.row[s.mask], np.arange(frame.height))
    firsts = np.r_[0, np.cumsum(lengths)[:-1]]
    for n in range(len(s.user)):
        u, st = s.user[n], s.start[n]
        assert st % window == 0
        np.testing.assert_array_equal(s.row[n][s.mask[n]], firsts[u] + st + np.arange(s.lengths[n]))
    # learners' windows tile them: starts 0, w, 2w, ...
    for u, n in enumerate(lengths):
        np.testing.assert_array_equal(s.start[s.user == u], np.arange(0, n, window))
        assert s.lengths[s.user == u].sum() == n


def test_min_len_drops_short_sequences(small):
    s = build_sequences(small.frame, min_len=2)
    np.testing.assert_array_equal(s.user, [0, 1])
    np.testing.assert_array_equal(s.row, [[0, 1, 2], [3, 4, -1]])
    s = build_sequences(small.frame, min_len=3)
    np.testing.assert_array_equal(s.user, [0])
    np.testing.assert_array_equal(s.row, [[0, 1, 2]])
    # windows shorter than min_len go too, and T shrinks to the longest kept
    s = build_sequences(small.frame, window=2, min_len=2)
    np.testing.assert_array_equal(s.user, [0, 1])
    np.testing.assert_array_equal(s.start, [0, 0])
    np.testing.assert_array_equal(s.row, [[0, 1], [3, 4]])
    s = build_sequences(_frame([5, 2, 2]), min_len=2)
    assert s.mask.shape == (3, 5)
    s = build_sequences(_frame([1, 2, 2]), min_len=2)
    assert s.mask.shape == (2, 2)


def test_min_len_dropping_everything(small):
    s = build_sequences(small.frame, min_len=4)
    assert s.mask.shape == (0, 0)
    assert len(s.user) == 0 and len(s.start) == 0
    assert list(batches(s, 4)) == []


def test_empty_frame(small):
    s = build_sequences(small.frame.head(0))
    assert s.mask.shape == (0, 0) and s.user.shape == (0,)
    assert list(batches(s, 8)) == []


def test_exploded_multi_kc_frame(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text("user_id,skill_id,correct,order\nu1,A~~B,1,1\nu1,B,0,2\nu2,A,1,1\nu2,C;A,0,2\n")
    data = kt.load(str(path), min_attempts=1)
    assert data.multi_kc
    ex = data.explode()
    s = build_sequences(ex)
    # u1: A, B (attempt 0), B (attempt 1); u2: A, C, A
    np.testing.assert_array_equal(s.skill, [[0, 1, 1], [0, 2, 0]])
    np.testing.assert_array_equal(ex["attempt"].to_numpy()[s.row], [[0, 0, 1], [2, 3, 3]])


def test_take_cuts_and_pads(small):
    s = build_sequences(small.frame)
    t = s.take(np.array([2, 0]), 5)
    assert t.mask.shape == (2, 5)
    np.testing.assert_array_equal(t.row, [[5, -1, -1, -1, -1], [0, 1, 2, -1, -1]])
    np.testing.assert_array_equal(t.skill[:, 3:], -1)
    assert np.isnan(t.time[:, 3:]).all()
    np.testing.assert_array_equal(t.user, [2, 0])
    c = s.take(np.array([0]), 2)
    np.testing.assert_array_equal(c.row, [[0, 1]])


@pytest.mark.parametrize(
    "length,expected",
    [(0, 16), (1, 16), (16, 16), (17, 32), (512, 512), (513, 1024), (1024, 1024), (1025, 2048), (3000, 3072)],
)
def test_bucket_length_default(length, expected):
    assert bucket_length(length) == expected


def test_bucket_length_custom():
    assert bucket_length(3, (4, 8)) == 4
    assert bucket_length(8, (4, 8)) == 8
    assert bucket_length(9, (4, 8)) == 16
    assert bucket_length(17, (4, 8)) == 24


RAGGED = [1, 2, 3, 5, 8, 13, 15, 16, 17, 20, 31, 33, 64, 65, 100, 130, 250, 300] * 7 + [1100, 2]


@pytest.fixture(scope="module")
def ragged() -> Sequences:
    return build_sequences(_frame(RAGGED, seed=1))


def _key(s: Sequences, n: int) -> tuple[int, int]:
    return int(s.user[n]), int(s.start[n])


@pytest.mark.parametrize("batch_size", [1, 7, 32, 1000])
@pytest.mark.parametrize("seed", [None, 0])
def test_batches_cover_each_sequence_once(ragged, batch_size, seed):
    rng = None if seed is None else np.random.default_rng(seed)
    index = {_key(ragged, n): n for n in range(len(ragged.user))}
    seen = []
    for b in batches(ragged, batch_size, rng=rng):
        B, T = b.mask.shape
        assert 1 <= B <= batch_size
        assert T == bucket_length(int(b.lengths.max()))
        assert T >= b.lengths.max()
        for name in ("skill", "item", "correct", "time", "mask", "row"):
            assert getattr(b, name).shape == (B, T)
        for n in range(B):
            orig = index[_key(b, n)]
            L = int(ragged.lengths[orig])
            assert b.lengths[n] == L
            np.testing.assert_array_equal(b.row[n, :L], ragged.row[orig, :L])
            np.testing.assert_array_equal(b.skill[n, :L], ragged.skill[orig, :L])
            np.testing.assert_array_equal(b.correct[n, :L], ragged.correct[orig, :L])
            assert np.all(b.row[n, L:] == -1) and not b.mask[n, L:].any()
            seen.append(orig)
    assert sorted(seen) == list(range(len(ragged.user)))
    rows = np.concatenate([b.row[b.mask] for b in batches(ragged, batch_size, rng=None)])
    np.testing.assert_array_equal(np.sort(rows), np.arange(ragged.mask.sum()))


def _signature(bs) -> list[tuple]:
    return [(b.mask.shape, tuple(b.user.tolist()), tuple(b.start.tolist())) for b in bs]


def test_batches_deterministic_without_rng(ragged):
    a = _signature(batches(ragged, 16))
    b = _signature(batches(ragged, 16))
    assert a == b
    # without rng, batches come longest first (the partial batch is the shortest)
    maxes = [int(b.lengths.max()) for b in batches(ragged, 16)]
    assert maxes == sorted(maxes, reverse=True)


def test_batches_seeded_reproducible_and_seed_dependent(ragged):
    a = _signature(batches(ragged, 16, rng=np.random.default_rng(3)))
    b = _signature(batches(ragged, 16, rng=np.random.default_rng(3)))
    c = _signature(batches(ragged, 16, rng=np.random.default_rng(4)))
    d = _signature(batches(ragged, 16))
    assert a == b
    assert a != c
    assert a != d


def test_batches_group_similar_lengths(ragged):
    # sorted by length, each batch spans a contiguous range of the sorted lengths
    all_sorted = np.sort(ragged.lengths)[::-1]
    i = 0
    for b in batches(ragged, 10):
        np.testing.assert_array_equal(np.sort(b.lengths)[::-1], all_sorted[i : i + len(b.user)])
        i += len(b.user)


@pytest.mark.parametrize("buckets", [DEFAULT_BUCKETS, (8, 64, 512), (32,)])
@pytest.mark.parametrize("seed", [None, 1])
def test_padded_lengths_are_buckets_or_multiples_of_the_top(ragged, buckets, seed):
    rng = None if seed is None else np.random.default_rng(seed)
    top = buckets[-1]
    for b in batches(ragged, 8, rng=rng, buckets=buckets):
        T = b.mask.shape[1]
        assert T in buckets or T % top == 0
        assert T - top < b.lengths.max() <= T


@pytest.mark.parametrize("buckets", [DEFAULT_BUCKETS, (8, 64, 512), (4, 8, 16, 32, 64)])
@pytest.mark.parametrize("seed", [None, 1])
def test_distinct_shapes_bounded_by_bucket_count(buckets, seed):
    # windows no longer than the top bucket: the time axis takes at most len(buckets) values
    s = build_sequences(_frame(RAGGED, seed=2), window=buckets[-1])
    rng = None if seed is None else np.random.default_rng(seed)
    bs = list(batches(s, 8, rng=rng, buckets=buckets))
    lengths = {b.mask.shape[1] for b in bs}
    assert lengths <= set(buckets)
    assert len(lengths) <= len(buckets)
    # batch sizes are all equal except possibly one final short batch
    assert sum(len(b.user) < 8 for b in bs) <= 1
    assert len({b.mask.shape for b in bs}) <= len(buckets) + 1


def test_batches_on_windows(ragged):
    s = build_sequences(_frame(RAGGED, seed=1), window=64)
    T = {b.mask.shape[1] for b in batches(s, 32)}
    assert T <= {16, 32, 64}
    assert sum(b.mask.sum() for b in batches(s, 32)) == sum(RAGGED)


def test_full_padding_over_budget_is_refused():
    import polars as pl

    from kt.data.sequences import build_sequences
    from kt.errors import KTError

    frame = pl.DataFrame(
        {
            "user_idx": [0] * 50 + [1, 1],
            "skill_idx": [0] * 52,
            "item_idx": [-1] * 52,
            "correct": [1] * 52,
            "timestamp": [None] * 52,
        },
        schema_overrides={"timestamp": pl.Float64},
    )
    with pytest.raises(KTError, match="window"):
        build_sequences(frame, max_cells=99)
    assert build_sequences(frame, window=10, max_cells=99).mask.sum() == 52


def test_random_batches_cover_everything_once_and_mix_lengths():
    import polars as pl

    from kt.data.sequences import batches, build_sequences

    lengths = [3] * 40 + [50] * 40
    frame = pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(80), lengths),
            "skill_idx": np.zeros(sum(lengths), int),
            "item_idx": np.full(sum(lengths), -1),
            "correct": np.ones(sum(lengths), int),
            "timestamp": np.full(sum(lengths), np.nan),
        }
    )
    seqs = build_sequences(frame)
    out = list(batches(seqs, 16, rng=np.random.default_rng(0), batching="random"))
    users = np.concatenate([b.user for b in out])
    assert sorted(users.tolist()) == list(range(80))
    assert any(len(set(b.lengths.tolist())) > 1 for b in out)


def _old_adaptive_batches(seqs: Sequences, batch_size: int, buckets, rows_at):
    # The loop PSI-KT's prediction wrote out before length_batches (kept here as the reference).
    lengths = seqs.lengths
    order = np.argsort(lengths, kind="stable")
    i = 0
    while i < len(order):
        T = bucket_length(int(lengths[order[min(i + batch_size, len(order)) - 1]]), buckets)
        idx = order[i : i + rows_at(T)]
        yield idx, seqs.take(idx, bucket_length(int(lengths[idx].max()), buckets))
        i += len(idx)


@pytest.mark.parametrize("rows", [1, 7, 32, 1000])
def test_length_batches_are_sorted_fixed_chunks(ragged, rows):
    from kt.data.sequences import length_batches

    order = np.argsort(ragged.lengths, kind="stable")
    got = list(length_batches(ragged, rows, DEFAULT_BUCKETS))
    assert len(got) == -(-len(order) // rows)
    for k, (idx, sub) in enumerate(got):
        np.testing.assert_array_equal(idx, order[k * rows : (k + 1) * rows])
        assert sub.mask.shape[1] == bucket_length(int(ragged.lengths[idx].max()))
        np.testing.assert_array_equal(sub.row, ragged.take(idx, sub.mask.shape[1]).row)


def test_length_batches_cap_rows_by_padded_length(ragged):
    from kt.data.sequences import length_batches

    def rows_at(T: int) -> int:
        return max(1, 4096 // T)

    buckets = (16, 64, 256)
    got = list(length_batches(ragged, 64, buckets, rows_at=rows_at))
    ref = list(_old_adaptive_batches(ragged, 64, buckets, rows_at))
    assert len(got) == len(ref) and len({len(i) for i, _ in got}) > 1
    for (i1, s1), (i2, s2) in zip(got, ref):
        np.testing.assert_array_equal(i1, i2)
        assert s1.mask.shape == s2.mask.shape
    assert sorted(np.concatenate([i for i, _ in got]).tolist()) == list(range(len(ragged.user)))
    assert list(length_batches(ragged.take(np.arange(0)), 8)) == []

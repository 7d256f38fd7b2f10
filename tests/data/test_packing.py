"""Packed batches: placement, segment bookkeeping, and equality with unpacked DKT batches."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import polars as pl
import pytest

from kt.data.packing import first_fit, pack, row_bucket
from kt.data.sequences import batches, build_sequences
from kt.models.dkt.model import DKTNet, next_logits
from kt.train import loop


def _frame(lengths, n_kc=7, seed=0, multi=False):
    rng = np.random.default_rng(seed)
    n = int(np.sum(lengths))
    cols = {
        "user_idx": np.repeat(np.arange(len(lengths)), lengths),
        "skill_idx": rng.integers(0, n_kc, n),
        "item_idx": np.full(n, -1),
        "correct": rng.integers(0, 2, n),
        "timestamp": np.full(n, np.nan),
    }
    if multi:  # pairs of rows share a question (two KC rows of one attempt)
        cols["attempt"] = np.arange(n) // 2
    return pl.DataFrame(cols)


@pytest.mark.parametrize("seed", range(5))
def test_first_fit_places_every_sequence_once_without_overlap(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 41, rng.integers(1, 80))
    row, off, used = first_fit(lengths, 40)
    assert used <= len(lengths) and used >= -(-lengths.sum() // 40)
    grid = np.zeros((used, 40), int)
    for r, o, n in zip(row, off, lengths):
        assert 0 <= o and o + n <= 40
        grid[r, o : o + n] += 1
    assert grid.max() == 1 and grid.sum() == lengths.sum()


def test_first_fit_rejects_a_sequence_wider_than_the_row():
    with pytest.raises(ValueError, match="does not fit"):
        first_fit(np.array([3, 41]), 40)


def test_row_bucket_two_sizes_per_octave_capped():
    assert [row_bucket(r, 256) for r in (1, 2, 3, 5, 7, 9, 13, 17, 100, 129, 193)] == [1, 2, 3, 6, 8, 12, 16, 24, 128, 192, 256]
    assert row_bucket(150, 160) == 160 and row_bucket(160, 160) == 160


def test_pack_keeps_every_step_and_numbers_segments():
    seqs = build_sequences(_frame(np.random.default_rng(1).integers(1, 60, 30)), window=25)
    idx = np.random.default_rng(2).permutation(seqs.mask.shape[0])[:20]
    p = pack(seqs, idx, 25, 64)
    assert p.mask.sum() == seqs.mask[idx].sum()
    assert sorted(p.row[p.mask].tolist()) == sorted(seqs.row[idx][seqs.mask[idx]].tolist())
    for r in range(p.mask.shape[0]):
        segs = p.segment[r][p.mask[r]]
        # each segment is one contiguous run holding its source sequence in order
        for s in np.unique(segs):
            at = np.flatnonzero(p.segment[r] == s)
            assert np.all(np.diff(at) == 1)
            src = idx[s]
            np.testing.assert_array_equal(p.row[r, at], seqs.row[src][seqs.mask[src]])
    assert np.all(p.segment[~p.mask] == -1)


def test_prev_index_never_crosses_a_segment_even_inside_one_question():
    # two chunks of one learner cut inside a two-row question, packed side by side
    group = np.array([[0, 0, 1, 1, 2, 2, 2, 3, 3, -1]])
    segment = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 1, -1]])
    mask = segment >= 0
    prev = loop.prev_index(group, mask, segment)
    np.testing.assert_array_equal(prev, [[-1, -1, 1, 1, 3, -1, -1, 6, 6, -1]])
    np.testing.assert_array_equal(loop.prev_index(group, mask), [[-1, -1, 1, 1, 3, 3, 3, 6, 6, -1]])


def _loss_and_grad(net, batch):
    def f(net):
        lg = next_logits(net, batch, None)
        per = optax.sigmoid_binary_cross_entropy(lg, batch["correct"].astype(lg.dtype))
        return jnp.where(loop.targets(batch), per, 0.0).sum()

    return eqx.filter_value_and_grad(f)(net)


@pytest.mark.parametrize("multi", [False, True])
def test_packed_dkt_batch_equals_the_unpacked_batch(multi):
    seqs = build_sequences(_frame(np.random.default_rng(3).integers(1, 70, 40), multi=multi), window=30)
    idx = np.random.default_rng(4).permutation(seqs.mask.shape[0])[:32]
    net = DKTNet.init(jax.random.key(0), 7, 16, 0.0)
    plain = loop.to_batch(seqs.take(idx, 30), 32)
    packed = loop.to_batch(pack(seqs, idx, 30, 32), 32)
    assert packed["mask"].shape[0] < plain["mask"].shape[0]
    assert int(loop.targets(packed).sum()) == int(loop.targets(plain).sum())
    (l1, g1), (l2, g2) = _loss_and_grad(net, plain), _loss_and_grad(net, packed)
    np.testing.assert_allclose(float(l1), float(l2), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_pack_batching_draws_every_sequence_once_per_epoch():
    seqs = build_sequences(_frame(np.random.default_rng(5).integers(1, 90, 60)), window=32)
    out = list(batches(seqs, 16, rng=np.random.default_rng(0), buckets=(16, 32), batching="pack"))
    assert all(b.segment is not None and b.mask.shape[1] == 32 for b in out)
    assert sum(int(b.mask.sum()) for b in out) == int(seqs.mask.sum())
    rows = np.concatenate([b.row[b.mask] for b in out])
    assert len(np.unique(rows)) == len(rows) == int(seqs.mask.sum())
    # without an rng, packing falls back to the deterministic bucket order
    assert all(b.segment is None for b in batches(seqs, 16, batching="pack"))


def test_batches_rejects_an_unknown_mode():
    seqs = build_sequences(_frame([3, 4]))
    with pytest.raises(ValueError, match="batching"):
        list(batches(seqs, 4, batching="sorted"))

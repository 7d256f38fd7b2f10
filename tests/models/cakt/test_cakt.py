"""CAKT: neighbours, leakage, decay, masked BN, shapes, optimiser, schedule, persistence, CLI."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import polars as pl
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kt
from kt.data.packing import pack
from kt.data.sequences import build_sequences
from kt.data.vocab import Vocab
from kt.models.cakt import model as cakt
from kt.models.cakt import net as cakt_cnn
from kt.models.base import create, load
from kt.models.dkt.model import _known
from kt.train import loop

SAMPLE = Path(__file__).resolve().parents[3] / "datasets" / "assist2009_sample"
TINY = dict(k=3, frame=4, channels=(2, 3, 2))


def brute_neighbours(skill, mask, k, mode):
    N, T = skill.shape
    idx = np.full((N, T, k), -1)
    for n in range(N):
        for t in range(T):
            if not mask[n, t]:
                continue
            if mode == "current":
                key = skill[n, t]
            else:
                if t + 1 >= T or not mask[n, t + 1]:
                    continue
                key = skill[n, t + 1]
            hits = [i for i in range(t + 1) if mask[n, i] and skill[n, i] == key][-k:]
            idx[n, t, k - len(hits) :] = hits
    return idx


@pytest.mark.parametrize("mode", ["next", "current"])
def test_neighbours_match_a_brute_force_loop(mode):
    rng = np.random.default_rng(0)
    for _ in range(5):
        N, T, K, k = 4, 23, 4, 3
        skill = rng.integers(0, K, (N, T))
        mask = np.ones((N, T), bool)
        mask[1, 15:] = False
        mask[3, 2:] = False
        skill = np.where(mask, skill, -1)
        idx, delta = cakt.neighbours(skill, mask, k, mode)
        want = brute_neighbours(skill, mask, k, mode)
        np.testing.assert_array_equal(idx, want)
        t = np.arange(T)[None, :, None]
        np.testing.assert_array_equal(delta, np.where(want >= 0, t - want, 0))
        real = idx >= 0
        # front-padded (no hole after a real entry), oldest first, within the past
        assert not (real[..., :-1] & ~real[..., 1:]).any()
        assert (np.diff(np.where(real, idx, -1), axis=-1)[real[..., :-1]] > 0).all()
        assert (np.where(real, idx, 0) <= t).all()
        if mode == "current":
            np.testing.assert_array_equal(idx[..., -1][mask], np.broadcast_to(np.arange(T), (N, T))[mask])


def tiny_net(key=0, K=5, **over):
    cfg = dataclasses.replace(cakt.CAKTConfig(), **{**TINY, **over})
    return cakt.CAKTNet.init(jax.random.key(key), K, cfg)


def make_batch(skill, correct, mask, k=3, mode="next", K=5, compact=True):
    prev = loop.prev_index(np.where(mask, np.broadcast_to(np.arange(skill.shape[1]), skill.shape), -1), mask)
    cnn = cakt.cnn_inputs(skill, correct, mask, K, k, mode, compact=compact)
    return {
        "skill": jnp.asarray(np.maximum(skill, 0)),
        "correct": jnp.asarray(correct),
        "mask": jnp.asarray(mask),
        "prev": jnp.asarray(prev),
        **{name: jnp.asarray(a) for name, a in cnn.items()},
    }


def rand_data(seed, B=3, T=12, K=5):
    rng = np.random.default_rng(seed)
    skill = rng.integers(0, K, (B, T))
    skill[:, 5] = skill[:, 2]  # repeats, so the decay matters
    correct = rng.integers(0, 2, (B, T))
    mask = np.ones((B, T), bool)
    mask[1, 8:] = False
    return np.where(mask, skill, -1), np.where(mask, correct, 0), mask


@pytest.mark.parametrize("mode", ["next", "current"])
def test_no_leakage_from_the_predicted_answer_or_later_steps(mode):
    net, st = tiny_net()
    skill, correct, mask = rand_data(1)
    logits = lambda s, c: np.asarray(cakt.next_logits(net, make_batch(s, c, mask, mode=mode), None, st)[0])  # noqa: E731
    base = logits(skill, correct)
    t1 = 6  # the predicted step t+1
    flipped = correct.copy()
    flipped[:, t1:] = 1 - flipped[:, t1:]
    other = logits(skill, flipped)
    np.testing.assert_allclose(base[:, : t1 + 1], other[:, : t1 + 1], atol=1e-6)
    assert not np.allclose(base[:, t1 + 1 :], other[:, t1 + 1 :])
    later = skill.copy()
    later[:, t1 + 1 :] = np.where(mask[:, t1 + 1 :], (later[:, t1 + 1 :] + 1) % 5, -1)
    np.testing.assert_allclose(base[:, : t1 + 1], logits(later, correct)[:, : t1 + 1], atol=1e-6)
    # k_{t+1} acts only through the key and the selected logit: earlier outputs are unchanged.
    moved = skill.copy()
    moved[:, t1] = (moved[:, t1] + 1) % 5
    np.testing.assert_allclose(base[:, :t1], logits(moved, correct)[:, :t1], atol=1e-6)


def test_decay_is_one_at_zero_gap_and_s_gets_a_gradient():
    net, st = tiny_net()
    x = jnp.asarray([[0, 3, 7]])
    vol = cakt.volume(net, x, jnp.asarray([[0, 2, 0]]))
    np.testing.assert_array_equal(vol[0, 0], 0.0)  # missing: zero frame
    np.testing.assert_allclose(vol[0, 2], net.embed[7], rtol=1e-6)  # delta 0: weight exactly 1
    np.testing.assert_allclose(vol[0, 1], net.embed[3] * np.exp(-2.0), rtol=1e-6)
    skill, correct, mask = rand_data(2)
    b = make_batch(skill, correct, mask)

    def loss(S):
        lg, _ = cakt.next_logits(dataclasses.replace(net, S=S), b, jax.random.key(0), st)
        return optax.sigmoid_binary_cross_entropy(lg, b["correct"].astype(lg.dtype))[loop.targets(b)].mean()

    assert abs(float(jax.grad(loss)(net.S))) > 0


def _pad(skill, correct, mask, rows=2, steps=5, **kw):
    def pad(a, fill):
        return np.pad(a, ((0, rows), (0, steps)), constant_values=fill)

    return make_batch(pad(skill, -1), pad(correct, 0), pad(mask, False), **kw)


def test_masked_batchnorm_ignores_padding_in_training_mode(monkeypatch):
    net, st = tiny_net()
    skill, correct, mask = rand_data(3)
    b = make_batch(skill, correct, mask)
    key = jax.random.key(0)
    lg, new = cakt.next_logits(net, b, key, st)
    lg_p, new_p = cakt.next_logits(net, _pad(skill, correct, mask), key, st)
    np.testing.assert_allclose(lg, lg_p[:3, :12], atol=1e-5)
    for a, c in zip(jax.tree.leaves(new), jax.tree.leaves(new_p)):
        # float32 sums over a differently padded batch: equal to a few ulps of values near 1
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    tgt, tgt_p = loop.targets(b), loop.targets(_pad(skill, correct, mask))
    bce = lambda lg_, bb, m: optax.sigmoid_binary_cross_entropy(lg_, bb["correct"].astype(lg_.dtype))[m].mean()  # noqa: E731
    np.testing.assert_allclose(bce(lg, b, tgt), bce(lg_p, _pad(skill, correct, mask), tgt_p), rtol=1e-5)
    # The same check fails when padded positions enter the statistics.
    real = cakt_cnn.batch_stats
    monkeypatch.setattr(cakt_cnn, "batch_stats", lambda x, w: real(x, jnp.ones_like(w)))
    lg_u, _ = cakt.next_logits(net, _pad(skill, correct, mask), key, st)
    assert not np.allclose(lg, lg_u[:3, :12], atol=1e-5)


def test_padding_changes_nothing_in_evaluation_mode():
    net, st = tiny_net()
    skill, correct, mask = rand_data(4)
    b = make_batch(skill, correct, mask)
    lg, _ = cakt.next_logits(net, b, None, st)
    lg_p, _ = cakt.next_logits(net, _pad(skill, correct, mask), None, st)
    np.testing.assert_allclose(lg, lg_p[:3, :12], atol=1e-5)


@pytest.mark.slow
def test_block_shapes_se_range_and_pooled_size():
    cfg = cakt.CAKTConfig()
    net, st = cakt.CAKTNet.init(jax.random.key(0), 7, cfg)
    assert [(b.conv1.shape[3], b.conv1.shape[4]) for b in net.blocks] == [(1, 4), (4, 8), (8, 4), (4, 1)]
    M = 5
    vol = jax.random.normal(jax.random.key(1), (M, cfg.k, 225))
    x = jnp.transpose(vol.reshape(M, cfg.k, 15, 15), (0, 2, 3, 1))[..., None]
    m = jnp.ones(M)
    for p, s in zip(net.blocks, st):
        x, _, se = cakt_cnn.block_apply(p, s, x, m, True, "batch")
        assert x.shape[1:4] == (15, 15, cfg.k)  # [k, 15, 15] kept by every block
        assert se.shape == (M, p.conv1.shape[4], cfg.k)
        assert ((se > 0) & (se < 1)).all()
    c, _, _ = cakt.cnn_features(net, st, vol, m, True)
    assert c.shape == (M, 225)


def test_optimizer_is_coupled_l2_adam():
    lr, wd, b1, b2, eps = 0.1, 0.01, 0.9, 0.99, 1e-8
    theta = jnp.asarray([1.0, -2.0])
    grad_fn = jax.grad(lambda t: 0.5 * (3.0 * t**2).sum())  # toy quadratic
    tx = loop.make_optimizer(lr, (wd, b1, b2))
    state = tx.init(theta)
    m = v = np.zeros(2)
    th = np.asarray(theta, np.float64)
    for step in range(1, 4):
        upd, state = tx.update(grad_fn(theta), state, theta)
        theta = optax.apply_updates(theta, upd)
        g = 3.0 * th + wd * th  # L2 enters the gradient, before the moments
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        th = th - lr * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + eps)
        np.testing.assert_allclose(theta, th, rtol=1e-5)
    assert isinstance(loop.make_optimizer(1e-3, (0.0, 0.9, 0.999)), type(optax.adam(1e-3)))  # plain Adam for DKT


def test_lr_schedule_follows_the_rule():
    s = loop.LoopSettings(lr=1.0, lr_decay=0.3, lr_every=5, lr_on_rise=True)
    losses = [0.9, 0.8, 0.85, 0.7, 0.6, 0.65, 0.5, 0.4, 0.3, 0.31, 0.2]
    lr, prev, trace = 1.0, None, []
    for epoch, loss in enumerate(losses, 1):
        trace.append(lr)
        lr = loop.next_lr(lr, epoch, prev, loss, s)
        prev = loss
    # decays after epoch 3 (rise), 5 (every 5th), 6 (rise), 10 (rise and 10th: once)
    want = [1, 1, 1, 0.3, 0.3, 0.09, 0.027, 0.027, 0.027, 0.027, 0.0081]
    np.testing.assert_allclose(trace, want, rtol=1e-9)
    assert loop.next_lr(1.0, 5, 0.1, 0.2, loop.LoopSettings()) == 1.0  # no schedule by default


@pytest.fixture(scope="module")
def small():
    tr = kt.load(str(SAMPLE / "train.csv"))
    return tr.subset(tr.frame["user_idx"].unique().sort()[:24].to_numpy())


@pytest.fixture(scope="module")
def fitted(small):
    from kt.data.splits import train_valid

    a, v = train_valid(small, 0.25, 0)
    return create("cakt", epochs=2, batch_size=16, **TINY).fit(a, valid=v, key=1), a


@pytest.mark.slow
def test_fit_records_the_schedule_and_predicts_deterministically(fitted, small):
    m, _ = fitted
    hist = m.meta["history"]
    assert [h["lr"] for h in hist][0] == pytest.approx(1e-3)
    assert "decay_S" in m.meta and 0 < m.meta["gate_c_mean"] < 1
    p = m.predict(small)["prob"].to_numpy()
    np.testing.assert_array_equal(p, m.predict(small)["prob"].to_numpy())
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


@pytest.mark.slow
def test_feature_table_equals_computing_features_on_the_fly(fitted, small):
    m, _ = fitted
    net, st = m.params
    for mode in ("window", "chunk"):
        seqs = build_sequences(_known(small), window=50) if mode == "chunk" else None
        if seqs is None:
            from kt.models.dkt.model import window_sequences

            seqs, _ = window_sequences(_known(small), 50)
        kw = dict(state=st)
        _, p_table, r1 = loop.predict_positions(
            net, cakt.next_logits, seqs, 16, (16, 32, 50), make_batch=m._feature_table(seqs), **kw
        )
        _, p_direct, r2 = loop.predict_positions(net, cakt.next_logits, seqs, 16, (16, 32, 50), make_batch=m.make_batch, **kw)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_allclose(p_table, p_direct, atol=1e-5)


def test_jit_equals_no_jit():
    net, st = tiny_net()
    skill, correct, mask = rand_data(5)
    b = make_batch(skill, correct, mask)
    jitted = jax.jit(lambda n, x, s: cakt.next_logits(n, x, None, s)[0])(net, b, st)
    with jax.disable_jit():
        eager = cakt.next_logits(net, b, None, st)[0]
    np.testing.assert_allclose(jitted, eager, atol=1e-5)


@pytest.mark.slow
def test_save_load_roundtrip_mastery_and_influence(fitted, small, tmp_path):
    m, _ = fitted
    p = m.predict(small)["prob"].to_numpy()
    m.save(tmp_path / "cakt")
    back = load(tmp_path / "cakt")
    np.testing.assert_allclose(back.predict(small)["prob"].to_numpy(), p, atol=1e-6)
    few = small.subset(small.frame["user_idx"].unique().sort()[:2].to_numpy())
    mast = back.mastery(few)
    K = len(small.vocab.skill_id)
    assert mast.height == 2 * K and mast["p_correct_next"].is_between(0, 1).all()
    inf = back.influence_matrix()
    assert inf.shape == (K, K) and ((inf > 0) & (inf < 1)).all()


@pytest.mark.slow
def test_mastery_next_mode_matches_predicting_a_next_attempt(fitted, small):
    # In next mode mastery(j) is the prediction of an appended attempt on KC j.
    m, _ = fitted
    one = small.subset(small.frame["user_idx"].unique().sort()[:1].to_numpy())
    mast = m.mastery(one)
    f = _known(one)
    seqs = build_sequences(f)
    T = int(seqs.mask.sum())
    lo = max(0, T - m.config.window)  # mastery reads the last window
    j = int(seqs.skill[0, T - 1])
    skill = np.append(seqs.skill[0, lo:T], j)[None]
    correct = np.append(seqs.correct[0, lo:T], 0)[None]
    b = make_batch(skill, correct, np.ones_like(skill, bool), k=m.config.k, K=len(m.vocab.skill_id))
    lg, _ = cakt.next_logits(m.params[0], b, None, m.params[1])
    want = float(jax.nn.sigmoid(lg[0, -1]))
    got = mast.filter(mast["skill_id"] == m.vocab.skill_id[j])["p_correct_next"][0]
    assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.slow
def test_ablations_run(small):
    for over in (
        dict(cnn=False),
        dict(decay=False, fusion="gate"),
        dict(norm="group", recent_key="current"),
        dict(fusion="concat"),
    ):
        m = create("cakt", epochs=1, batch_size=16, **{**TINY, **over}).fit(small, key=0)
        assert np.isfinite(m.predict(small)["prob"].to_numpy()).all()


def test_ablation_options_are_validated():
    with pytest.raises(kt.errors.KTError, match="recent_key"):
        create("cakt", sets=["recent_key=previous"])
    with pytest.raises(kt.errors.KTError, match="k must be >= 2"):
        create("cakt", sets=["k=1"])
    with pytest.raises(kt.errors.KTError, match="embed_init"):
        create("cakt", sets=["embed_init=xavier"])


@pytest.mark.parametrize(("init", "std"), [("kaiming", (2 / 225) ** 0.5), ("normal", 1.0)])
def test_embedding_initial_scale(init, std):
    cfg = cakt.CAKTConfig(embed_init=init)
    net, _ = cakt.CAKTNet.init(jax.random.key(0), 50, cfg)
    rows = np.asarray(net.embed)
    assert not rows[0].any()  # padding row
    assert abs(rows[1:].std() / std - 1) < 0.03


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path):
    from typer.testing import CliRunner

    from kt.cli import app

    runner = CliRunner()
    out = tmp_path / "m"
    sets = ["--set", "k=2", "--set", "frame=3", "--set", "channels=2,2,2", "--set", "batch_size=32", "--set", "window=50"]
    r = runner.invoke(app, ["train", str(SAMPLE / "test.csv"), "-m", "cakt", "-o", str(out), "--epochs", "1", *sets])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(out), str(SAMPLE / "test.csv"), "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    import json

    res = json.loads((tmp_path / "r.json").read_text())
    assert 0 < res["auc"] < 1 and res["window"] == "window"  # one tiny epoch: the flow, not learning
    r = runner.invoke(app, ["train", str(SAMPLE / "test.csv"), "-m", "cakt", "-o", str(out), "--set", "fusion=mean"])
    assert r.exit_code != 0 and "fusion" in r.output


@pytest.mark.slow
def test_resume_equals_uninterrupted_run_with_schedule_and_state(small, tmp_path):
    from kt.data.splits import train_valid

    a, v = train_valid(small, 0.25, 0)
    cfg = dict(batch_size=16, patience=50, lr_every=2, **TINY)
    full = create("cakt", epochs=3, **cfg).fit(a, valid=v, key=5)
    ck = tmp_path / "ck"
    create("cakt", epochs=2, **cfg).fit(a, valid=v, key=5, checkpoint=ck)
    resumed = create("cakt", epochs=3, **cfg).fit(a, valid=v, key=5, checkpoint=ck, resume=True)
    for x, y in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(x, y)
    assert [r["lr"] for r in resumed.meta["history"]] == [r["lr"] for r in full.meta["history"]]
    assert full.meta["history"][2]["lr"] == pytest.approx(3e-4)


def _loss_state_grad(net, st, batch):
    def f(net):
        lg, new = cakt.next_logits(net, batch, jax.random.key(0), st)
        per = optax.sigmoid_binary_cross_entropy(lg, batch["correct"].astype(lg.dtype))
        return jnp.where(loop.targets(batch), per, 0.0).sum(), new

    return eqx.filter_value_and_grad(f, has_aux=True)(net)


def _assert_same(a, b):
    (l1, s1), g1 = a
    (l2, s2), g2 = b
    np.testing.assert_allclose(float(l1), float(l2), rtol=1e-5)
    for x, y in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
    for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-3, atol=1e-5 * (1 + float(np.abs(y).max())))


@pytest.mark.parametrize("mode", ["next", "current"])
def test_compact_cnn_rows_equal_one_row_per_step(mode):
    # One shared row (weighted by its count) for every empty volume, none for padding: same loss, state, gradient.
    net, st = tiny_net(recent_key=mode)
    skill, correct, mask = rand_data(7, B=4, T=15)
    plain = _pad(skill, correct, mask, mode=mode, compact=False)
    compact = _pad(skill, correct, mask, mode=mode)
    assert compact["cnn_x"].shape[0] < plain["cnn_x"].shape[0] or compact["cnn_x"].shape[0] == cakt.CNN_ROWS
    assert float(compact["cnn_w"].sum()) == float(mask.sum())
    _assert_same(_loss_state_grad(net, st, plain), _loss_state_grad(net, st, compact))


def test_packed_cakt_batch_equals_the_unpacked_batch():
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 30, 24)
    frame = pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(len(lengths)), lengths),
            "skill_idx": rng.integers(0, 5, lengths.sum()),
            "item_idx": np.full(lengths.sum(), -1),
            "correct": rng.integers(0, 2, lengths.sum()),
            "timestamp": np.full(lengths.sum(), np.nan),
        }
    )
    seqs = build_sequences(frame, window=20)
    idx = rng.permutation(seqs.mask.shape[0])[:16]
    m = create("cakt", **TINY)
    m.vocab = Vocab(skill_id=[str(j) for j in range(5)])
    net, st = tiny_net()
    plain = m.make_batch(seqs.take(idx, 20), 16)
    packed = m.make_batch(pack(seqs, idx, 20, 16), 16)
    assert packed["mask"].shape[0] < plain["mask"].shape[0]
    assert int(loop.targets(packed).sum()) == int(loop.targets(plain).sum())
    _assert_same(_loss_state_grad(net, st, plain), _loss_state_grad(net, st, packed))

"""DKT and the training loop: causality, masking, gradients, windows, a real run."""

from __future__ import annotations

import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest

import kt
from kt.errors import KTError
from kt.data.sequences import build_sequences
from kt.eval.protocols import next_step
from kt.models.base import create, load
from kt.models.dkt.model import DKTNet, next_logits, window_sequences
from kt.train import loop

SAMPLE = Path(__file__).resolve().parents[3] / "datasets" / "assist2009_sample"


def tiny_batch(rng, B=3, T=9, K=5):
    skill = rng.integers(0, K, (B, T))
    correct = rng.integers(0, 2, (B, T))
    mask = np.ones((B, T), bool)
    mask[1, 6:] = False
    prev = loop.prev_index(np.broadcast_to(np.arange(T), (B, T)), mask)
    return {"skill": jnp.asarray(skill), "correct": jnp.asarray(correct), "mask": jnp.asarray(mask), "prev": jnp.asarray(prev)}


@pytest.fixture
def net():
    return DKTNet.init(jax.random.key(0), 5, 8, 0.0)


def test_prediction_ignores_the_answer_it_predicts_and_later_ones(net):
    b = tiny_batch(np.random.default_rng(0))
    base = next_logits(net, b, None)
    t = 4
    flipped = dict(b, correct=b["correct"].at[:, t:].set(1 - b["correct"][:, t:]))
    other = next_logits(net, flipped, None)
    np.testing.assert_allclose(base[:, : t + 1], other[:, : t + 1], atol=1e-6)
    assert not np.allclose(base[:, t + 1 :], other[:, t + 1 :])
    # Changing the KC of step t only changes which logit is read at t.
    moved = dict(b, skill=b["skill"].at[:, t].set((b["skill"][:, t] + 1) % 5))
    changed = next_logits(net, moved, None)
    np.testing.assert_allclose(base[:, :t], changed[:, :t], atol=1e-6)


def test_padding_changes_nothing(net):
    b = tiny_batch(np.random.default_rng(1))
    base = next_logits(net, b, None)
    padded = {k: jnp.pad(v, ((0, 2), (0, 7))) for k, v in b.items()}  # extra rows and steps, masked
    out = next_logits(net, padded, None)
    np.testing.assert_allclose(base, out[:3, :9], atol=1e-6)


def test_loss_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        net = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx_array(a) else a, DKTNet.init(jax.random.key(1), 4, 3, 0.0))
        b = tiny_batch(np.random.default_rng(2), B=2, T=5, K=4)

        def loss(w_out):
            m = eqx.tree_at(lambda n: n.w_out, net, w_out)
            lg = next_logits(m, b, None)
            tgt = loop.targets(b)
            y = b["correct"].astype(lg.dtype)
            per = jnp.maximum(lg, 0) - lg * y + jnp.log1p(jnp.exp(-jnp.abs(lg)))
            return jnp.where(tgt, per, 0).sum() / tgt.sum()

        g = jax.grad(loss)(net.w_out)
        eps = 1e-6
        for idx in [(0, 0), (1, 2), (3, 1)]:
            e = jnp.zeros_like(net.w_out).at[idx].set(eps)
            fd = (loss(net.w_out + e) - loss(net.w_out - e)) / (2 * eps)
            assert abs(float(fd) - float(g[idx])) < 1e-7


def eqx_array(a):
    return isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating)


def test_jit_equals_no_jit(net):
    b = tiny_batch(np.random.default_rng(3))
    jitted = jax.jit(lambda n, x: next_logits(n, x, None))(net, b)
    with jax.disable_jit():
        eager = next_logits(net, b, None)
    np.testing.assert_allclose(jitted, eager, atol=1e-5)


def _frame(lengths):
    users, skills, corr = [], [], []
    rng = np.random.default_rng(0)
    for u, n in enumerate(lengths):
        users += [u] * n
        skills += list(rng.integers(0, 3, n))
        corr += list(rng.integers(0, 2, n))
    return pl.DataFrame(
        {
            "user_idx": users,
            "skill_idx": skills,
            "item_idx": [-1] * len(users),
            "correct": corr,
            "timestamp": [None] * len(users),
        },
        schema_overrides={
            "user_idx": pl.Int32,
            "skill_idx": pl.Int32,
            "item_idx": pl.Int32,
            "correct": pl.Int8,
            "timestamp": pl.Float64,
        },
    )


def test_chunks_of_450_are_200_200_50_and_short_tail_dropped():
    seqs = build_sequences(_frame([450, 402]), window=200, min_len=3)
    assert sorted(seqs.lengths.tolist()) == [50, 200, 200, 200, 200]


def test_window_mode_scores_every_step_once_with_bounded_history():
    frame = _frame([5, 13])
    seqs, score = window_sequences(frame, 4)
    rows = seqs.row[score]
    assert sorted(rows.tolist()) == list(range(18))
    for n in np.flatnonzero(score[:, -1] & (seqs.start > 0)):
        assert seqs.mask[n].sum() == 4  # full window: 3 predecessors + the scored step


def test_training_is_deterministic_and_save_load_roundtrips(tmp_path):
    tr = kt.load(str(SAMPLE / "train.csv"))
    small = tr.subset(tr.frame["user_idx"].unique().sort()[:40].to_numpy())
    a = create("dkt", hidden=16, epochs=2, batch_size=16).fit(small, key=3)
    b = create("dkt", hidden=16, epochs=2, batch_size=16).fit(small, key=3)
    np.testing.assert_array_equal(a.params.w_out, b.params.w_out)
    meta = json.dumps(a.meta, sort_keys=True, default=str)
    pa = a.predict(small)["prob"]
    assert json.dumps(a.meta, sort_keys=True, default=str) == meta  # predict does not change the model
    np.testing.assert_array_equal(pa, a.predict(small)["prob"])  # no dropout at predict time
    a.save(tmp_path / "dkt")
    assert (tmp_path / "dkt" / "history.jsonl").read_text().count("\n") == 2
    np.testing.assert_allclose(load(tmp_path / "dkt").predict(small)["prob"], pa, atol=1e-6)


def test_short_real_run_beats_kc_rate():
    tr = kt.load(str(SAMPLE / "train.csv"))
    te = kt.load(str(SAMPLE / "test.csv"), vocab=tr.vocab)
    dkt = create("dkt", hidden=64, lr=5e-3, epochs=6, batch_size=64).fit(tr, key=0)
    rate = create("kc-rate").fit(tr)
    res = next_step(dkt, te, breakdown=False)
    assert res["window"] == "window"
    assert res["auc"] > next_step(rate, te, breakdown=False)["auc"] + 0.02
    mastery = dkt.mastery(te)
    assert mastery.height == te.n_users * len(tr.vocab.skill_id)
    assert mastery["p_correct_next"].is_between(0, 1).all()


def test_non_finite_loss_stops_with_a_clear_message():
    tr = kt.load(str(SAMPLE / "train.csv"))
    small = tr.subset(tr.frame["user_idx"].unique().sort()[:20].to_numpy())
    with pytest.raises(loop.NonFiniteLoss, match="NaN/inf"):
        create("dkt", hidden=8, epochs=2, lr=float("inf"), batch_size=8).fit(small, key=0)


def test_history_has_validation_metrics_and_early_stopping(tmp_path):
    tr = kt.load(str(SAMPLE / "train.csv"))
    small = tr.subset(tr.frame["user_idx"].unique().sort()[:60].to_numpy())
    from kt.data.splits import train_valid

    a, v = train_valid(small, 0.3, 0)
    m = create("dkt", hidden=8, epochs=30, patience=2, batch_size=16, lr=1e-4).fit(a, valid=v, key=0)
    hist = m.meta["history"]
    assert all("valid_auc" in r for r in hist)
    assert m.meta["stopped"] in ("patience", "epochs")
    assert 1 <= m.meta["best_epoch"] <= len(hist)
    json.dumps(hist)


def test_resume_equals_uninterrupted_run(tmp_path):
    tr = kt.load(str(SAMPLE / "train.csv"))
    small = tr.subset(tr.frame["user_idx"].unique().sort()[:30].to_numpy())
    from kt.data.splits import train_valid

    a, v = train_valid(small, 0.3, 0)
    cfg = dict(hidden=8, batch_size=16, patience=50)
    full = create("dkt", epochs=4, **cfg).fit(a, valid=v, key=5)
    ck = tmp_path / "ck"
    create("dkt", epochs=2, **cfg).fit(a, valid=v, key=5, checkpoint=ck)
    resumed = create("dkt", epochs=4, **cfg).fit(a, valid=v, key=5, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(full.params.w_out, resumed.params.w_out)
    np.testing.assert_array_equal(full.params.w_hh, resumed.params.w_hh)
    assert [r["train_loss"] for r in full.meta["history"]] == [r["train_loss"] for r in resumed.meta["history"]]


def test_cli_resume_without_checkpoint_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from kt.cli import app

    r = CliRunner().invoke(
        app, ["train", str(SAMPLE / "train.csv"), "--model", "dkt", "--out", str(tmp_path / "m"), "--resume", "--epochs", "1"]
    )
    assert r.exit_code == 1 and "no checkpoint found" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(
        app, ["train", str(SAMPLE / "train.csv"), "--model", "kc-rate", "--out", str(tmp_path / "k"), "--resume"]
    )
    assert r.exit_code == 1 and "no checkpoints" in r.output


def test_cli_train_dkt_writes_history_and_removes_checkpoint(tmp_path):
    from typer.testing import CliRunner

    from kt.cli import app

    out = tmp_path / "m"
    r = CliRunner().invoke(
        app,
        [
            "train",
            str(SAMPLE / "train.csv"),
            "--model",
            "dkt",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--set",
            "hidden=8",
            "--set",
            "batch_size=32",
            "--valid-frac",
            "0.2",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "epoch 2" in r.output and "valid AUC" in r.output
    lines = (out / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "valid_auc" in json.loads(lines[-1])
    assert not (tmp_path / "m.ckpt").exists()
    r = CliRunner().invoke(app, ["evaluate", str(out), str(SAMPLE / "test.csv"), "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e.json").read_text())["window"] == "window"


@pytest.mark.parametrize(("variant", "cell", "compressed"), [("piech", "rnn", 0), ("piech", "lstm", 6), ("pykt", "rnn", 0)])
def test_variants_are_causal_and_mask_safe(variant, cell, compressed):
    net = DKTNet.init(jax.random.key(3), 5, 8, 0.0, variant=variant, cell=cell, compressed=compressed)
    b = tiny_batch(np.random.default_rng(4))
    base = next_logits(net, b, None)
    t = 4
    flipped = dict(b, correct=b["correct"].at[:, t:].set(1 - b["correct"][:, t:]))
    np.testing.assert_allclose(base[:, : t + 1], next_logits(net, flipped, None)[:, : t + 1], atol=1e-6)
    padded = {k: jnp.pad(v, ((0, 2), (0, 7))) for k, v in b.items()}
    np.testing.assert_allclose(base, next_logits(net, padded, None)[:3, :9], atol=1e-6)


def test_piech_one_hot_equals_explicit_rnn():
    # The folded table must equal h_t = tanh(W_hx onehot(q + K r) + W_hh h_{t-1} + b).
    net = DKTNet.init(jax.random.key(5), 3, 4, 0.0, variant="piech", cell="rnn")
    skill, correct = np.array([[0, 2, 1, 1]]), np.array([[1, 0, 1, 1]])
    h = np.zeros(4)
    for q, r in zip(skill[0], correct[0]):
        x = np.zeros(6)
        x[q + 3 * r] = 1
        h = np.tanh(np.asarray(net.w_ih) @ x + np.asarray(net.w_hh) @ h + np.asarray(net.b))
    got = np.asarray(net.hidden_states(jnp.asarray(skill), jnp.asarray(correct)))[0, -1]
    np.testing.assert_allclose(got, h, atol=1e-5)


def test_compressed_projection_is_not_trained():
    m = create("dkt", sets=["variant=piech", "compressed=5", "hidden=6", "epochs=2", "batch_size=32"])
    data = kt.load(str(SAMPLE / "train.csv"))
    small = data.subset(data.frame["user_idx"].unique().sort().to_numpy()[:60])
    m.fit(small, key=0)
    fresh = m._init_net(jax.random.key(99))
    np.testing.assert_array_equal(np.asarray(m.params.embed), np.asarray(fresh.embed))
    assert m.params.w_ih.shape == (6, 5)


def test_variant_options_are_validated():
    for bad in (["variant=x"], ["cell=gru"], ["compressed=10"], ["variant=piech", "compressed=-1"]):
        with pytest.raises(KTError):
            create("dkt", sets=bad)

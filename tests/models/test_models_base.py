"""Model registry, configs, save/load and the reference baselines."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import polars as pl
import pytest

import kt
from kt.errors import KTError, ModelError
from kt.models import base
from kt.models import config as cfgmod
from kt.models.base import FORMAT_VERSION, create, get, load, read_header

# u1: A1 A1 A1 B0 ; u2: A0 B0 B1 A1  ->  A: 4/5 correct, B: 1/3, global 5/8
TRAIN_CSV = """user_id,skill_id,item_id,correct,order
u1,A,q1,1,1
u1,A,q2,1,2
u1,A,q1,1,3
u1,B,q3,0,4
u2,A,q1,0,1
u2,B,q3,0,2
u2,B,q4,1,3
u2,A,q2,1,4
"""
# test: A, B, unseen C, a question tagged A and B, a question tagged A and unseen C
TEST_CSV = """user_id,skill_id,correct,order
u3,A,1,1
u3,B,0,2
u3,C,1,3
u3,A~~B,1,4
u3,A~~C,0,5
u4,B,1,1
"""
N_A, C_A, N_B, C_B, G = 5, 4, 3, 1, 5 / 8


def _rate(c, n, prior, g=G):
    return (c + prior * g) / (n + prior)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    tr, te = tmp_path / "train.csv", tmp_path / "test.csv"
    tr.write_text(TRAIN_CSV)
    te.write_text(TEST_CSV)
    return tr, te


@pytest.fixture
def train(files) -> kt.Interactions:
    return kt.load(str(files[0]))


def _fitted(train, prior=2.0):
    return create("kc-rate", prior=prior).fit(train)


# --- registry and config ------------------------------------------------------


def test_registry_has_baselines():
    assert get("majority").name == "majority"
    assert get("kc-rate").name == "kc-rate"
    assert {"majority", "kc-rate"} <= set(base.REGISTRY)


def test_unknown_model_lists_available():
    with pytest.raises(KTError, match=r"unknown model 'nope'.*kc-rate.*majority"):
        get("nope")
    with pytest.raises(KTError):
        create("nope")


def test_create_defaults_and_sets():
    assert create("kc-rate").config.prior == 10.0
    m = create("kc-rate", sets=["prior=5"])
    assert m.config.prior == 5.0 and isinstance(m.config.prior, float)
    assert create("kc-rate", sets=["prior=5", " prior = 7 "]).config.prior == 7.0  # later wins
    assert create("kc-rate", prior=3.0).config.prior == 3.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.config.prior = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "sets,match",
    [
        (["bogus=1"], "unknown option"),
        (["prior"], "expected key=value"),
        (["prior=abc"], "expected float"),
        (["prior=-1"], "must be"),
        (["prior=nan"], "must be"),
        (["prior=inf"], "must be"),
    ],
)
def test_bad_sets_raise(sets, match):
    with pytest.raises(KTError, match=match):
        create("kc-rate", sets=sets)


def test_majority_has_no_options():
    with pytest.raises(KTError, match="unknown option"):
        create("majority", sets=["prior=1"])


def test_python_overrides_are_checked():
    with pytest.raises(KTError, match="unknown option 'bogus'"):
        create("kc-rate", bogus=1)
    with pytest.raises(KTError, match="must be"):
        create("kc-rate", prior=-1.0)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("prior = 3\n", 3.0),
        ("prior = 2.5\n", 2.5),
        ("[kc-rate]\nprior = 4\n", 4.0),
        ("[model]\nprior = 6\n", 6.0),
        ("[kc-rate]\nprior = 4\n[model]\nprior = 6\n", 4.0),
        ("[dkt]\nhidden = 64\n", 10.0),  # another model's table is ignored
        ("prior = 1\n[dkt]\nhidden = 64\n", 1.0),
        ("[kc-rate]\n", 10.0),
    ],
)
def test_toml_config(tmp_path, text, expected):
    p = tmp_path / "c.toml"
    p.write_text(text)
    assert create("kc-rate", toml_path=p).config.prior == expected


def test_sets_override_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[kc-rate]\nprior = 4\n")
    assert create("kc-rate", toml_path=p, sets=["prior=9"]).config.prior == 9.0


@pytest.mark.parametrize(
    "text,match",
    [
        ("bogus = 1\n", "unknown option 'bogus'"),
        ("[kc-rate]\nbogus = 1\n", "unknown option 'bogus'"),
        ('prior = "abc"\n', "expected float"),
        ("prior = true\n", "expected float"),
        ("prior = [1, 2]\n", "expected float"),
        ("prior = -2\n", "must be"),
        ("prior = = 3\n", "cannot read config"),
    ],
)
def test_bad_toml_raises(tmp_path, text, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(KTError, match=match):
        create("kc-rate", toml_path=p)


def test_missing_toml_raises(tmp_path):
    with pytest.raises(KTError, match="cannot read config"):
        create("kc-rate", toml_path=tmp_path / "absent.toml")


@dataclass(frozen=True)
class _Cfg:
    n: int = 1
    lr: float = 0.1
    flag: bool = False
    name: str = "x"
    dims: tuple[int, ...] = (8,)
    maybe: Optional[int] = None
    other: int | None = 3


def test_coercion_of_each_type(tmp_path):
    c = cfgmod.resolve(
        _Cfg,
        sets=["n=4", "lr=1e-3", "flag=yes", "name=abc", "dims=16, 32,", "maybe=5", "other=none"],
        model="t",
    )
    assert c == _Cfg(n=4, lr=1e-3, flag=True, name="abc", dims=(16, 32), maybe=5, other=None)
    for v, b in (("1", True), ("TRUE", True), ("on", True), ("0", False), ("No", False), ("off", False)):
        assert cfgmod.resolve(_Cfg, sets=[f"flag={v}"]).flag is b
    for bad in ("n=1.5", "n=x", "flag=maybe", "lr=", "dims=a,b"):
        with pytest.raises(KTError):
            cfgmod.resolve(_Cfg, sets=[bad])
    p = tmp_path / "c.toml"
    p.write_text('n = 2\nlr = 1\nflag = true\nname = "y"\ndims = [1, 2]\n')
    assert cfgmod.resolve(_Cfg, toml_path=p) == _Cfg(n=2, lr=1.0, flag=True, name="y", dims=(1, 2))
    for bad in ("n = 1.5", "n = true", 'flag = "yes please"', "flag = 1", "lr = false", "name = 3"):
        p.write_text(bad + "\n")
        with pytest.raises(KTError):
            cfgmod.resolve(_Cfg, toml_path=p)


def test_config_dict_round_trip():
    c = _Cfg(n=3, dims=(4, 5), maybe=None)
    d = cfgmod.to_dict(c)
    assert d["dims"] == [4, 5]
    json.dumps(d)
    assert cfgmod.from_dict(_Cfg, {**d, "removed_option": 1}) == c


# --- kc-rate and majority ----------------------------------------------------------


def test_kc_rate_hand_computed(train):
    for prior in (0.0, 2.0, 10.0):
        m = _fitted(train, prior)
        assert float(m.params.global_rate) == pytest.approx(G)
        assert m.vocab.skill_id == ["A", "B"]
        np.testing.assert_allclose(m.params.kc_rate, [_rate(C_A, N_A, prior), _rate(C_B, N_B, prior)])
    m = _fitted(train, 2.0)
    np.testing.assert_allclose(m.params.kc_rate, [0.75, 0.45])  # (4 + 1.25) / 7, (1 + 1.25) / 5


def test_kc_rate_predictions(train, files):
    m = _fitted(train, 2.0)
    p = m.predict(train)
    assert p.columns == ["user_id", "skill_id", "item_id", "position", "line", "correct", "prob"]
    assert p["position"].to_list() == [0, 1, 2, 3, 0, 1, 2, 3]
    np.testing.assert_allclose(p["prob"].to_numpy(), [0.75, 0.75, 0.75, 0.45, 0.75, 0.45, 0.45, 0.75])

    test = kt.load(str(files[1]), vocab=m.vocab, min_attempts=1)
    assert test.multi_kc
    assert test.stats.get("unknown_kcs") == 1  # C
    p = m.predict(test)
    assert p.height == test.n_rows
    assert p["user_id"].to_list() == ["u3"] * 5 + ["u4"]
    np.testing.assert_allclose(
        p["prob"].to_numpy(),
        [0.75, 0.45, G, (0.75 + 0.45) / 2, (0.75 + G) / 2, 0.45],  # unseen KC -> global rate; multi-KC -> mean
    )


def test_kc_rate_on_multi_kc_training(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text("user_id,skill_id,correct,order\nu1,A~~B,1,1\nu1,A,0,2\nu2,B,1,1\nu2,B,0,2\n")
    data = kt.load(str(path))
    m = create("kc-rate", prior=1.0).fit(data)
    g = 0.5  # over attempts, not over (attempt, KC) pairs
    assert float(m.params.global_rate) == pytest.approx(g)
    np.testing.assert_allclose(m.params.kc_rate, [_rate(1, 2, 1, g), _rate(2, 3, 1, g)])
    np.testing.assert_allclose(
        m.predict(data)["prob"].to_numpy(),
        [(_rate(1, 2, 1, g) + _rate(2, 3, 1, g)) / 2, _rate(1, 2, 1, g), _rate(2, 3, 1, g), _rate(2, 3, 1, g)],
    )


def test_kc_absent_from_training_subset_gets_global_rate(train):
    # the vocabulary covers KC B, but the training subset (u1 minus B rows) never practises it
    sub = kt.Interactions(train.frame.filter(pl.col("skill_id") == "A"), train.vocab)
    g = float(sub.frame["correct"].mean())
    for prior in (0.0, 3.0):
        m = create("kc-rate", prior=prior).fit(sub)
        assert m.params.kc_rate[1] == pytest.approx(g)
        assert np.isfinite(m.predict(train)["prob"].to_numpy()).all()


def test_kc_rate_mastery(train):
    m = _fitted(train, 2.0)
    ms = m.mastery(train)
    assert ms.columns == ["user_id", "skill_id", "attempts", "mastery"]
    got = {(r["user_id"], r["skill_id"]): (r["attempts"], r["mastery"]) for r in ms.iter_rows(named=True)}
    assert got.keys() == {("u1", "A"), ("u1", "B"), ("u2", "A"), ("u2", "B")}
    assert got[("u1", "A")] == (3, pytest.approx((3 + 2 * 0.75) / 5))
    assert got[("u1", "B")] == (1, pytest.approx((0 + 2 * 0.45) / 3))
    assert got[("u2", "A")] == (2, pytest.approx((1 + 2 * 0.75) / 4))
    assert got[("u2", "B")] == (2, pytest.approx((1 + 2 * 0.45) / 4))


def test_majority(train, files):
    m = create("majority").fit(train)
    assert float(m.params.global_rate) == pytest.approx(G)
    test = kt.load(str(files[1]), vocab=m.vocab, min_attempts=1)
    for d in (train, test):
        np.testing.assert_allclose(m.predict(d)["prob"].to_numpy(), np.full(d.n_rows, G))
    ms = m.mastery(train)
    assert ms.height == 4 and np.allclose(ms["mastery"].to_numpy(), G)


def test_unfitted_model_raises(tmp_path, train):
    m = create("kc-rate")
    with pytest.raises(ModelError, match="not fitted"):
        m.predict(train)
    with pytest.raises(ModelError, match="not fitted"):
        m.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --- save / load ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["kc-rate", "majority"])
def test_save_load_round_trip(tmp_path, train, files, name):
    m = create(name).fit(train)
    m.meta["note"] = "x"
    out = m.save(tmp_path / "model")
    assert out == tmp_path / "model"
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "params.eqx"]
    h = json.loads((out / "model.json").read_text())
    assert h["format_version"] == FORMAT_VERSION
    assert h["model"] == name
    assert h["config"] == cfgmod.to_dict(m.config)
    assert h["vocab"] == m.vocab.to_dict()
    assert h["kt_version"] == kt.__version__
    assert h["meta"]["note"] == "x"
    assert "created" in h
    assert read_header(out) == h

    m2 = load(out)
    assert type(m2) is type(m) and m2.config == m.config and m2.vocab == m.vocab and m2.meta == m.meta
    test = kt.load(str(files[1]), vocab=m2.vocab, min_attempts=1)
    for d in (train, test):
        a, b = m.predict(d), m2.predict(d)
        assert a.equals(b)
    assert m.mastery(train).equals(m2.mastery(train))


def test_save_creates_parents_and_normal_permissions(tmp_path, train):
    old = os.umask(0o022)
    try:
        out = _fitted(train).save(tmp_path / "a" / "b" / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "model.json").stat().st_mode) & 0o044 == 0o044


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.fixture
def outdir(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_save_replaces_existing_model_dir(outdir, train):
    target = outdir / "model"
    _fitted(train, 2.0).save(target)
    _fitted(train, 0.0).save(target)
    assert load(target).config.prior == 0.0
    np.testing.assert_allclose(load(target).params.kc_rate, [C_A / N_A, C_B / N_B])
    assert _siblings(target) == ["model"]  # no temporary or backup dirs left behind


def test_failed_save_keeps_previous_model(outdir, train, monkeypatch):
    import equinox as eqx

    target = outdir / "model"
    _fitted(train, 2.0).save(target)
    before = (target / "model.json").read_text()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(eqx, "tree_serialise_leaves", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _fitted(train, 0.0).save(target)
    assert (target / "model.json").read_text() == before
    assert load(target).config.prior == 2.0
    assert _siblings(target) == ["model"]


def test_save_into_empty_dir(tmp_path, train):
    target = tmp_path / "empty"
    target.mkdir()
    _fitted(train).save(target)
    assert load(target).name == "kc-rate"


def test_save_refuses_non_model_dir(outdir, train):
    target = outdir / "docs"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(KTError, match="not a kt model directory"):
        _fitted(train).save(target)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert _siblings(target) == ["docs"]


def test_save_refuses_a_file(outdir, train):
    target = outdir / "model"
    target.write_text("not a dir")
    with pytest.raises(KTError, match="not a kt model directory"):
        _fitted(train).save(target)
    assert target.read_text() == "not a dir"
    assert _siblings(target) == ["model"]


def _edit_header(path: Path, **changes):
    h = json.loads((path / "model.json").read_text())
    h.update(changes)
    (path / "model.json").write_text(json.dumps(h))


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 99, "1", None, 1.5])
def test_load_rejects_newer_or_bad_format_version(tmp_path, train, version):
    target = _fitted(train).save(tmp_path / "m")
    _edit_header(target, format_version=version)
    with pytest.raises(ModelError, match="format"):
        load(target)


def test_load_errors(tmp_path, train):
    with pytest.raises(ModelError, match="not a kt model directory"):
        load(tmp_path / "absent")
    with pytest.raises(ModelError, match="not a kt model directory"):
        read_header(tmp_path / "absent")
    target = _fitted(train).save(tmp_path / "m")

    _edit_header(target, model="nope")
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        load(target)

    target = _fitted(train).save(target)
    (target / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="corrupt"):
        load(target)

    target = _fitted(train).save(target)
    (target / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="corrupt"):
        load(target)

    target = _fitted(train).save(target)
    (target / "params.eqx").write_bytes(b"xx")
    with pytest.raises(ModelError, match="params.eqx"):
        load(target)

    target = _fitted(train).save(target)
    (target / "params.eqx").unlink()
    with pytest.raises(ModelError, match="params.eqx"):
        load(target)

    # vocabulary that disagrees with the parameters' shape
    target = _fitted(train).save(target)
    h = json.loads((target / "model.json").read_text())
    h["vocab"]["skill_id"] = ["A"]
    (target / "model.json").write_text(json.dumps(h))
    with pytest.raises(ModelError, match="params.eqx"):
        load(target)

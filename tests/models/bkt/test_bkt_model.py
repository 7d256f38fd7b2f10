"""BKT model behaviour: recovery, leak-freedom, fallbacks, online prediction, CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from kt.cli import app
from kt.data.io import RawTable
from kt.data.columns import ColumnMap
from kt.data.schema import to_interactions
from kt.data.synthetic import simulate_bkt
from kt.models.base import create, load

runner = CliRunner()


def frame_to_data(frame: pl.DataFrame, vocab=None, min_attempts=1):
    f = frame.with_columns(pl.all().cast(pl.String)).with_row_index("__line", offset=2)
    cols = {c: c for c in frame.columns if c in ("user_id", "skill_id", "item_id", "correct", "timestamp")}
    return to_interactions(RawTable(f, ColumnMap(cols, "test"), "mem.csv", "csv"), vocab=vocab, min_attempts=min_attempts)


@pytest.fixture(scope="module")
def synthetic():
    frame, truth = simulate_bkt(2000, 3, 20, seed=7)
    return frame_to_data(frame), truth


@pytest.fixture(scope="module")
def fitted(synthetic):
    data, _ = synthetic
    return create("bkt").fit(data, key=0)


def test_parameter_recovery_within_003(synthetic, fitted):
    _, truth = synthetic
    table = fitted.params_table()
    for kc, true in truth["kcs"].items():
        for param in ("prior", "learn", "guess", "slip"):
            got = table.filter((pl.col("skill_id") == kc) & (pl.col("param") == param))["value"][0]
            assert abs(got - true[param]) < 0.03, (kc, param, got, true[param])
    assert table.filter(pl.col("param") == "forget")["value"].max() == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["forgets", "multigs"])
def test_parameter_recovery_variants(variant):
    frame, truth = simulate_bkt(
        3000,
        2,
        20,
        seed=11,
        forgets=variant == "forgets",
        items_per_kc=3 if variant == "multigs" else 1,
        multigs=variant == "multigs",
    )
    model = create("bkt", **{variant: True}).fit(frame_to_data(frame), key=1)
    t = model.params_table()
    for kc, true in truth["kcs"].items():
        params = ("prior", "learn", "forget") if variant == "forgets" else ("prior", "learn")
        for param in params:
            got = t.filter((pl.col("skill_id") == kc) & (pl.col("param") == param))["value"][0]
            assert abs(got - true[param]) < 0.03, (kc, param, got, true[param])
    if variant == "multigs":
        for item, true in truth["items"].items():
            for param in ("guess", "slip"):
                got = t.filter((pl.col("class") == item) & (pl.col("param") == param))["value"][0]
                assert abs(got - true[param]) < 0.05, (item, param, got, true[param])


def test_best_restart_has_highest_loglik(synthetic):
    data, _ = synthetic
    m = create("bkt", num_fits=3, max_iter=15).fit(data, key=3)
    assert all(r in (0, 1, 2) for r in m.meta["fit"]["restart"])
    single = [create("bkt", num_fits=1, max_iter=15).fit(data, key=k) for k in (10, 11)]
    for kc in range(3):
        assert m.meta["fit"]["loglik"][kc] >= max(s.meta["fit"]["loglik"][kc] for s in single) - 5.0


def test_predict_uses_only_history_and_prefix_is_stable(synthetic, fitted):
    data, _ = synthetic
    users = data.frame["user_idx"].unique().sort()[:20]
    sub = data.subset(users.to_numpy())
    full = fitted.predict(sub)
    # Cut each learner's history in half: predictions on the prefix must not change.
    half = sub.frame.filter(pl.int_range(pl.len()).over("user_idx") < pl.len().over("user_idx") // 2)
    prefix = type(sub)(half, sub.vocab)
    pre = fitted.predict(prefix)
    joined = pre.join(full, on=["user_id", "position"], suffix="_full")
    np.testing.assert_allclose(joined["prob"], joined["prob_full"], atol=1e-6)
    # Flipping an outcome never changes its own prediction.
    flipped = sub.frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(1 - pl.col("correct")).otherwise(pl.col("correct")).alias("correct")
    )
    other = fitted.predict(type(sub)(flipped, sub.vocab))
    assert abs(other["prob"][5] - full["prob"][5]) < 1e-7
    assert abs(other["prob"][6] - full["prob"][6]) > 0 or full["skill_id"][6] != full["skill_id"][5]


def _first_flip(mode):
    frame, _ = simulate_bkt(400, 2, 10, seed=5)
    data = frame_to_data(frame)
    m = create("bkt", multiprior=True, multiprior_mode=mode, max_iter=20).fit(data, key=0)
    test = data.subset(data.frame["user_idx"].unique().sort()[:1].to_numpy())
    base = m.predict(test)
    first_row = 0
    flipped = test.frame.with_columns(
        pl.when(pl.int_range(pl.len()) == first_row).then(1 - pl.col("correct")).otherwise(pl.col("correct")).alias("correct")
    )
    again = m.predict(type(test)(flipped, test.vocab))
    return base, again


def test_multiprior_leak_free_first_prediction_ignores_first_answer():
    base, again = _first_flip("leak_free")
    assert abs(base["prob"][0] - again["prob"][0]) < 1e-7
    assert "leaky" not in base.columns


def test_multiprior_pybkt_mode_leaks_and_is_flagged():
    base, again = _first_flip("pybkt")
    assert abs(base["prob"][0] - again["prob"][0]) > 1e-4
    # The leak is at each (learner, KC)'s first attempt: that answer picks the prior used to predict it.
    first_of_kc = base.select(pl.int_range(pl.len()).over("skill_id") == 0).to_series()
    assert base["leaky"].to_list() == first_of_kc.to_list()


def test_unseen_kc_uses_population_mean(fitted):
    test = pl.DataFrame({"user_id": ["x", "x", "x"], "skill_id": ["kc0", "new-kc", "new-kc"], "correct": [1, 0, 1]})
    data = frame_to_data(test, vocab=fitted.vocab)
    assert any("unknown to the model" in n for n in data.notes)
    pred = fitted.predict(data)
    assert pred["kc_fallback"].to_list() == [False, True, True]
    t = fitted.params_table()
    mean = {p: t.filter(pl.col("param") == p)["value"].mean() for p in ("prior", "guess", "slip")}
    expected = mean["prior"] * (1 - mean["slip"]) + (1 - mean["prior"]) * mean["guess"]
    assert abs(pred["prob"][1] - expected) < 1e-5


def test_invalid_variant_combination_is_rejected():
    with pytest.raises(Exception, match="cannot be combined"):
        create("bkt", sets=["multilearn=true", "multipair=true"])


def test_float32_matches_float64(synthetic):
    data, _ = synthetic
    a = create("bkt", num_fits=2, max_iter=30).fit(data, key=4)
    b = create("bkt", num_fits=2, max_iter=30, x64=True).fit(data, key=4)
    ta, tb = a.params_table(), b.params_table()
    np.testing.assert_allclose(ta["value"], tb["value"], atol=2e-3)
    np.testing.assert_allclose(a.predict(data)["prob"], b.predict(data)["prob"], atol=2e-3)


def test_cli_train_evaluate_export_roundtrip(tmp_path, synthetic, fitted):
    frame, _ = simulate_bkt(300, 2, 10, seed=9)
    csv = tmp_path / "sim.csv"
    frame.write_csv(csv)
    out = tmp_path / "m"
    r = runner.invoke(app, ["train", str(csv), "--model", "bkt", "--out", str(out), "--set", "num_fits=2", "--seed", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(out), str(csv), "--include-first", "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["auc"] > 0.6 and res["include_first"] is True
    r = runner.invoke(app, ["export-params", str(out), "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    params = pl.read_csv(tmp_path / "p.csv")
    assert set(params["param"]) == {"prior", "learn", "forget", "guess", "slip"}
    loaded = load(out)
    data = frame_to_data(frame, vocab=loaded.vocab)
    np.testing.assert_allclose(loaded.predict(data)["prob"], loaded.predict(data)["prob"])
    r = runner.invoke(app, ["predict", str(out), str(csv), "--out", str(tmp_path / "m.csv"), "--mastery"])
    assert r.exit_code == 0, r.output
    mastery = pl.read_csv(tmp_path / "m.csv")
    assert {"p_known", "p_known_next"} <= set(mastery.columns)
    assert mastery["p_known"].is_between(0, 1).all()
    r = runner.invoke(
        app,
        [
            "train",
            str(csv),
            "--model",
            "bkt",
            "--out",
            str(tmp_path / "bad"),
            "--set",
            "multiprior=true",
            "--set",
            "multilearn=true",
        ],
    )
    assert r.exit_code == 1 and "cannot be combined" in r.output and "Traceback" not in r.output


def test_save_load_roundtrip_identical(tmp_path, fitted, synthetic):
    data, _ = synthetic
    fitted.save(tmp_path / "bkt")
    loaded = load(tmp_path / "bkt")
    sub = data.subset(data.frame["user_idx"].unique().sort()[:50].to_numpy())
    np.testing.assert_array_equal(fitted.predict(sub)["prob"], loaded.predict(sub)["prob"])
    assert loaded.params_table().equals(fitted.params_table())


def _uneven_data():
    frame, _ = simulate_bkt(300, 4, 12, seed=21)
    # Uneven KC sizes so that KCs converge at different iterations.
    frame = frame.filter(~((pl.col("skill_id") == "kc3") & (pl.col("user_id").str.slice(1).cast(pl.Int32) % 3 != 0)))
    return frame_to_data(frame)


def test_shrinking_grid_phases_equal_single_phase(monkeypatch):
    # The grid engine (per-item slots, here multigs) continues on smaller grids of the iterating KCs.
    import kt.models.bkt.model as bkt_mod

    data = _uneven_data()
    monkeypatch.setattr(bkt_mod, "SHRINK", 0.9)
    opts = dict(num_fits=2, max_iter=60, tol=1e-6, x64=True, multigs=True)
    multi = create("bkt", **opts).fit(data, key=2)
    assert multi.meta["fit"]["engine"] == "grid" and len(multi.meta["fit"]["phases"]) > 1
    monkeypatch.setattr(bkt_mod, "MAX_PHASES", 1)
    single = create("bkt", **opts).fit(data, key=2)
    assert len(single.meta["fit"]["phases"]) == 1
    np.testing.assert_allclose(multi.params_table()["value"], single.params_table()["value"], atol=1e-9)
    assert multi.meta["fit"]["iterations"] == single.meta["fit"]["iterations"]


def test_lane_relayouts_change_nothing(monkeypatch):
    # The lane engine drops converged KC x restart pairs by re-laying out the lanes; exact.
    import kt.models.bkt.lanes as em

    data = _uneven_data()
    opts = dict(num_fits=3, max_iter=60, tol=1e-6, x64=True)
    fits, layouts = [], []
    for relayout in (1.0, 0.0):  # re-lay out whenever it does not cost more / never after the first
        real = em.fit_lanes
        monkeypatch.setattr(em, "fit_lanes", lambda *a, _r=relayout, _f=real, **k: _f(*a, relayout=_r, **k))
        m = create("bkt", **opts).fit(data, key=2)
        monkeypatch.setattr(em, "fit_lanes", real)
        assert m.meta["fit"]["engine"] == "lanes"
        fits.append(m)
        layouts.append(m.meta["fit"]["layouts"])
    assert layouts[0] > 1 and layouts[1] == 1
    np.testing.assert_allclose(fits[0].params_table()["value"], fits[1].params_table()["value"], atol=1e-12)
    assert fits[0].meta["fit"]["iterations"] == fits[1].meta["fit"]["iterations"]


def test_pybkt_cpp_stop_rule_stops_earlier_on_integer_logliks(synthetic):
    data, _ = synthetic
    exact = create("bkt", num_fits=2).fit(data, key=6)
    cpp = create("bkt", num_fits=2, stop_rule="pybkt_cpp").fit(data, key=6)
    assert max(cpp.meta["fit"]["iterations"]) <= max(exact.meta["fit"]["iterations"])
    assert all(float(v).is_integer() for v in cpp.meta["fit"]["loglik"])
    with pytest.raises(Exception, match="stop_rule"):
        create("bkt", stop_rule="fast")


def test_init_values_set_the_starting_point():
    from kt.errors import KTError

    frame, _ = simulate_bkt(200, 2, 10, seed=3)
    data = frame_to_data(frame)
    names = list(data.vocab.skill_id)
    start = {names[0]: {"prior": 0.3, "learn": 0.1, "guess": 0.2, "slip": 0.1}}
    one = create("bkt", sets=["max_iter=1"]).fit(data, key=0, init=start)
    other = create("bkt", sets=["max_iter=1"]).fit(data, key=7, init=start)
    # After one EM step from the same start, every restart of KC 0 agrees, whatever the key.
    t0, t1 = one.params_table(), other.params_table()
    kc0 = lambda t: t.filter(pl.col("skill_id") == names[0]).sort("param")["value"].to_numpy()  # noqa: E731
    assert not np.allclose(t0.sort("skill_id", "param")["value"].to_numpy(), t1.sort("skill_id", "param")["value"].to_numpy())
    np.testing.assert_allclose(kc0(t0), kc0(t1), atol=1e-6)
    with pytest.raises(KTError):
        create("bkt").fit(data, init={"nope": {"prior": 0.5}})
    with pytest.raises(KTError):
        create("bkt", sets=["multigs=true"]).fit(data, init=start)


@pytest.mark.parametrize("sets", [[], ["forgets=true"], ["multiprior=true"]])
def test_lane_engine_equals_grid_engine_in_the_model(monkeypatch, sets):
    import kt.models.bkt.lanes as em

    data = _uneven_data()
    opts = dict(num_fits=2, max_iter=40, tol=1e-6, x64=True)
    lanes = create("bkt", sets=sets, **opts).fit(data, key=5)
    monkeypatch.setattr(em, "lane_kernel", lambda *a, **k: None)  # no kernel: the grid engine fits
    grid = create("bkt", sets=sets, **opts).fit(data, key=5)
    assert lanes.meta["fit"]["engine"] == "lanes" and grid.meta["fit"]["engine"] == "grid"
    np.testing.assert_allclose(lanes.params_table()["value"], grid.params_table()["value"], atol=1e-9)
    assert lanes.meta["fit"]["iterations"] == grid.meta["fit"]["iterations"]
    np.testing.assert_allclose(lanes.predict(data)["prob"], grid.predict(data)["prob"], atol=1e-9)

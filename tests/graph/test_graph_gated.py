"""Issue 16 first slice: the gated generator (`kt simulate --kind gated`), its
likelihood ceiling, the ou-graph effect option, and the mastery structure learner."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest

import kt
from kt.data.synthetic import simulate_ou_graph
from kt.data.synthetic_gated import PARENTS, default_edge_prob, gated_loglik, simulate_gated
from kt.errors import KTError
from kt.graph.build import data_graph
from kt.graph.mastery import mastery_graph
from tests.cli_run import invoke as run


def _load(tmp_path, frame, name="d.csv"):
    frame.write_csv(tmp_path / name)
    return kt.load(str(tmp_path / name))


def test_gated_truth_round_trips_through_graph_eval(tmp_path):
    csv, truth = tmp_path / "g.csv", tmp_path / "truth.json"
    run(
        "simulate",
        "--kind",
        "gated",
        "--learners",
        60,
        "--kcs",
        6,
        "--steps",
        30,
        "--seed",
        3,
        "--schedule",
        "curriculum",
        "--out",
        csv,
        "--truth",
        truth,
    )
    t = json.loads(truth.read_text())
    assert t["kind"] == "gated" and len(t["kcs"]) == 6 and len(t["learners"]) == 60
    assert set(pl.read_csv(csv)["item_id"].to_list()) <= set(t["items"])
    # The truth scored as a graph against itself: every true edge ranks first.
    run("graph-eval", truth, truth, "--json", tmp_path / "m.json")
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["auroc"] == 1.0 and m["orientation_accuracy"] == 1.0 and m["n_true_edges"] == len(t["edges"]) > 0
    # The data load with kt's loader (multi-KC cells split on ~~) and every graph method scores against the truth.
    d = kt.load(str(csv))
    assert d.multi_kc and d.vocab.size("skill_id") == 6
    for method in ("mastery", "transition"):
        run("learn-graph", csv, "--method", method, "--out", tmp_path / f"{method}.json")
        run("graph-eval", tmp_path / f"{method}.json", truth, "--json", tmp_path / f"{method}-m.json")
        assert json.loads((tmp_path / f"{method}-m.json").read_text())["method"] == method


def test_gated_generator_is_deterministic_for_a_seed():
    a = simulate_gated(40, 5, 25, seed=7, schedule="curriculum")
    b = simulate_gated(40, 5, 25, seed=7, schedule="curriculum")
    c = simulate_gated(40, 5, 25, seed=8, schedule="curriculum")
    assert a[0].equals(b[0]) and a[1] == b[1]
    assert not a[0].equals(c[0])


def test_gated_default_density_keeps_prerequisites_per_kc_whatever_k():
    # K = 10 keeps the earlier default (edge probability 0.3) and its data exactly.
    assert default_edge_prob(10) == 0.3 and default_edge_prob(1) == 0.0 and default_edge_prob(3) == 1.0
    a, b = simulate_gated(30, 10, 20, seed=4), simulate_gated(30, 10, 20, seed=4, edge_prob=0.3)
    assert a[0].equals(b[0]) and a[1]["settings"]["edge_prob"] == 0.3
    # At K = 30 a constant 0.3 would give 4.35 prerequisites per KC; the default keeps about PARENTS.
    per_kc = [len(simulate_gated(2, 30, 2, seed=s)[1]["edges"]) / 30 for s in range(40)]
    assert abs(np.mean(per_kc) - PARENTS) < 0.15
    t = simulate_gated(2, 30, 2, seed=0)[1]
    assert t["settings"]["edge_prob"] == default_edge_prob(30) == 0.0931
    assert len(simulate_gated(2, 30, 2, seed=0, edge_prob=0.3)[1]["edges"]) / 30 > 3


def test_simulate_edge_prob_defaults_per_generator(tmp_path):
    for kind, kcs, expected in (("gated", 30, 0.0931), ("ou-graph", 30, 0.3)):
        run(
            "simulate",
            "--kind",
            kind,
            "--learners",
            2,
            "--kcs",
            kcs,
            "--steps",
            3,
            "--out",
            tmp_path / f"{kind}.csv",
            "--truth",
            tmp_path / f"{kind}.json",
        )
        assert json.loads((tmp_path / f"{kind}.json").read_text())["settings"]["edge_prob"] == expected


def test_gated_withheld_kc_is_never_practised():
    f, t = simulate_gated(80, 5, 40, seed=1, withheld=1.0)
    for r in t["learners"]:
        kcs = f.filter(pl.col("user_id") == r["user_id"])["skill_id"].str.split("~~").explode()
        assert r["withheld"] not in set(kcs.to_list())


def test_gated_bad_options_are_one_line_errors(tmp_path):
    res = run("simulate", "--kind", "gated", "--out", tmp_path / "x.csv", "--schedule", "sorted", ok=False)
    assert res.exit_code == 1 and "--schedule 'sorted'" in res.output and "Traceback" not in res.output
    res = run("simulate", "--kind", "gated", "--out", tmp_path / "x.csv", "--effect", "1.5", ok=False)
    assert res.exit_code == 1 and "--effect 1.5" in res.output
    with pytest.raises(KTError, match="cycle"):
        simulate_gated(5, 3, 5, adjacency=np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]))


def test_gated_exact_likelihood_matches_a_particle_filter_and_the_graph_gains():
    f, t = simulate_gated(
        40, 4, 30, seed=2, effect=0.9, adjacency=np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    )
    exact = gated_loglik(f, t).sum()
    pf = gated_loglik(f, t, exact=False, particles=4096, seed=0).sum()
    assert abs(exact - pf) < 0.01 * abs(exact)
    assert exact > gated_loglik(f, t, adjacency=np.zeros((4, 4))).sum()  # the true graph explains the outcomes better


def test_mastery_recovers_a_three_kc_chain_with_orientation(tmp_path):
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])  # a -> b -> c
    f, t = simulate_gated(
        400, 3, 60, seed=0, effect=0.95, adjacency=chain, withheld=0.3, multi_kc=0.0, items_per_kc=1, forget=0.0
    )
    d = _load(tmp_path, f)
    g = mastery_graph(d, t["kcs"])
    assert g.method == "mastery"
    p = g.prob
    assert p[0, 1] > p[1, 0] and p[1, 2] > p[2, 1]  # orientation
    assert min(p[0, 1], p[1, 2]) > 0.5  # both edges have evidence for them
    # a says nothing about c once b is in the regression (no transitive edge), and c nothing about a.
    assert max(p[0, 2], p[2, 0]) < min(p[0, 1], p[1, 2])


def test_transition_baseline_follows_practice_order(tmp_path):
    rows = [("u1", k, 1, t) for t, k in enumerate(["a", "b", "c"] * 5)] + [
        ("u2", k, 0, t) for t, k in enumerate(["a", "b", "c"] * 5)
    ]
    d = _load(tmp_path, pl.DataFrame(rows, schema=["user_id", "skill_id", "correct", "timestamp"], orient="row"))
    g = data_graph(d, "transition")
    names = g.kcs
    a, b, c = (names.index(x) for x in "abc")
    assert g.method == "transition" and g.support[a, b] == 10 and g.support[b, a] == 0
    assert g.prob[a, b] > 0.5 > g.prob[b, a]
    with pytest.raises(KTError, match="unknown graph method"):
        data_graph(d, "magic")


def _digest(frame: pl.DataFrame, truth: dict) -> str:
    h = hashlib.sha256()
    h.update(frame["correct"].to_numpy().tobytes())
    h.update(frame["timestamp"].to_numpy().tobytes())
    h.update("|".join(frame["skill_id"].to_list()).encode())
    h.update(json.dumps(truth, sort_keys=True).encode())
    return h.hexdigest()


def test_ou_graph_default_effect_reproduces_the_earlier_output():
    # Digest of simulate_ou_graph(60, 6, 30, seed=3) computed with the code before `effect` existed.
    f, t = simulate_ou_graph(60, 6, 30, seed=3)
    assert _digest(f, t) == "667efab5adacbaa958004959c2489c3d9fb18c814423e354e5e5e5d4583d85c3"
    f1, t1 = simulate_ou_graph(60, 6, 30, seed=3, effect=1.0)
    assert f1.equals(f) and t1 == t
    f3, t3 = simulate_ou_graph(60, 6, 30, seed=3, effect=3.0)
    assert t3["settings"]["effect"] == 3.0 and not f3["correct"].equals(f["correct"])
    with pytest.raises(KTError, match="--effect"):
        simulate_ou_graph(5, 3, 5, effect=-1.0)

"""Per-edge bootstrap stability (issue 16 item 4) and the export-graph
defaults (item 3): arrays round-trip through graph.json, a fixed seed gives
the same stability, --min-stability filters, a strong chain is stable, and
the issue's CLI flow runs end to end."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import polars as pl
import pytest

from kt.data.schema import load
from kt.data.synthetic_gated import simulate_gated
from kt.graph.bootstrap import bootstrap_graph, kept_mask, resample_learners
from kt.graph.export import view
from kt.graph.graph import MATRICES, METHODS, PrerequisiteGraph, read_graph
from tests.cli_run import invoke as run

CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def error_line(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A strong 3-KC chain kc0 -> kc1 -> kc2 (gated generator, full gate)."""
    d = tmp_path_factory.mktemp("chain")
    frame, truth = simulate_gated(500, 3, 40, seed=0, adjacency=CHAIN, effect=1.0)
    frame.write_csv(d / "chain.csv")
    return load(str(d / "chain.csv")), truth, d


@pytest.fixture(scope="module")
def boot(chain):
    data, truth, _ = chain
    return bootstrap_graph(data, "mastery", truth["kcs"], n=20, seed=0)


def test_methods_and_matrices_are_listed():
    assert {"mastery", "transition"} <= set(METHODS)
    assert {"stability", "strength_lo", "strength_hi"} <= set(MATRICES)


def test_resample_draws_learners_with_replacement(chain):
    data, _, _ = chain
    r = resample_learners(data, np.random.default_rng(0))
    assert r.n_users == data.n_users  # each draw is a learner of its own, duplicates included
    lengths = r.frame.group_by("user_idx").len()["len"].to_numpy()
    assert set(lengths) <= set(data.frame.group_by("user_idx").len()["len"].to_numpy())
    assert r.frame["user_id"].str.contains("#").all()


def test_strong_chain_edges_are_stable(boot):
    s = boot.stability
    assert s[0, 1] >= 0.9 and s[1, 2] >= 0.9
    assert s[1, 0] <= 0.1 and s[2, 1] <= 0.1  # the reverse direction loses in (nearly) every refit
    lo, hi = boot.strength_lo, boot.strength_hi
    assert np.all(lo <= hi) and lo[0, 1] > 0.5 and lo[1, 2] > 0.5
    assert boot.meta["bootstrap"]["refits"] == 20 and boot.meta["bootstrap"]["seed"] == 0


def test_same_seed_same_stability(chain, boot):
    data, truth, _ = chain
    again = bootstrap_graph(data, "mastery", truth["kcs"], n=20, seed=0)
    assert np.array_equal(again.stability, boot.stability)
    assert np.array_equal(again.strength_lo, boot.strength_lo) and np.array_equal(again.strength_hi, boot.strength_hi)
    other = bootstrap_graph(data, "mastery", truth["kcs"], n=20, seed=1)
    assert not np.array_equal(other.strength_lo, boot.strength_lo)


def test_stability_round_trips_through_graph_json(boot, tmp_path):
    (tmp_path / "graph.json").write_text(boot.to_json())
    d = json.loads((tmp_path / "graph.json").read_text())
    assert d["kt_graph"] == 2 and d["stability"]["encoding"] == "zlib+base64"  # compact typed arrays
    g = read_graph(tmp_path)
    for name in ("prob", "stability", "strength_lo", "strength_hi"):
        assert np.array_equal(getattr(g, name), getattr(boot, name)), name
    assert g.meta["bootstrap"]["keep_rule"] == boot.meta["bootstrap"]["keep_rule"]
    g1 = PrerequisiteGraph.from_dict(boot.to_dict())  # format 1 (nested lists, six decimals)
    assert np.allclose(g1.stability, boot.stability, atol=1e-6)


def test_min_stability_filters_edges(boot):
    every = view(boot, 0.0).edges
    stable = view(boot, 0.0, min_stability=0.9).edges
    assert 0 < len(stable) < len(every)
    assert all(boot.stability[u, w] >= 0.9 for u, w, _ in stable)
    assert {(u, w) for u, w, _ in stable} <= {(u, w) for u, w, _ in every}


def test_kept_mask_rule():
    p = np.array([[0, 0.9, 0.6], [0.7, 0, 0.55], [0.4, 0.5, 0]])
    k = kept_mask(p, 0.5)
    assert k[0, 1] and not k[1, 0]  # the weaker direction is not kept
    assert k[0, 2] and k[1, 2] and not k[2, 1]
    assert kept_mask(p, 0.5, top_k=1).sum() == 1 and kept_mask(p, 0.5, top_k=1)[0, 1]


def test_learn_graph_bootstrap_formats_and_min_stability(chain):
    _, _, d = chain
    run("learn-graph", d / "chain.csv", "--out", d / "b.json", "--bootstrap", "2", "--seed", "2")
    e = json.loads((d / "b.json").read_text())
    assert e["method"] == "gated" and "stability" in e and all("stability" in x for x in e["edges"])  # the default here
    run(
        "learn-graph",
        d / "chain.csv",
        "--out",
        d / "b.graphml",
        "--bootstrap",
        "5",
        "--seed",
        "2",
        "--min-stability",
        "0.8",
        "--method",
        "mastery",
    )
    g = nx.read_graphml(d / "b.graphml")
    assert g.number_of_edges() >= 2 and all(a["stability"] >= 0.8 for *_, a in g.edges(data=True))
    run("learn-graph", d / "chain.csv", "--out", d / "b.dot", "--bootstrap", "5", "--threshold", "0", "--method", "mastery")
    dot = (d / "b.dot").read_text()
    assert "stability=" in dot and "style=dashed" in dot  # weak edges (stability < 0.9) are dashed
    run("learn-graph", d / "chain.csv", "--out", d / "b.mmd", "--bootstrap", "5", "--method", "mastery")
    assert " s1.00|" in (d / "b.mmd").read_text()
    line = error_line(run("learn-graph", d / "chain.csv", "--out", d / "x.json", "--min-stability", "0.9", ok=False))
    assert "--min-stability needs per-edge stability" in line and "--bootstrap" in line
    line = error_line(run("learn-graph", d / "chain.csv", "--out", d / "x.json", "--bootstrap", "1", ok=False))
    assert "--bootstrap 1" in line


def test_issue_cli_flow(tmp_path):
    """kt simulate --kind gated --truth, kt train bkt, export-graph --bootstrap 20, graph-eval."""
    sim, truth, m = tmp_path / "sim.csv", tmp_path / "t.json", tmp_path / "m"
    run("simulate", "--kind", "gated", "--out", sim, "--learners", "300", "--kcs", "5", "--steps", "40", "--truth", truth)
    run("train", sim, "--model", "bkt", "--out", m)
    # 20 refits of the mastery graph (seconds); the default (gated) graph's bootstrap is exercised below
    res = run("export-graph", m, "--out", tmp_path / "g.html", "--bootstrap", "20", "--method", "mastery")
    assert "(mastery, stability from 20 learner resamples)" in res.output
    html = (tmp_path / "g.html").read_text()
    assert '"stability": [[' in html and '"refits": 20' in html
    run("graph-eval", m, truth)
    # JSON export names the method and carries the arrays; the same seed gives the same stability.
    run("export-graph", m, "--out", tmp_path / "a.json", "--bootstrap", "2", "--seed", "7")
    run("export-graph", m, "--out", tmp_path / "b.json", "--bootstrap", "2", "--seed", "7")
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["method"] == "gated" and a["stability"] == b["stability"]
    # the model's own graph on request; bootstrap of a model graph is refused
    assert "(causal-support)" in run("export-graph", m, "--out", tmp_path / "c.json", "--method", "causal-support").output
    line = error_line(run("export-graph", m, "--out", tmp_path / "x.json", "--method", "influence", ok=False))
    assert "no conditional-influence graph" in line
    # without the training data: the saved graph with a note; --bootstrap needs --data
    header = json.loads((m / "model.json").read_text())
    header["meta"]["train_file"] = str(tmp_path / "gone.csv")
    (m / "model.json").write_text(json.dumps(header))
    res = run("export-graph", m, "--out", tmp_path / "d.json")
    assert "gone.csv" in res.stderr and "--data FILE" in res.stderr and "(causal-support)" in res.output
    line = error_line(run("export-graph", m, "--out", tmp_path / "e.json", "--bootstrap", "3", ok=False))
    assert "pass --data FILE" in line and "gone.csv" in line
    (tmp_path / "gone.csv").write_text("a,b\n1,2\n")  # there, but not interactions: the saved graph, with a note
    res = run("export-graph", m, "--out", tmp_path / "f.json")
    assert "could not be read" in res.stderr and "(causal-support)" in res.output
    res = run("export-graph", m, "--out", tmp_path / "e.json", "--bootstrap", "2", "--data", sim, "--min-stability", "0.5")
    assert "(gated, stability from 2 learner resamples)" in res.output
    assert json.loads((tmp_path / "e.json").read_text())["min_stability"] == 0.5


def test_psikt_exports_the_default_data_graph_and_its_learned_graph_without_data(tmp_path):
    """PSI-KT gets the default of every model (gated where affordable, the best across generator families); without
    the training data it falls back to its learned graph with a note; --method learned picks it."""
    d = tmp_path / "psikt"
    d.mkdir()
    p = np.array([[0, 0.9, 0.2], [0.1, 0, 0.8], [0.3, 0.2, 0]])
    (d / "graph.json").write_text(PrerequisiteGraph(["a", "b", "c"], p, "learned").to_json())
    (d / "model.json").write_text(
        json.dumps({"model": "psikt", "meta": {"train_file": str(tmp_path / "gone.csv")}, "vocab": {"skill_id": ["a", "b", "c"]}})
    )
    res = run("export-graph", d, "--out", tmp_path / "g.json")
    assert "(learned)" in res.output and "gated or mastery" in res.stderr  # fell back, and says what it would prefer
    res = run("export-graph", d, "--out", tmp_path / "l.json", "--method", "learned")
    assert "(learned)" in res.output and res.stderr.strip() == ""
    rows = [{"user_id": f"u{n}", "skill_id": "abc"[t % 3], "correct": (n + t) % 2} for n in range(12) for t in range(9)]
    data = tmp_path / "train.csv"
    pl.DataFrame(rows).write_csv(data)
    res = run("export-graph", d, "--out", tmp_path / "m.json", "--data", data)
    assert "(gated)" in res.output
    line = error_line(run("export-graph", d, "--out", tmp_path / "h.json", "--bootstrap", "5", ok=False))
    assert "pass --data FILE" in line
    line = error_line(run("export-graph", d, "--out", tmp_path / "h.json", "--method", "learned", "--bootstrap", "5", ok=False))
    assert "retrainings" in line and "--method mastery" in line

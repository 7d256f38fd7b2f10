"""kt.graph library: the graph type, algorithms (against networkx), the
causal-support and influence graphs, dispatch, truth readers, metrics
(against scikit-learn) and the DOT/GraphML/Mermaid/JSON formats."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import networkx as nx
import numpy as np
import polars as pl
import pytest

import kt
from kt.errors import KTError
from kt.graph import order as algo
from kt.graph.build import graph_for
from kt.graph.evaluate import average_precision, expected_reciprocal_rank, graph_metrics
from kt.graph.export import format_for, render, view
from kt.graph.graph import PrerequisiteGraph, read_graph
from kt.graph.influence import influence_graph, piech_normalise
from kt.graph.support import causal_support, causal_support_graph, transition_counts
from kt.graph.truth import Truth, read_truth


def _graph(k=5, seed=0, **kw) -> PrerequisiteGraph:
    rng = np.random.default_rng(seed)
    return PrerequisiteGraph([f"kc{i}" for i in range(k)], rng.random((k, k)), "learned", **kw)


def _random_edges(rng, n):
    edges = {}
    for _ in range(int(rng.integers(0, n * n))):
        u, v = (int(x) for x in rng.integers(0, n, 2))
        if u != v:
            edges[(u, v)] = float(rng.random())
    return [(u, v, w) for (u, v), w in edges.items()]


def _nx(n, edges) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((u, v) for u, v, _ in edges)
    return g


# --- the graph type -------------------------------------------------------------


def test_graph_validates_and_zeroes_diagonal():
    g = _graph()
    assert np.all(np.diag(g.prob) == 0)
    with pytest.raises(ValueError, match="shape"):
        PrerequisiteGraph(["a", "b"], np.zeros((3, 3)), "learned")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PrerequisiteGraph(["a", "b"], np.full((2, 2), 1.5), "learned")
    with pytest.raises(ValueError, match="unique"):
        PrerequisiteGraph(["a", "a"], np.zeros((2, 2)), "learned")


def test_edges_threshold_and_top_k():
    g = PrerequisiteGraph(["a", "b", "c"], [[0, 0.9, 0.6], [0.2, 0, 0.7], [0, 0, 0]], "learned")
    assert g.edges(0.5) == [("a", "b", 0.9), ("b", "c", 0.7), ("a", "c", 0.6)]
    assert g.edges(0.5, top_k=2) == [("a", "b", 0.9), ("b", "c", 0.7)]
    assert ("c", "a", 0.0) not in g.edges(0.0)  # zero-probability pairs are never edges
    assert len(g.edges(0.0)) == 4


def test_round_trip_through_json(tmp_path):
    g = _graph(support=np.ones((5, 5)), score=np.zeros((5, 5)), difficulty=[0.1, np.nan, 0.3, 0.4, 0.5], meta={"x": 1})
    (tmp_path / "graph.json").write_text(g.to_json())
    h = read_graph(tmp_path)  # a model directory holding graph.json
    assert h.kcs == g.kcs and h.method == "learned" and h.meta == {"x": 1}
    np.testing.assert_allclose(h.prob, g.prob, atol=1e-6)
    assert np.isnan(h.difficulty[1]) and h.difficulty[2] == pytest.approx(0.3)
    np.testing.assert_array_equal(h.support, g.support)


def test_graph_json_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    k = 7
    score = rng.normal(size=(k, k)) * 1e3
    score[0, 1], score[1, 0], score[2, 3], score[3, 2] = np.nan, np.inf, -np.inf, -0.0
    g = PrerequisiteGraph(
        [f"kc{i}" for i in range(k)],
        rng.random((k, k)),
        "causal-support",
        confidence=rng.random((k, k)).astype(np.float32),
        support=rng.integers(0, 70000, (k, k)),
        score=score,
        difficulty=[0.1, np.nan, 1 / 3, 0, 1, 0.5, 0.25],
        meta={"x": [1, None]},
    )
    (tmp_path / "graph.json").write_text(g.to_json())
    d = json.loads((tmp_path / "graph.json").read_text())
    assert d["kt_graph"] == 2 and d["prob"]["shape"] == [k, k] and d["prob"]["encoding"] == "zlib+base64"
    # the smallest exact type per array: float64, float32-valued, counts up to 70000, float64 with NaN/inf
    assert [d[n]["dtype"] for n in ("prob", "confidence", "support", "score", "difficulty")] == [
        "<f8",
        "<f4",
        "<u4",
        "<f8",
        "<f8",
    ]
    h = read_graph(tmp_path)
    assert h.kcs == g.kcs and h.method == g.method and h.meta == g.meta
    for name in ("prob", "confidence", "support", "score", "difficulty"):
        a, b = getattr(g, name), getattr(h, name)
        assert a.dtype == b.dtype == np.float64
        np.testing.assert_array_equal(b, a)  # bit-exact, NaN where NaN
    assert np.signbit(h.score[3, 2]) and np.isnan(h.score[0, 1]) and h.score[2, 3] == -np.inf


@pytest.mark.parametrize(
    "a",
    [
        np.arange(12.0).reshape(3, 4),
        -np.arange(5.0),
        np.array([2.0**40, 1.0]),
        np.array([0.5, -0.0]),
        np.zeros((0, 3)),
        np.array([np.nan, 0.1]),
        np.full((2, 2), 255.0),
        np.array([-129.0, 3.0]),
    ],
)
def test_typed_arrays_are_exact(a):
    from kt.graph.graph import decode_array, encode_array

    d = json.loads(json.dumps(encode_array(a)))
    b = decode_array(d)
    assert b.shape == a.shape and b.dtype == np.float64
    np.testing.assert_array_equal(b, a)
    assert np.array_equal(np.signbit(b), np.signbit(a))


def test_old_nested_list_graph_json_is_read(tmp_path):
    # format 1, as saved models and exports before typed arrays have it: nested lists, null for NaN
    old = (
        '{\n "kt_graph": 1,\n "method": "causal-support",\n "kcs": ["a", "b", "c"],\n "prob": [\n'
        '  [0, 0.731059, 0],\n  [0.5, 0, 0],\n  [0, 0.25, 0]\n ],\n "support": [\n  [0, 3, 0],\n'
        '  [1, 0, 0],\n  [0, 2, 0]\n ],\n "score": [\n  [0, 1.0, null],\n  [0, 0, 0],\n  [0, -1.1, 0]\n ],\n'
        ' "difficulty": [0.2, null, 0.5],\n "meta": {"grid": 50}\n}\n'
    )
    (tmp_path / "graph.json").write_text(old)
    g = read_graph(tmp_path)
    assert g.kcs == ["a", "b", "c"] and g.method == "causal-support" and g.meta == {"grid": 50}
    np.testing.assert_array_equal(g.prob, [[0, 0.731059, 0], [0.5, 0, 0], [0, 0.25, 0]])
    np.testing.assert_array_equal(g.support, [[0, 3, 0], [1, 0, 0], [0, 2, 0]])
    assert np.isnan(g.score[0, 2]) and g.score[2, 1] == -1.1
    assert np.isnan(g.difficulty[1]) and g.difficulty[2] == 0.5
    # the nested-list layout is still what to_dict() gives (and `kt export-graph --format json` writes)
    d = g.to_dict()
    assert d["kt_graph"] == 1 and d["prob"][0] == [0, 0.731059, 0] and d["score"][0][2] is None
    # and rewritten as format 2 it reads back the same
    np.testing.assert_array_equal(PrerequisiteGraph.from_dict(json.loads(g.to_json())).score, g.score)


def test_bad_typed_arrays_are_one_line_errors(tmp_path):
    good = json.loads(_graph(k=3).to_json())
    for bad in (
        {"dtype": "<c16"},
        {"dtype": "object"},
        {"encoding": "gzip"},
        {"shape": [3, 4]},
        {"shape": [3, -3]},
        {"data": "@@@"},
        {"data": "eJw="},
        {"encoding": "base64"},
    ):
        d = json.loads(json.dumps(good))
        d["prob"].update(bad)
        (tmp_path / "g.json").write_text(json.dumps(d))
        with pytest.raises(KTError, match=r"invalid kt graph \(typed array"):
            read_graph(tmp_path / "g.json")
    good["kt_graph"] = 3
    (tmp_path / "g.json").write_text(json.dumps(good))
    with pytest.raises(KTError, match="newer than this kt reads"):
        read_graph(tmp_path / "g.json")


def test_graph_json_at_400_kcs_is_much_smaller_than_nested_lists():
    # a causal-support graph of sparse transition data (BKT's graph) at K = 400
    rng = np.random.default_rng(0)
    k = 400
    counts = rng.poisson(0.15, (k, k, 2, 2)).astype(np.float64)
    counts[np.arange(k), np.arange(k)] = 0
    score = causal_support(counts)
    n = counts.sum(axis=(2, 3))
    prob = np.where(n >= 2, 1 / (1 + np.exp(-score)), 0.0)
    g = PrerequisiteGraph([f"kc{i}" for i in range(k)], prob, "causal-support", support=n, score=score, difficulty=rng.random(k))
    compact, nested = g.to_json(), g.to_json(compact=False)
    assert len(compact) * 5 < len(nested)
    h = PrerequisiteGraph.from_dict(json.loads(compact))
    np.testing.assert_array_equal(h.score, g.score)
    # a dense learned graph (float32 probabilities, as PSI-KT's) is still about half the size
    dense = PrerequisiteGraph(g.kcs, rng.random((k, k)).astype(np.float32), "learned")
    assert len(dense.to_json()) * 1.5 < len(dense.to_json(compact=False))


def test_read_graph_errors(tmp_path):
    with pytest.raises(KTError, match="cannot read graph"):
        read_graph(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KTError, match="not valid JSON"):
        read_graph(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(KTError, match="not a kt graph"):
        read_graph(tmp_path / "other.json")


def test_graph_from_edge_list_json():
    g = PrerequisiteGraph.from_dict({"kcs": ["a", "b"], "edges": [{"source": "a", "target": "b", "prob": 0.8}]})
    assert g.prob[0, 1] == 0.8 and g.prob[1, 0] == 0


# --- algorithms (against networkx) ------------------------------------------------


def test_algorithms_match_networkx():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n = int(rng.integers(1, 12))
        edges = _random_edges(rng, n)
        weight = {(u, v): w for u, v, w in edges}
        got = sorted(map(tuple, algo.strongly_connected(n, edges)))
        assert got == sorted(tuple(sorted(c)) for c in nx.strongly_connected_components(_nx(n, edges)))
        kept, dropped = algo.break_cycles(n, edges)
        dag = _nx(n, kept)
        assert nx.is_directed_acyclic_graph(dag)
        assert len(kept) + len(dropped) == len(edges)
        for d in dropped:  # each dropped edge is the weakest of a cycle of kept edges
            u, v, w = d["edge"]
            cyc = d["cycle"]
            assert cyc[0] == v and cyc[-1] == u
            assert all(dag.has_edge(a, b) and weight[(a, b)] >= w for a, b in zip(cyc, cyc[1:]))
        red = algo.transitive_reduction(n, kept)
        assert sorted((u, v) for u, v, _ in red) == sorted(nx.transitive_reduction(dag).edges())
        order = algo.topological_order(n, kept, rng.random(n))
        pos = {x: i for i, x in enumerate(order)}
        assert sorted(order) == list(range(n)) and all(pos[u] < pos[v] for u, v, _ in kept)
        layer = algo.layers(n, kept)
        assert all(layer[u] < layer[v] for u, v, _ in kept)


def test_topological_order_breaks_ties_by_difficulty():
    # c and a are both ready first; the easier one comes first; NaN difficulty last.
    edges = [(0, 1, 0.9)]
    assert algo.topological_order(4, edges, np.array([0.5, 0.1, 0.2, np.nan])) == [2, 0, 1, 3]
    with pytest.raises(ValueError, match="cycle"):
        algo.topological_order(2, [(0, 1, 1.0), (1, 0, 1.0)])


def test_long_chain_does_not_recurse():
    n = 5000
    chain = [(i, i + 1, 1.0) for i in range(n - 1)] + [(n - 1, 0, 0.1)]
    assert len(algo.strongly_connected(n, chain)) == 1
    kept, dropped = algo.break_cycles(n, chain)
    assert [d["edge"] for d in dropped] == [(n - 1, 0, 0.1)] and len(kept) == n - 1


def test_view_reports_cycles_and_order():
    p = np.zeros((4, 4))
    p[0, 1], p[1, 2], p[2, 0], p[2, 3] = 0.9, 0.8, 0.6, 0.7  # cycle a -> b -> c -> a, weakest c -> a
    g = PrerequisiteGraph(list("abcd"), p, "learned", difficulty=[0.3, 0.2, 0.1, 0.0])
    v = view(g, 0.5)
    assert v.cycles == [[0, 1, 2]]
    assert [d["edge"][:2] for d in v.dropped] == [(2, 0)] and v.dropped[0]["cycle"] == [0, 1, 2]
    assert v.cycle_edges == {(2, 0)}
    assert [g.kcs[i] for i in v.order] == ["a", "b", "c", "d"]
    r = view(g, 0.5, reduce=True)
    assert sorted(r.edges) == [(0, 1, 0.9), (1, 2, 0.8), (2, 3, 0.7)] and not r.cycle_edges
    with pytest.raises(KTError, match="--threshold"):
        view(g, 1.5)
    with pytest.raises(KTError, match="--top-k"):
        view(g, 0.5, top_k=0)


def test_transitive_reduction_drops_shortcut():
    p = np.zeros((3, 3))
    p[0, 1], p[1, 2], p[0, 2] = 0.9, 0.9, 0.95
    v = view(PrerequisiteGraph(list("abc"), p, "learned"), 0.5, reduce=True)
    assert sorted(e[:2] for e in v.edges) == [(0, 1), (1, 2)]


# --- causal support --------------------------------------------------------------


def _load(tmp_path, rows, name="d.csv"):
    f = pl.DataFrame(rows, schema=["user_id", "skill_id", "correct", "timestamp"], orient="row")
    f.write_csv(tmp_path / name)
    return kt.load(str(tmp_path / name))


def test_transition_counts_pairs_consecutive_attempts(tmp_path):
    rows = [("u1", "a", 1, 0), ("u1", "b", 0, 1), ("u1", "b", 1, 2), ("u1", "a", 1, 3), ("u2", "b", 1, 0), ("u2", "a", 0, 1)]
    d = _load(tmp_path, rows)
    n = transition_counts(d, 2)  # vocab sorted: a=0, b=1
    assert n[0, 1].tolist() == [[0, 0], [1, 0]]  # a correct -> b wrong
    assert n[1, 0].tolist() == [[0, 0], [1, 1]]  # b correct -> a correct (u1), b correct -> a wrong (u2)
    assert n[0, 0].sum() == n[1, 1].sum() == 0  # same-KC pairs and learner boundaries skipped


def test_transition_counts_multi_kc(tmp_path):
    rows = [("u1", "a;b", 1, 0), ("u1", "c", 1, 1), ("u1", "x", 1, 2)]
    d = _load(tmp_path, rows)
    n = transition_counts(d, 4)  # a, b, c, x
    assert n[0, 2, 1, 1] == 1 and n[1, 2, 1, 1] == 1 and n[2, 3, 1, 1] == 1
    assert n[0, 1].sum() == 0  # KCs of one attempt are not a transition
    assert n.sum() == 3


def _support_brute(t, grid=50):
    w = (np.arange(grid) + 0.5) / grid
    (n00, n01), (n10, n11) = t
    l0 = [w0 ** (n01 + n11) * (1 - w0) ** (n00 + n10) for w0 in w]
    l1 = [w0**n01 * (1 - w0) ** n00 * (1 - (1 - w0) * (1 - w1)) ** n11 * ((1 - w0) * (1 - w1)) ** n10 for w0 in w for w1 in w]
    return np.log(np.mean(l1)) - np.log(np.mean(l0))


def test_causal_support_matches_brute_force():
    tables = np.array([[[5, 1], [1, 9]], [[3, 3], [3, 3]], [[0, 0], [0, 0]], [[1, 8], [7, 2]], [[0, 2], [0, 40]]], float)
    got = causal_support(tables)
    want = [_support_brute(t) for t in tables]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert got[0] > 0 and got[1] < 0 and got[2] == 0 and got[3] < 0


def test_causal_support_graph(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):  # correct on a -> next b correct; c unrelated
        for t in range(20):
            a = int(rng.random() < 0.5)
            rows += [
                (f"u{u}", "a", a, 3 * t),
                (f"u{u}", "b", a if rng.random() < 0.9 else 1 - a, 3 * t + 1),
                (f"u{u}", "c", int(rng.random() < 0.5), 3 * t + 2),
            ]
    d = _load(tmp_path, rows)
    g = causal_support_graph(d, kcs=["b", "a", "c", "zz"])  # re-indexed to a model's KC order
    assert g.method == "causal-support" and g.kcs == ["b", "a", "c", "zz"]
    assert g.prob[1, 0] > 0.99 and g.prob[1, 2] < 0.5
    assert g.support[1, 0] == 800 and g.support[3].sum() == 0 and g.prob[3].sum() == 0
    np.testing.assert_allclose(g.prob[g.support >= 2], 1 / (1 + np.exp(-g.score[g.support >= 2])))
    assert g.difficulty[3] != g.difficulty[3]  # unseen KC: NaN


# --- conditional influence and dispatch ------------------------------------------


def test_piech_normalisation():
    y = np.array([[0.9, 0.9, 0.5], [0.3, 0.8, 0.5], [0.3, 0.6, 0.5]])
    j = piech_normalise(y)
    assert j[0, 1] == pytest.approx(0.9 / 2.3) and j[1, 0] == pytest.approx(0.3 / 1.5)
    assert np.all(np.diag(j) == 0)
    g = influence_graph(list("abc"), y)
    assert g.method == "conditional-influence"
    assert g.prob[0, 2] == pytest.approx(0.5)  # the uniform share 1/K maps to 0.5
    assert g.prob[0, 1] > 0.5 > g.prob[2, 0]
    with pytest.raises(KTError, match="influence matrix"):
        influence_graph(list("ab"), y)


class _Vocab:
    def __init__(self, kcs):
        self.skill_id = kcs


class _FakeModel:
    """A fitted model stand-in: optional graph() and influence_matrix()."""

    def __init__(self, kcs, graph=None, influence=None):
        from kt.models.base import Capabilities

        self.vocab = _Vocab(kcs)
        self._g = graph
        self.capabilities = Capabilities(graph="learned" if graph is not None else None)
        if influence is not None:
            self.influence_matrix = lambda: influence
            self.capabilities = Capabilities(graph="conditional-influence")

    def graph(self):
        return self._g


def test_graph_for_dispatch(tmp_path):
    d = _load(tmp_path, [("u1", "a", 1, 0), ("u1", "b", 0, 1), ("u1", "a", 1, 2), ("u1", "b", 1, 3)])
    learned = PrerequisiteGraph(["a", "b"], [[0, 0.9], [0.1, 0]], "learned")
    assert graph_for(_FakeModel(["a", "b"], graph=learned)).method == "learned"
    g = graph_for(_FakeModel(["a", "b"], graph=learned), d)
    assert g.difficulty.tolist() == [0.0, 0.5]  # added from the data
    infl = graph_for(_FakeModel(["a", "b"], influence=np.array([[0.9, 0.7], [0.5, 0.6]])))
    assert infl.method == "conditional-influence"
    assert graph_for(_FakeModel(["a", "b"]), d).method == "causal-support"
    assert graph_for(_FakeModel(["a", "b"])) is None


# --- truth files -------------------------------------------------------------------


def test_truth_json_variants(write_file):
    t = read_truth(
        write_file("t.json", json.dumps({"kcs": ["a", "b", "c"], "edges": [["a", "b"], {"source": "b", "target": "c"}]}))
    )
    assert t.edges == [("a", "b"), ("b", "c")] and t.kcs == ["a", "b", "c"]
    adj = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    t = read_truth(write_file("a.json", json.dumps({"kcs": ["a", "b", "c"], "adjacency": adj})))
    assert t.edges == [("a", "b"), ("b", "c")]
    t = read_truth(write_file("A.json", json.dumps({"kcs": [0, 1, 2], "A": adj, "edges": [[0, 1], [1, 2]], "z": [1]})))
    assert t.edges == [("0", "1"), ("1", "2")]


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"kcs": ["a", "b"]}, "no 'edges' or 'adjacency'"),
        ({"adjacency": [[0, 1], [0, 0]]}, "'adjacency' without 'kcs'"),
        ({"kcs": ["a", "b"], "adjacency": [[0, 1]]}, "2 x 2"),
        ({"kcs": ["a", "b"], "edges": [["a", "c"]]}, "'c' is not in 'kcs'"),
        ({"kcs": ["a", "b"], "edges": [["a"]]}, "not a [source, target] pair"),
        ({"kcs": ["a", "b"], "edges": [["b", "a"]], "adjacency": [[0, 1], [0, 0]]}, "disagree"),
        ([1, 2], "not an object"),
    ],
)
def test_truth_json_errors(write_file, payload, fragment):
    with pytest.raises(KTError, match=re.escape(fragment)):
        read_truth(write_file("t.json", json.dumps(payload)))


@pytest.mark.parametrize(
    "header", ["source,target", "Source,Target", "from,to", "prerequisite,dependent", "src,dst", "parent,child"]
)
def test_truth_edge_list_aliases(write_file, header):
    t = read_truth(write_file("e.csv", f"{header}\na,b\nb,c\nc,c\na,b\n"))
    assert t.edges == [("a", "b"), ("b", "c")] and t.kcs is None  # self-loops and repeats dropped


def test_truth_edge_list_tsv(write_file):
    assert read_truth(write_file("e.tsv", "source\ttarget\nx y\tz\n")).edges == [("x y", "z")]


def test_truth_node_table_like_junyi(write_file):
    text = '\ufeffname,live,prerequisites,topic\nc,TRUE,"a,b",t\nb,TRUE,a,t\na,TRUE,,t\nd,FALSE,,t\n'
    t = read_truth(write_file("ex.csv", text))
    assert sorted(t.edges) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert sorted(t.kcs) == ["a", "b", "c", "d"] and t.layout.startswith("node-table")


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("x.csv", "alpha,beta\n1,2\n", "no source/target or name/prerequisites columns"),
        ("x.json", "{oops", "not valid JSON"),
        ("x.csv", b"\xff\xfe\x00bad", "not UTF-8"),
        ("x.csv", "", "empty file"),
    ],
)
def test_truth_unreadable(write_file, name, content, fragment):
    with pytest.raises(KTError, match=re.escape(fragment)):
        read_truth(write_file(name, content))


def test_truth_missing_file(tmp_path):
    with pytest.raises(KTError, match="no such truth file"):
        read_truth(tmp_path / "nope.json")


def test_junyi_exercise_table(shared_file):
    t = read_truth(shared_file("junyi2015_exercise_table/junyi_Exercise_table.csv"))
    # 837 rows, two names listed twice; 988 listed edges less repeats and 2 self-loops
    assert len(t.kcs) == 835 and t.layout == "node-table (prerequisites -> name)"
    assert len(t.edges) == 979
    assert ("recognizing_conic_sections", "parabola_intuition_1") in t.edges


# --- metrics -------------------------------------------------------------------------


def test_metrics_against_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    k = 8
    adj = np.triu(rng.random((k, k)) < 0.3, 1)
    prob = np.round(np.clip(adj * 0.4 + rng.random((k, k)) * 0.6, 0, 1), 1)  # rounding makes ties
    kcs = [f"k{i}" for i in range(k)]
    g = PrerequisiteGraph(kcs, prob, "learned")
    truth = Truth([(kcs[i], kcs[j]) for i, j in zip(*np.nonzero(adj))], kcs, "t", "json")
    r = graph_metrics(g, truth, 0.5)
    off = ~np.eye(k, dtype=bool)
    y, p = adj[off], g.prob[off]
    assert r["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert r["auprc"] == pytest.approx(average_precision_score(y, p))
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p))
    assert r["base_rate"] == pytest.approx(y.mean()) and r["n_pairs"] == k * (k - 1)
    pred = p >= 0.5
    tp = (pred & y).sum()
    assert r["f1_at_threshold"] == pytest.approx(2 * tp / (pred.sum() + y.sum()))
    src, dst = np.nonzero(adj)
    assert r["orientation_accuracy"] == pytest.approx(np.mean(g.prob[src, dst] > g.prob[dst, src]))
    json.dumps(r)  # JSON-ready


def test_metrics_hand_example():
    p = np.array([[0, 0.9, 0.2], [0.1, 0, 0.3], [0.4, 0.8, 0]])
    g = PrerequisiteGraph(list("abc"), p, "learned")
    r = graph_metrics(g, Truth([("a", "b"), ("b", "c")], list("abc"), "t", "json"), 0.5)
    # ranks by score: a>b .9 (1), c>b .8 (2), c>a .4 (3), b>c .3 (4), a>c .2 (5), b>a .1 (6)
    assert r["mrr"] == pytest.approx((1 / 1 + 1 / 4) / 2)
    assert r["orientation_accuracy"] == pytest.approx(0.5)  # a>b yes; b>c .3 < c>b .8
    assert r["precision_at_top_true"] == pytest.approx(0.5)  # top 2: a>b, c>b
    assert r["n_edges_at_threshold"] == 2 and r["jaccard_at_threshold"] == pytest.approx(1 / 3)
    perfect = graph_metrics(
        PrerequisiteGraph(list("abc"), [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "learned"),
        Truth([("a", "b"), ("b", "c")], None, "t", "edge-list"),
    )
    assert perfect["auroc"] == 1 and perfect["auprc"] == 1 and perfect["f1_at_threshold"] == 1
    assert perfect["mrr"] == pytest.approx((1 + 1 / 2) / 2)  # two tied true edges: E[1/rank] over their order
    assert expected_reciprocal_rank(np.array([0.1, 0.9, 0.5, 0.5]))[[1, 2]] == pytest.approx([1, (1 / 2 + 1 / 3) / 2])


def test_metrics_alignment_by_name():
    g = PrerequisiteGraph(list("abcd"), np.eye(4)[[1, 2, 3, 0]], "learned")  # a>b, b>c, c>d, d>a
    r = graph_metrics(g, Truth([("a", "b"), ("b", "c"), ("c", "zz")], ["a", "b", "c", "zz"], "t", "json"))
    assert r["n_kcs"] == 3 and r["graph_kcs_not_in_truth"] == 1 and r["truth_edges_outside_graph"] == 1
    assert r["auroc"] == 1
    with pytest.raises(KTError, match="shares 0 KC names"):
        graph_metrics(g, Truth([("x", "y")], ["x", "y"], "t.json", "json"))
    with pytest.raises(KTError, match="none of its 1 edges"):
        graph_metrics(g, Truth([("a", "zz")], None, "t.csv", "edge-list"))


# --- export formats ------------------------------------------------------------------


NASTY = ['fractions "1/2"', "a<b>&c", "back\\slash", "end", "x#y;z", "émoji ✓"]


def _nasty_graph() -> PrerequisiteGraph:
    k = len(NASTY)
    p = np.zeros((k, k))
    for i in range(k - 1):
        p[i, i + 1] = 0.9 - 0.05 * i
    p[k - 1, 0] = 0.55  # closes a cycle
    return PrerequisiteGraph(NASTY, p, "causal-support", support=np.full((k, k), 7.0), difficulty=np.linspace(0.1, 0.6, k))


def test_format_guess_and_unknown():
    assert format_for("g.gv", None) == "dot" and format_for("g.mmd", None) == "mermaid"
    assert format_for("g.txt", None) == "json" and format_for("g.txt", "HTML") == "html"
    with pytest.raises(KTError, match="unknown format"):
        format_for("g.txt", "pdf")


def test_json_export_has_order_cycles_and_matrix():
    d = json.loads(render(view(_nasty_graph(), 0.5), "json"))
    assert d["method"] == "causal-support" and d["kcs"] == NASTY
    assert len(d["edges"]) == 6 and d["edges"][0]["support"] == 7
    assert d["cycles"] == [NASTY] and d["dropped_for_order"][0]["source"] == NASTY[-1]
    assert [e for e in d["edges"] if e.get("breaks_cycle")] == [d["edges"][-1]]
    assert d["learning_order"] == NASTY
    assert PrerequisiteGraph.from_dict(d).prob[0, 1] == pytest.approx(0.9)


def test_graphml_loads_in_networkx(tmp_path):
    p = tmp_path / "g.graphml"
    p.write_text(render(view(_nasty_graph(), 0.5), "graphml"), encoding="utf-8")
    g = nx.read_graphml(p)
    assert set(g.nodes) == set(NASTY) and g.number_of_edges() == 6
    assert g.edges[NASTY[0], NASTY[1]]["prob"] == pytest.approx(0.9)
    assert g.edges[NASTY[-1], NASTY[0]]["breaks_cycle"] is True
    assert g.nodes[NASTY[2]]["difficulty"] == pytest.approx(0.3) and g.nodes[NASTY[0]]["order"] == 0
    assert g.graph["method"] == "causal-support"


def _check_mermaid(text: str) -> tuple[set, list]:
    """A structural Mermaid flowchart checker: header, safe ids, quoted and
    escaped labels, edges between declared nodes with numeric labels."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    assert re.fullmatch(r"(graph|flowchart) (LR|TD|TB|RL|BT)", lines[0]), lines[0]
    nodes, edges = set(), []
    for ln in lines[1:]:
        if ln.startswith("%%"):
            continue
        m = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)\["([^"\[\]<>]*)"\]', ln)
        if m:
            assert m.group(1) not in {"end", "graph", "flowchart", "subgraph"}
            label = re.sub(r"#(quot|lt|gt|35);", "", m.group(2))
            assert "#" not in label
            nodes.add(m.group(1))
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*) (-->|-\.->)\|([0-9.]+)\| ([A-Za-z_][A-Za-z0-9_]*)", ln)
        assert m, f"not a Mermaid node or edge line: {ln!r}"
        edges.append((m.group(1), m.group(4)))
    assert all(a in nodes and b in nodes for a, b in edges)
    return nodes, edges


def test_mermaid_syntax():
    nodes, edges = _check_mermaid(render(view(_nasty_graph(), 0.5), "mermaid"))
    assert len(nodes) == 6 and len(edges) == 6
    text = render(view(_nasty_graph(), 0.5), "mermaid")
    assert "fractions #quot;1/2#quot;" in text and "a#lt;b#gt;&c" in text and "x#35;y;z" in text
    assert "-.->" in text  # the cycle-closing edge


def test_dot_structure_and_escaping():
    text = render(view(_nasty_graph(), 0.5, top_k=3), "dot")
    assert text.splitlines()[1] == "digraph prerequisites {" and text.rstrip().endswith("}")
    assert 'label="fractions \\"1/2\\""' in text and 'label="back\\\\slash"' in text
    assert len(re.findall(r"^  n\d+ -> n\d+ \[", text, re.M)) == 3


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
def test_dot_renders_with_graphviz(tmp_path):
    p = tmp_path / "g.dot"
    p.write_text(render(view(_nasty_graph(), 0.5), "dot"), encoding="utf-8")
    res = subprocess.run(["dot", "-Tsvg", str(p)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "<svg" in res.stdout and "fractions" in res.stdout

"""`kt export-graph` and `kt graph-eval` through the CLI: a graph for every
kind of model on synthetic data with a known DAG, every format, truth files
(JSON, edge-list CSV, the Junyi exercise table), and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest

from kt.graph.build import graph_for
from kt.graph.graph import PrerequisiteGraph, read_graph
from tests.cli_run import invoke as run

DAG = [(0, 1), (1, 2), (0, 3), (3, 4), (2, 5), (4, 5)]
K = 6
NAMES = [f"kc{k}" for k in range(K)]


def dag_data(n_learners: int = 150, steps: int = 60, seed: int = 0) -> pl.DataFrame:
    """Learners practise KCs whose prerequisites they master (70%) or any KC
    (30%); a KC is learnt only once its prerequisites are, and answered
    correctly with 0.85 when mastered, 0.35 when ready, 0.1 otherwise."""
    pre = [[u for u, v in DAG if v == k] for k in range(K)]
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(n_learners):
        m = np.zeros(K, bool)
        for t in range(steps):
            ready = [k for k in range(K) if not m[k] and all(m[p] for p in pre[k])]
            k = int(rng.choice(ready)) if ready and rng.random() < 0.7 else int(rng.integers(K))
            ok = all(m[p] for p in pre[k])
            rows.append((f"u{n}", NAMES[k], int(rng.random() < (0.85 if m[k] else 0.35 if ok else 0.1)), t))
            if ok and not m[k] and rng.random() < 0.25:
                m[k] = True
    return pl.DataFrame(rows, schema=["user_id", "skill_id", "correct", "timestamp"], orient="row")


def error_line(res) -> str:
    """The one ``error:`` line of a failed command (exit 1, on stderr, no traceback)."""
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0] in res.stderr, res.output
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("graph_cli")
    dag_data().write_csv(d / "dag.csv")
    (d / "truth.json").write_text(json.dumps({"kcs": NAMES, "edges": [[NAMES[u], NAMES[v]] for u, v in DAG]}))
    adj = np.zeros((K, K), int)
    for u, v in DAG:
        adj[u, v] = 1
    (d / "truth_adj.json").write_text(json.dumps({"kcs": NAMES, "adjacency": adj.tolist(), "s": [[0.1]]}))
    (d / "truth.csv").write_text("prerequisite,dependent\n" + "".join(f"{NAMES[u]},{NAMES[v]}\n" for u, v in DAG))
    return d


@pytest.fixture(scope="module")
def model_dir(work) -> Path:
    out = run("train", work / "dag.csv", "--model", "kc-rate", "--out", work / "m", "--valid-frac", "0").output
    assert "saved kc-rate" in out
    return work / "m"


def _eval(graph, truth, *extra) -> dict:
    out = Path(str(graph) + ".eval.json")
    run("graph-eval", graph, truth, "--json", out, *extra)
    return json.loads(out.read_text())


def test_train_saves_the_causal_support_graph(model_dir):
    d = json.loads((model_dir / "graph.json").read_text())
    h = json.loads((model_dir / "model.json").read_text())
    assert d["method"] == "causal-support" and d["kcs"] == h["vocab"]["skill_id"] == NAMES
    assert d["kt_graph"] == 2  # typed arrays (kt.graph.graph.encode_array)
    assert d["prob"]["shape"] == d["support"]["shape"] == [K, K] and d["difficulty"]["shape"] == [K]
    assert d["support"]["dtype"] in ("|u1", "<u2")  # transition counts: the smallest exact integer type
    g = read_graph(model_dir)
    assert g.prob.shape == g.support.shape == (K, K) and g.difficulty.shape == (K,)


class _Vocab:
    skill_id = NAMES


class _Fake:
    """Stand-ins for PSI-KT (graph()) and DKT/CAKT (influence_matrix())."""

    vocab = _Vocab()

    def __init__(self, graph=None, influence=None):
        from kt.models.base import Capabilities

        self._g = graph
        self.capabilities = Capabilities(graph="learned" if graph is not None else None)
        if influence is not None:
            self.influence_matrix = lambda: influence
            self.capabilities = Capabilities(graph="conditional-influence")

    def graph(self):
        return self._g


def test_graph_eval_reports_auroc_for_every_method(work, model_dir):
    rng = np.random.default_rng(0)
    adj = np.zeros((K, K))
    for u, v in DAG:
        adj[u, v] = 1
    learned = PrerequisiteGraph(NAMES, np.clip(0.7 * adj + 0.3 * rng.random((K, K)), 0, 1), "learned")
    base = np.linspace(0.5, 0.8, K)  # column j: P(correct on j), raised by a correct prerequisite
    influence = np.clip(base[None, :] + 0.15 * adj + 0.02 * rng.random((K, K)), 0, 1)
    graphs = {"causal-support": model_dir / "graph.json", "gated": model_dir}  # a model directory: the default export
    for name, model in (("learned", _Fake(graph=learned)), ("conditional-influence", _Fake(influence=influence))):
        g = graph_for(model)
        assert g.method == name
        (work / f"{name}.json").write_text(g.to_json())
        graphs[name] = work / f"{name}.json"
    for name, path in graphs.items():
        r = _eval(path, work / "truth.json")
        assert r["method"] == name and r["n_true_edges"] == len(DAG) and r["n_pairs"] == K * (K - 1)
        assert 0 <= r["auroc"] <= 1 and r["base_rate"] == pytest.approx(len(DAG) / 30)
        for key in ("auprc", "f1_at_threshold", "f1_at_top_true", "orientation_accuracy", "mrr"):
            assert 0 <= r[key] <= 1
        if name in ("learned", "conditional-influence"):  # built from the truth above
            assert r["auroc"] > 0.9 and r["orientation_accuracy"] == 1
    out = run("graph-eval", graphs["learned"], work / "truth.json").output
    assert "auroc" in out and "orientation_accuracy" in out


def test_truth_formats_agree(work, model_dir):
    a = _eval(model_dir / "graph.json", work / "truth.json")
    b = _eval(model_dir / "graph.json", work / "truth_adj.json")
    c = _eval(model_dir / "graph.json", work / "truth.csv")
    assert a["auroc"] == b["auroc"] == c["auroc"] and a["mrr"] == c["mrr"]
    # a model directory is scored on the graph kt export-graph writes by default (gated here), or on --method's
    d, e = _eval(model_dir, work / "truth.csv"), _eval(model_dir, work / "truth.json")
    assert d["method"] == "gated" and d["auroc"] == e["auroc"]
    assert c["truth_layout"] == "edge-list (prerequisite -> dependent)"


def test_export_every_format(work, model_dir):
    for fmt, name in (("json", "g.json"), ("dot", "g.dot"), ("graphml", "g.graphml"), ("mermaid", "g.mmd"), ("html", "g.html")):
        out = run("export-graph", model_dir, "--out", work / name, "--format", fmt, "--threshold", "0", "--top-k", "4").output
        assert f"wrote 4 edges among {K} KCs (gated)" in out  # the default with the training file at hand
    d = json.loads((work / "g.json").read_text())
    assert len(d["edges"]) == 4 and sorted(d["learning_order"]) == NAMES and d["top_k"] == 4
    assert nx.read_graphml(work / "g.graphml").number_of_edges() == 4
    assert (work / "g.mmd").read_text().startswith("flowchart LR\n")
    assert (work / "g.dot").read_text().splitlines()[1] == "digraph prerequisites {"
    assert "kt-graph-data" in (work / "g.html").read_text()
    # the format follows the suffix when --format is not given
    run("export-graph", model_dir, "--out", work / "auto.graphml", "--method", "causal-support")
    assert nx.read_graphml(work / "auto.graphml").graph["method"] == "causal-support"


def test_exported_json_is_a_graph_eval_input(work, model_dir):
    run("export-graph", model_dir, "--out", work / "top.json", "--top-k", "2", "--reduce")
    run("export-graph", model_dir, "--out", work / "all.json")
    full = _eval(work / "all.json", work / "truth.json")
    top = _eval(work / "top.json", work / "truth.json")
    assert top["auroc"] == full["auroc"]  # scored on the full matrix, not the 2 exported edges


def test_export_reports_cycles(work):
    p = np.zeros((3, 3))
    p[0, 1], p[1, 2], p[2, 0] = 0.9, 0.8, 0.6
    d = work / "cyc"
    d.mkdir()
    (d / "graph.json").write_text(PrerequisiteGraph(["a", "b", "c"], p, "learned").to_json())
    (d / "model.json").write_text("{}")
    res = run("export-graph", d, "--out", work / "cyc.json")
    assert "1 cycle(s)" in res.stderr and "a <-> b <-> c" in res.stderr
    e = json.loads((work / "cyc.json").read_text())
    assert e["cycles"] == [["a", "b", "c"]] and e["learning_order"] == ["a", "b", "c"]
    assert e["dropped_for_order"] == [{"source": "c", "target": "a", "prob": 0.6, "cycle": ["a", "b", "c"]}]


def test_junyi_expert_edges_as_truth(work, shared_file):
    from kt.graph.truth import read_truth

    table = shared_file("junyi2015_exercise_table/junyi_Exercise_table.csv")
    truth = read_truth(table)
    kcs = truth.kcs[:150]  # a graph over some of the exercises, like a model trained on part of Junyi
    pos = {k: i for i, k in enumerate(kcs)}
    p = np.random.default_rng(0).random((len(kcs), len(kcs))) * 0.5
    for s, t in truth.edges:
        if s in pos and t in pos:
            p[pos[s], pos[t]] = 0.9
    (work / "junyi_graph.json").write_text(PrerequisiteGraph(kcs, p, "learned").to_json())
    r = _eval(work / "junyi_graph.json", table)
    assert r["truth_layout"] == "node-table (prerequisites -> name)" and r["n_kcs"] == 150
    assert r["truth_edges"] == 979 and r["truth_edges_outside_graph"] > 0 and r["n_true_edges"] > 0
    assert r["auroc"] == 1 and r["mrr"] > 0


def test_simulated_ou_graph_truth(tmp_path):
    """The truth JSON of `kt simulate --kind ou-graph` (or its library function) is a graph-eval TRUTH."""
    data, truth = tmp_path / "ou.csv", tmp_path / "truth.json"
    res = run(
        "simulate",
        "--kind",
        "ou-graph",
        "--learners",
        "60",
        "--kcs",
        "6",
        "--steps",
        "30",
        "--out",
        data,
        "--truth",
        truth,
        ok=False,
    )
    if res.exit_code != 0:
        synthetic = pytest.importorskip("kt.data.synthetic")
        if not hasattr(synthetic, "simulate_ou_graph"):
            pytest.skip("no ou-graph simulator in this checkout")
        frame, t = synthetic.simulate_ou_graph(60, 6, 30, seed=0)
        frame.write_csv(data)
        truth.write_text(json.dumps(t))
    run("train", data, "--model", "kc-rate", "--out", tmp_path / "m", "--valid-frac", "0")
    r = _eval(tmp_path / "m", truth)
    assert r["truth_layout"] == "json" and r["n_kcs"] == 6 and 0 <= r["auroc"] <= 1


# --- bad input: one line, exit 1 -------------------------------------------------


def test_model_dir_without_graph(work, model_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    (old / "graph.json").unlink()
    header = json.loads((old / "model.json").read_text())
    header["meta"]["train_file"] = str(tmp_path / "moved.csv")  # the training data is gone too
    (old / "model.json").write_text(json.dumps(header))
    line = error_line(run("export-graph", old, "--out", tmp_path / "g.json", ok=False))
    assert str(old) in line and "no prerequisite graph" in line and "retrain with this kt version" in line
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--threshold", "1.5"), "--threshold 1.5: must be in [0, 1]"),
        (("--threshold", "-0.1"), "--threshold -0.1: must be in [0, 1]"),
        (("--format", "pdf"), "--format 'pdf': unknown format; choose one of json, dot, graphml, mermaid, html"),
        (("--top-k", "0"), "--top-k 0: must be >= 1"),
    ],
)
def test_export_bad_options(model_dir, tmp_path, args, fragment):
    line = error_line(run("export-graph", model_dir, "--out", tmp_path / "g.json", *args, ok=False))
    assert fragment in line
    assert not (tmp_path / "g.json").exists()


def test_export_not_a_model_dir(tmp_path):
    assert "not a kt model directory" in error_line(run("export-graph", tmp_path, "--out", tmp_path / "g.json", ok=False))


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("missing.json", None, "no such truth file"),
        ("bad.json", "{oops", "not valid JSON"),
        ("cols.csv", "a,b\n1,2\n", "no source/target or name/prerequisites columns (columns: a, b)"),
        ("bin.csv", b"\x89PNG\r\n\x1a\n\xff\xfe", "not UTF-8"),
        ("other.json", '{"kcs": ["x", "y"], "edges": [["x", "y"]]}', "shares 0 KC names with the graph"),
    ],
)
def test_graph_eval_bad_truth(work, model_dir, tmp_path, name, content, fragment):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = error_line(run("graph-eval", model_dir, p, ok=False))
    assert fragment in line and str(p) in line


def test_graph_eval_bad_graph_and_threshold(work, model_dir, tmp_path):
    (tmp_path / "g.json").write_text('{"edges": []}')
    assert "not a kt graph JSON" in error_line(run("graph-eval", tmp_path / "g.json", work / "truth.json", ok=False))
    assert "cannot read graph" in error_line(run("graph-eval", tmp_path / "none.json", work / "truth.json", ok=False))
    line = error_line(run("graph-eval", model_dir, work / "truth.json", "--threshold", "2", ok=False))
    assert "--threshold 2.0: must be in [0, 1]" in line


# --- real models (slow) -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model, sets", [("bkt", ["--set", "num_fits=1"]), ("dkt", ["--epochs", "2", "--set", "hidden=16"])])
def test_trained_models_export_evaluable_graphs(work, model, sets):
    out = work / f"real-{model}"
    run("train", work / "dag.csv", "--model", model, "--out", out, "--valid-frac", "0.2", *sets)
    g = json.loads((out / "graph.json").read_text())
    from kt.models.base import get

    expected = "conditional-influence" if hasattr(get(model), "influence_matrix") else "causal-support"
    assert g["method"] == expected
    run("export-graph", out, "--out", work / f"real-{model}.html")
    run("export-graph", out, "--out", work / f"real-{model}.json", "--reduce", "--method", expected.removeprefix("conditional-"))
    r = _eval(work / f"real-{model}.json", work / "truth.json")
    assert 0 <= r["auroc"] <= 1 and r["method"] == expected

"""Streaming conversion into learner partitions and DKT training from them (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import kt
from kt.data.partitioned import PartitionedData, is_partitioned, partition_of
from kt.data.stream import convert_partitioned
from kt.errors import DataError

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "assist2009_sample" / "train.csv"

# Multi-KC cells, ISO times, true/false outcomes, partial credit, an order column,
# a learner with one attempt whose KC and item appear nowhere else, file order != learner order.
MIXED = """student\titem\tskill\tcorrect\ttime\torder_id
b\tq1\tk1~~k2\ttrue\t2020-01-01 10:00:05\t3
a\tq2\tk2\t0\t2020-01-01 09:00:00\t1
b\tq3\tk3\tfalse\t2020-01-01 10:00:01\t2
a\tq1\tk1~~k2\t1\t2020-01-01 09:00:00\t0
c\tq9\tk9\t1\t2020-01-02 00:00:00\t5
a\tq4\tk3\t0.75\t2020-01-01 09:30:00\t4
d\tq2\tk2\tTRUE\t2020-01-03 00:00:00\t6
d\tq2\tk2\t0\t2020-01-03 00:00:00\t6
b\tq3\tk1~~k3\t1\t2020-01-01 10:00:01\t7
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("mixed") / "mixed.tsv"
    p.write_text(MIXED)
    return p


@pytest.fixture(scope="module")
def mixed_parquet(tmp_path_factory, mixed) -> Path:
    p = tmp_path_factory.mktemp("mixedpq") / "mixed.parquet"
    pl.read_csv(mixed, separator="\t").write_parquet(p)  # typed columns: integer order, text elsewhere
    return p


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The first 60 learners of the sample (fast DKT runs)."""
    p = tmp_path_factory.mktemp("small") / "small.csv"
    f = pl.read_csv(SAMPLE, infer_schema=False)
    f.filter(pl.col("user_id").is_in(f["user_id"].unique(maintain_order=True)[:60].implode())).write_csv(p)
    return p


def _part_frames(d: Path) -> list[pl.DataFrame]:
    meta = json.loads((d / "meta.json").read_text())
    return [pl.read_parquet([d / f for f in p["files"]]) for p in meta["partitions"] if p["files"]]


def test_partitions_hold_every_row_once_and_each_learner_in_one(tmp_path):
    meta = convert_partitioned(SAMPLE, tmp_path / "p", 5)
    frames = _part_frames(tmp_path / "p")
    raw = pl.read_csv(SAMPLE, infer_schema=False)
    lines = pl.concat([f["line"] for f in frames]).sort()
    assert lines.to_list() == list(range(2, raw.height + 2))  # every data line exactly once
    owners = pl.concat([f.select("user_id").unique().with_columns(pl.lit(i).alias("p")) for i, f in enumerate(frames)])
    assert owners["user_id"].is_unique().all() and owners.height == raw["user_id"].n_unique()
    learners = pl.read_parquet(tmp_path / "p" / "learners.parquet")
    assert learners["part"].to_list() == partition_of(learners["user_id"].to_list(), 5).tolist()
    assert meta["rows"] == raw.height and meta["learners"] == learners.height
    assert sum(p["rows"] for p in meta["partitions"]) == raw.height
    assert meta["correct_rate"] == pytest.approx(raw["correct"].cast(pl.Int8).mean())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


@pytest.mark.parametrize("name", ["sample", "mixed", "mixed_parquet"])
def test_loading_partitions_equals_load(name, tmp_path, request):
    src = SAMPLE if name == "sample" else request.getfixturevalue(name)
    convert_partitioned(src, tmp_path / "p", 3)
    ref = kt.load(str(src))
    data = PartitionedData.open(tmp_path / "p")
    whole = data.to_interactions()
    assert whole.vocab.to_dict() == ref.vocab.to_dict()
    assert_frame_equal(whole.frame, ref.frame)
    parts = list(data.partitions())
    assert all(p.vocab.skill_id == ref.vocab.skill_id and p.vocab.item_id == ref.vocab.item_id for p in parts)
    joined = pl.concat([p.frame.drop("user_idx") for p in parts]).sort("user_id", maintain_order=True)
    assert_frame_equal(joined, ref.frame.drop("user_idx"))  # same rows, same order within each learner
    assert data.n_users == ref.n_users and data.n_rows == ref.n_rows
    if name != "sample":
        assert data.multi_kc and ref.multi_kc
        assert "k9" not in data.vocab.skill_id  # only learner c (one attempt) has it, as in load


def test_split_is_by_learner_hash_deterministic_and_disjoint(tmp_path):
    convert_partitioned(SAMPLE, tmp_path / "p", 4)
    data = PartitionedData.open(tmp_path / "p")
    tr, va = data.split(0.2, seed=1)
    tr2, va2 = data.split(0.2, seed=1)
    assert va.learners["user_id"].to_list() == va2.learners["user_id"].to_list()
    assert set(va.learners["user_id"]) != set(data.split(0.2, seed=2)[1].learners["user_id"])
    assert not set(tr.learners["user_id"]) & set(va.learners["user_id"])
    assert tr.n_users + va.n_users == data.n_users and tr.n_rows + va.n_rows == data.n_rows
    assert 0.1 < va.n_users / data.n_users < 0.3
    got = pl.concat([p.frame for p in va.partitions()])["user_id"].unique().sort().to_list()
    assert got == sorted(va.learners["user_id"].to_list())
    same, none = data.split(0.0, seed=1)
    assert same is data and none is None


BAD = [
    ("user_id,skill_id,correct\n1,a,1\n1,a,x\n2,b,0\n", "line 3, column 'correct': 'x' is not a number"),
    ("user_id,skill_id,correct\n1,a,1\n,a,0\n,b,0\n", "line 3 (and 1 more), column 'user_id': empty learner id"),
    ("user_id,skill_id,correct\n1,a,1\n1,a,2\n", "line 3, column 'correct': value 2 is outside [0, 1]"),
    ("user_id,skill_id,correct\n1,a,1\n1,a,\n", "line 3, column 'correct': empty outcome"),
    ("user_id,skill_id,outcome\n1,a,1\n", "no column for 'correct'"),
    ("user_id,skill_id,correct,timestamp\n1,a,1,2020-01-01\n1,a,0,soon\n", "line 3, column 'timestamp': cannot parse 'soon'"),
    ("user_id,skill_id,correct\n1,a~~b,1\n1,~~,0\n", "line 3, column 'skill_id': KC cell has only separators"),
    ("user_id,skill_id,correct\n1,a,1\n1,a,0,7\n", "line 3: 4 fields but the header has 3"),
    ("user_id,skill_id,correct\n", "no data rows"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_input_is_a_one_line_cli_error_and_leaves_nothing(text, message, tmp_path, cli):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    r = cli("data", "convert", src, "--out", tmp_path / "out", "--partitions", "2")
    assert r.exit_code == 1, r.output
    line = r.output.strip()
    assert "\n" not in line and line.startswith("error: ") and str(src) in line and message in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # no output, no temp dirs


def test_target_and_option_errors(tmp_path, cli):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    r = cli("data", "convert", SAMPLE, "--out", other, "--partitions", "2")
    assert r.exit_code == 1 and "not a kt partitioned dataset" in r.output and (other / "keep.txt").exists()
    r = cli("data", "convert", SAMPLE, "--out", tmp_path / "p", "--partitions", "0")
    assert r.exit_code == 1 and "--partitions 0" in r.output
    with pytest.raises(DataError, match="compressed"):
        (tmp_path / "x.csv.gz").write_bytes(b"")
        convert_partitioned(tmp_path / "x.csv.gz", tmp_path / "q", 2)
    # A second conversion replaces the first dataset atomically.
    assert cli("data", "convert", SAMPLE, "--out", tmp_path / "p", "--partitions", "2").exit_code == 0
    r = cli("data", "convert", SAMPLE, "--out", tmp_path / "p", "--partitions", "3")
    assert r.exit_code == 0 and "29,864 rows" in r.output and "3 partitions" in r.output
    assert len(json.loads((tmp_path / "p" / "meta.json").read_text())["partitions"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_drop_nulls_drops_rows_instead_of_failing(tmp_path):
    src = tmp_path / "n.csv"
    src.write_text("user_id,skill_id,correct\n1,a,1\n,a,0\n1,,0\n1,b,0\n2,a,1\n2,b,1\n")
    meta = convert_partitioned(src, tmp_path / "p", 8, drop_nulls=True)  # more partitions than learners
    assert meta["rows"] == 4 and meta["stats"]["dropped_nulls"] == 2
    assert sum(1 for p in meta["partitions"] if not p["files"]) >= 6
    assert sum(p.n_rows for p in PartitionedData.open(tmp_path / "p").partitions()) == 4
    assert_frame_equal(PartitionedData.open(tmp_path / "p").to_interactions().frame, kt.load(str(src), drop_nulls=True).frame)


# --- training ----------------------------------------------------------------------

# One length bucket and batch size 1: every DKT run in this file reuses one compiled train step.
DKT_SETS = ["--set", "hidden=8", "--set", "batch_size=1", "--set", "window=16", "--set", "eval_mode=chunk"]


def _dkt_windows(data):
    from kt.data.sequences import build_sequences
    from kt.models.dkt.model import _known

    return build_sequences(_known(data), window=50, min_len=3)


def test_stream_yields_the_in_memory_windows(tmp_path):
    convert_partitioned(SAMPLE, tmp_path / "p", 3)
    tr, _ = PartitionedData.open(tmp_path / "p").split(0.2, seed=0)
    stream = tr.stream(_dkt_windows)
    chunks = list(stream.chunks(np.random.default_rng(0)))
    assert len(chunks) == 3 and stream.sequences == sum(c.mask.shape[0] for c in chunks)
    mem = kt.load(str(SAMPLE))
    keep = mem.vocab.frame("user_id").filter(pl.col("user_id").is_in(tr.learners["user_id"].implode()))["user_idx"]
    ref = _dkt_windows(mem.subset(keep.to_numpy()))

    def windows(seqs):  # each window as (KCs, outcomes) of its real steps, as a sorted multiset
        return sorted((tuple(s[m]), tuple(c[m])) for s, c, m in zip(seqs.skill, seqs.correct, seqs.mask))

    assert sorted(w for c in chunks for w in windows(c)) == windows(ref)
    assert stream.rows == tr.n_rows
    first = [int(c.user[0]) for c in stream.chunks(None)]
    assert first == [int(c.user[0]) for c in stream.chunks(None)]  # fixed order without a generator


def test_one_partition_trains_exactly_as_in_memory_with_validation(tmp_path, small):
    from kt.models.base import create

    convert_partitioned(small, tmp_path / "p", 1)
    data = PartitionedData.open(tmp_path / "p")
    tr, va = data.split(0.2, seed=0)
    mem = kt.load(str(small))
    users = mem.vocab.frame("user_id")

    def same(view):
        return mem.subset(users.filter(pl.col("user_id").is_in(view.learners["user_id"].implode()))["user_idx"].to_numpy())

    cfg = dict(hidden=8, batch_size=1, window=16, eval_mode="chunk", epochs=2)
    a = create("dkt", **cfg).fit(tr, valid=va, key=3)
    b = create("dkt", **cfg).fit(same(tr), valid=same(va), key=3)
    for leaf_a, leaf_b in zip(*(pl_leaves(m.params) for m in (a, b))):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    drop = ("seconds", "interactions_per_second")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a.meta["history"]] == [
        {k: v for k, v in r.items() if k not in drop} for r in b.meta["history"]
    ]
    assert a.meta["train_windows"] == b.meta["train_windows"] and a.meta["base_rate"] == pytest.approx(b.meta["base_rate"])


def pl_leaves(tree):
    import equinox as eqx
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


def test_cli_train_dkt_from_partitions(tmp_path, cli, small):
    assert cli("data", "convert", small, "--out", tmp_path / "one", "--partitions", "1").exit_code == 0
    args = ["--model", "dkt", "--epochs", "1", "--valid-frac", "0", *DKT_SETS]
    for src, out in ((tmp_path / "one", "m1"), (small, "mem")):
        r = cli("train", src, *args, "--out", tmp_path / out)
        assert r.exit_code == 0, r.output
    # One partition, no validation: the same parameters as in-memory training on the CSV.
    assert (tmp_path / "m1" / "params.eqx").read_bytes() == (tmp_path / "mem" / "params.eqx").read_bytes()

    assert cli("data", "convert", small, "--out", tmp_path / "three", "--partitions", "3").exit_code == 0
    r = cli(
        "train", tmp_path / "three", "--model", "dkt", "--epochs", "1", "--valid-frac", "0.2", *DKT_SETS, "--out", tmp_path / "m3"
    )
    assert r.exit_code == 0, r.output
    assert "valid" in r.output and is_partitioned(tmp_path / "three")
    header = json.loads((tmp_path / "m3" / "model.json").read_text())
    meta = json.loads((tmp_path / "three" / "meta.json").read_text())
    assert header["meta"]["data_fingerprint"] == meta["fingerprint"]
    assert header["meta"]["valid_metrics"]["n"] > 0 and 0 < header["meta"]["valid_metrics"]["auc"] < 1
    assert header["vocab"]["skill_id"] == meta["vocab"]["skill_id"] and header["vocab"]["user_id"] == []
    from kt.graph.graph import read_graph

    graph = read_graph(tmp_path / "m3" / "graph.json")
    assert graph.method == "conditional-influence" and len(graph.difficulty) == len(meta["vocab"]["skill_id"])


def test_cli_other_models_load_partitions_in_memory(tmp_path, cli):
    assert cli("data", "convert", SAMPLE, "--out", tmp_path / "p", "--partitions", "2").exit_code == 0
    r = cli("train", tmp_path / "p", "--model", "kc-rate", "--out", tmp_path / "k")
    assert r.exit_code == 0 and "does not stream partitions; loading all" in r.output, r.output
    r2 = cli("train", SAMPLE, "--model", "kc-rate", "--out", tmp_path / "k2")
    assert r2.exit_code == 0
    a, b = (json.loads((tmp_path / d / "model.json").read_text())["meta"] for d in ("k", "k2"))
    assert a["valid_metrics"] == b["valid_metrics"] and a["data_fingerprint"] == b["data_fingerprint"]
    r = cli("train", tmp_path / "p", "--model", "dkt", "--map", "correct=x", "--out", tmp_path / "z")
    assert r.exit_code == 1 and "--map/--encoding apply when converting" in r.output


def test_newer_or_broken_dataset_is_a_clear_error(tmp_path, cli):
    convert_partitioned(SAMPLE, tmp_path / "p", 2)
    meta_path = tmp_path / "p" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    r = cli("train", tmp_path / "p", "--model", "dkt", "--out", tmp_path / "m")
    assert r.exit_code == 1 and "newer kt" in r.output and "Traceback" not in r.output
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "p" / "learners.parquet").unlink()
    with pytest.raises(DataError, match="learner table"):
        PartitionedData.open(tmp_path / "p")


def test_cli_evaluate_predict_inspect_read_partitions_like_the_file(tmp_path, cli):
    assert cli("data", "convert", SAMPLE, "--out", tmp_path / "p", "--partitions", "3").exit_code == 0
    assert cli("train", SAMPLE, "--model", "kc-rate", "--out", tmp_path / "k").exit_code == 0
    for src, tag in ((SAMPLE, "file"), (tmp_path / "p", "parts")):
        r = cli("evaluate", tmp_path / "k", src, "--json", tmp_path / f"ev_{tag}.json")
        assert r.exit_code == 0, r.output
        r = cli("predict", tmp_path / "k", src, "--out", tmp_path / f"pred_{tag}.csv")
        assert r.exit_code == 0, r.output
        r = cli("data", "inspect", src, "--json")
        assert r.exit_code == 0, r.output
    assert "loading all" in r.output
    ev = [json.loads((tmp_path / f"ev_{t}.json").read_text()) for t in ("file", "parts")]
    assert ev[0]["n"] == ev[1]["n"] > 0 and ev[0]["auc"] == pytest.approx(ev[1]["auc"], abs=1e-12)
    pa, pb = (pl.read_csv(tmp_path / f"pred_{t}.csv").sort("user_id", "position") for t in ("file", "parts"))
    assert pa.height == pb.height and np.allclose(pa["prob"].to_numpy(), pb["prob"].to_numpy())
    r = cli("evaluate", tmp_path / "k", tmp_path / "p", "--map", "correct=x")
    assert r.exit_code == 1 and "--map/--encoding apply when converting" in r.output


# Inputs both readers refuse; the streaming conversion checks the rules of kt.load
# (kt.data.rules) and must say exactly what kt.load says.
SAME_ERROR = [
    "user_id,skill_id,correct\n1,a,1\n1,a,x\n2,b,0\n1,a,y\n",
    "user_id,skill_id,correct\n1,a,1\n,a,0\n,b,0\n",
    "user_id,skill_id,correct\n1,a,1\n1,,0\n",
    "user_id,skill_id,correct\n1,a,1\n1,a,2\n1,a,-1\n",
    "user_id,skill_id,correct\n1,a,1\n1,a,\n",
    "user_id,skill_id,outcome\n1,a,1\n",
    "skill_id,correct\na,1\n",
    "user_id,correct\n1,1\n",
    "user_id,skill_id,correct,timestamp\n1,a,1,2020-01-01\n1,a,0,soon\n",
    "user_id,skill_id,correct,order\n1,a,1,3\n1,a,0,later\n",
    "user_id,skill_id,correct\n1,a~~b,1\n1,~~,0\n",
    "user_id,skill_id,correct\n",
]


@pytest.mark.parametrize("text", SAME_ERROR)
def test_stream_refuses_with_the_message_of_load(text, tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    with pytest.raises(DataError) as loaded:
        kt.load(str(src))
    with pytest.raises(DataError) as streamed:
        convert_partitioned(src, tmp_path / "out", 2)
    assert str(streamed.value) == str(loaded.value)


@pytest.mark.parametrize(
    "text,n_notes",
    [
        # no KC column, dropped nulls, partial credit, constant times
        ("student,item_id,correct,timestamp\n1,q,0.75,5\n1,q,1,5\n,q,0,5\n2,r,0,5\n2,r,1,5\n", 4),
        ("user_id,skill_id,correct,timestamp\n1,a,1,soon\n1,a,0,later\n", 1),  # times that do not parse
    ],
)
def test_stream_notes_match_load(text, n_notes, tmp_path):
    src = tmp_path / "notes.csv"
    src.write_text(text)
    meta = convert_partitioned(src, tmp_path / "out", 2, drop_nulls=True)
    notes = kt.load(str(src), drop_nulls=True).notes
    assert len(meta["notes"]) == n_notes and all(note in notes for note in meta["notes"]), (meta["notes"], notes)

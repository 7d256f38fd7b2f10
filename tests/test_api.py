"""The top-level Python API (kt/api.py): DataFrames in, the `kt train` pipeline,
and the same results and saved models as the command line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import numpy as np
import pytest

import kt
from kt.errors import DataError, KTError, ModelError
from tests.cli_run import output as run

TIMING = ("train_seconds",)  # meta fields that differ run to run


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    df, _ = kt.simulate("bkt", learners=40, kcs=3, steps=6, seed=1)
    return df


@pytest.fixture(scope="module")
def csv_file(frame, tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("api") / "sim.csv"
    frame.write_csv(p)
    return p


@pytest.fixture(scope="module")
def saved(csv_file, tmp_path_factory) -> dict[str, Path]:
    """The same BKT model saved by `kt train` and by kt.train."""
    d = tmp_path_factory.mktemp("saved")
    out = run("train", csv_file, "--model", "bkt", "--out", d / "cli", "--seed", 3, "--set", "num_fits=1")
    assert "saved bkt" in out and "valid" in out
    kt.train(str(csv_file), "bkt", seed=3, num_fits=1, out=d / "py", verbose=False)
    return {"cli": d / "cli", "py": d / "py"}


def test_import_kt_does_not_import_jax():
    code = "import sys, kt; assert 'jax' not in sys.modules and 'kt.models.base' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kt_train_stays_the_function_after_the_subpackage_is_imported():
    from kt.train import loop  # noqa: F401 - the subpackage kt/train/ (gradient models import it)
    import kt.train.shard  # noqa: F401

    assert callable(kt.train) and kt.train is kt.api.train
    assert loop.__name__ == "kt.train.loop"


def test_pandas_frame_with_pybkt_columns_trains_bkt(frame):
    pytest.importorskip("pandas")
    df = (
        frame.select(
            pl.col("user_id").alias("Anon Student Id"),
            pl.col("skill_id").alias("skill_name"),
            "correct",
            pl.int_range(pl.len()).alias("order_id"),
        )
        .reverse()
        .to_pandas()
    )  # rows out of order: order_id orders them
    data = kt.from_frame(df)
    assert data.colmap.columns["user_id"] == "Anon Student Id" and data.colmap.columns["skill_id"] == "skill_name"
    assert data.colmap.columns["order"] == "order_id"
    assert data.fmt == "frame" and data.source == "<frame>" and data.n_rows == len(df)
    first = data.frame.filter(pl.col("user_id") == data.frame["user_id"][0])
    assert first["order"].is_sorted()  # each learner's attempts in order_id order
    # line is the row's 0-based position in the frame given
    row = int(first["line"][0])
    assert df.iloc[row]["Anon Student Id"] == first["user_id"][0] and df.iloc[row]["order_id"] == first["order"][0]
    model = kt.train(data, "bkt", num_fits=1, verbose=False)
    assert model.meta["train_file"] == "<frame>" and model.meta["valid_metrics"]["n"] > 0
    assert kt.train(df, "bkt", num_fits=1, verbose=False).meta["data_fingerprint"] == data.fingerprint()
    mastery = model.mastery(data)
    assert {"user_id", "skill_id"} <= set(mastery.columns)


def test_polars_frame_with_kt_names_is_loaded_like_the_file(frame, csv_file):
    data = kt.from_frame(frame)
    from_file = kt.load(csv_file)
    assert data.vocab.to_dict() == from_file.vocab.to_dict()
    assert data.fingerprint() == from_file.fingerprint()
    cols = [c for c in data.frame.columns if c != "line"]
    assert data.frame.select(cols).equals(from_file.frame.select(cols))
    assert kt.load(frame).fingerprint() == data.fingerprint()  # kt.load passes frames to from_frame
    assert kt.load(frame.lazy()).n_rows == data.n_rows
    model = kt.train(frame, "kc-rate", verbose=False)
    preds = model.predict(kt.load(frame, vocab=model.vocab))
    assert preds.height == frame.height and preds["prob"].is_between(0, 1).all()


def test_from_frame_validates_as_files_do(frame):
    with pytest.raises(KTError, match="no column for 'correct'"):
        kt.from_frame(frame.drop("correct"))
    bad = frame.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(2)).otherwise(pl.col("correct")).alias("correct"))
    with pytest.raises(DataError, match="row 5, column 'correct'"):
        kt.from_frame(bad, source="mine")
    renamed = frame.rename({"correct": "ok"})
    assert kt.from_frame(renamed, map={"correct": "ok"}).n_rows == frame.height
    assert kt.from_frame(renamed, map=["correct=ok"]).n_rows == frame.height
    with pytest.raises(KTError, match="names no column"):
        kt.from_frame(frame, map={"correct": "nope"})
    with pytest.raises(KTError, match="expected a pandas or Polars DataFrame"):
        kt.from_frame({"user_id": [1]})


def test_python_and_cli_save_the_same_model(saved):
    cli, py = saved["cli"], saved["py"]
    assert sorted(p.name for p in cli.iterdir()) == sorted(p.name for p in py.iterdir())
    assert (cli / "graph.json").is_file()
    a, b = (json.loads((d / "model.json").read_text()) for d in (cli, py))
    for h in (a, b):
        h.pop("created")
        for k in TIMING:
            h["meta"].pop(k)
    assert a == b
    assert a["meta"]["train_file"].endswith("sim.csv") and len(a["meta"]["data_fingerprint"]) == 16
    assert set(a["meta"]["valid_metrics"]) == {"auc", "accuracy", "rmse", "logloss", "n"}
    for name in sorted(p.name for p in cli.iterdir()):
        if name != "model.json":
            assert (cli / name).read_bytes() == (py / name).read_bytes(), name
    with pytest.raises(KTError, match="already exists"):
        kt.train("unused.csv", "bkt", out=py, verbose=False)  # checked before any data is read


def test_evaluate_equals_kt_evaluate_json(saved, csv_file, tmp_path):
    from kt.cli.common import _json_dump

    run("evaluate", saved["cli"], csv_file, "--json", tmp_path / "e.json")
    want = json.loads((tmp_path / "e.json").read_text())
    got = kt.evaluate(saved["cli"], csv_file, verbose=False)
    assert json.loads(_json_dump(got)) == want
    model = kt.load_model(saved["cli"])
    again = kt.evaluate(model, kt.load(csv_file, vocab=model.vocab), verbose=False)
    assert {k: again[k] for k in ("auc", "accuracy", "rmse", "logloss", "n")} == {
        k: want[k] for k in ("auc", "accuracy", "rmse", "logloss", "n")
    }
    foreign = dataclasses.replace(kt.load(csv_file), vocab=_other_vocab(model))
    with pytest.raises(KTError, match="another vocabulary"):
        kt.evaluate(model, foreign, verbose=False)
    with pytest.raises(KTError, match="--protocol"):
        kt.evaluate(model, csv_file, "sideways")


def test_an_unfitted_model_is_refused_as_unfitted(frame):
    # Found by mypy (Model.vocab is Optional): with loaded Interactions, evaluate compared the data's
    # vocabulary with the unfitted model's None, and prerequisite_graph read None.skill_id (AttributeError).
    with pytest.raises(ModelError, match="not fitted"):
        kt.evaluate(kt.create("kc-rate"), kt.load(frame), verbose=False)
    with pytest.raises(ModelError, match="not fitted"):
        kt.prerequisite_graph(kt.create("bkt"), frame, verbose=False)


def _other_vocab(model):
    from kt.data.vocab import Vocab

    v = model.vocab.to_dict()
    return Vocab.from_dict({**v, "skill_id": list(reversed(v["skill_id"]))})


def test_graph_of_a_saved_and_a_python_model(saved, csv_file, tmp_path):
    # the default is what kt export-graph writes: the gated graph of the recorded training file (small data)
    g = kt.prerequisite_graph(saved["py"], verbose=False)
    assert g.method == "gated" and g.n_kcs == 3
    run("export-graph", saved["py"], "--out", tmp_path / "cli.json")
    from kt.graph.graph import read_graph

    np.testing.assert_allclose(read_graph(tmp_path / "cli.json").prob, g.prob, atol=1e-6)  # the file rounds to 6 digits
    assert kt.prerequisite_graph(saved["py"], method="causal-support").method == "causal-support"
    model = kt.load_model(saved["py"])
    assert model.graph() is None  # BKT has no structure of its own
    assert kt.prerequisite_graph(model, csv_file, verbose=False).method == "gated"
    assert kt.prerequisite_graph(model, csv_file, method="causal-support").method == "causal-support"
    boot = kt.prerequisite_graph(model, csv_file, bootstrap=3, seed=1, verbose=False)
    assert boot.stability is not None and boot.meta["bootstrap"]["refits"] == 3
    with pytest.raises(KTError, match="has no learned graph"):
        kt.prerequisite_graph(model, method="learned")
    v = kt.export_graph(saved["py"], tmp_path / "g.mmd", threshold=0.0, top_k=2)
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart LR") and len(v.edges) <= 2


def test_cross_validate_and_compare_match_the_cli(frame, csv_file, tmp_path):
    run("cv", csv_file, "--model", "kc-rate", "--folds", 2, "--json", tmp_path / "cv.json")
    rec = kt.cross_validate(csv_file, "kc-rate", folds=2, verbose=False)
    want = json.loads((tmp_path / "cv.json").read_text())
    assert rec["summary"]["auc"]["values"] == want["summary"]["auc"]["values"]
    run("compare", csv_file, "--models", "majority,kc-rate", "--json", tmp_path / "cmp.json")
    cmp = kt.compare(csv_file, ["majority", "kc-rate"], verbose=False)
    want = json.loads((tmp_path / "cmp.json").read_text())
    assert cmp["test_users"] == want["test_users"]
    assert [r["auc"] for r in cmp["results"]] == [r["auc"] for r in want["results"]]
    opts = kt.compare(frame, "kc-rate", options={"kc-rate": {"prior": 1.0}}, verbose=False)
    assert opts["results"][0]["config"]["prior"] == 1.0
    with pytest.raises(KTError, match="listed twice"):
        kt.compare(frame, ["bkt", "bkt"])


def test_list_models_and_simulate():
    models = kt.list_models()
    assert {"majority", "kc-rate", "bkt", "dkt"} <= set(models)
    assert models["bkt"]["options"]["num_fits"] == 5 and models["kc-rate"]["summary"]
    df, truth = kt.simulate("bkt", learners=4, kcs=2, steps=3, seed=0)
    assert df.height == 4 * 2 * 3 and truth
    with pytest.raises(KTError, match="available generators"):
        kt.simulate("nope")
    with pytest.raises(KTError, match="unknown option"):
        kt.train(df, "kc-rate", hidden=3)

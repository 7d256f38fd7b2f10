"""Every input-validation error, through the CLI.

Each user error must print one line ``error: <file>: <where>: <problem>; <fix>``
on stderr, exit with code 1 and show no traceback; ``kt --debug`` re-raises.
Recoverable problems (partial credit, single-attempt learners, duplicates,
Latin-1 files, unparseable auto-detected times) load with a note instead.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import kt
from kt.errors import DataError, KTError

HEADER = "user_id,skill_id,correct\n"
GOOD = HEADER + "u1,a,1\nu1,b,0\nu2,a,1\nu2,b,1\nu3,a,0\nu3,b,1\n"


def error_line(result) -> str:
    """The single ``error:`` line of a failed command, after checking the contract."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    assert lines[0] in result.stderr  # on stderr, not stdout
    assert "error:" not in result.stdout
    return lines[0]


def assert_error(result, *fragments: str) -> str:
    line = error_line(result)
    for frag in fragments:
        assert frag in line, f"{frag!r} not in {line!r}"
    return line


def assert_file_error(result, path, *fragments: str) -> str:
    """An error naming the file first, then where, the problem and a fix after ';'."""
    line = assert_error(result, *fragments)
    assert line.startswith(f"error: {path}: "), line
    assert ";" in line, f"no fix hint in {line!r}"
    return line


def inspect_json(cli, path, *extra) -> dict:
    res = cli("data", "inspect", path, "--json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# --- columns ------------------------------------------------------------------


def test_missing_correct_column(cli, write_file):
    p = write_file("nocorrect.csv", "user_id,skill_id,score\nu1,a,1\nu1,b,0\n")
    assert_file_error(
        cli("data", "inspect", p), p, "no column for 'correct'", "columns: user_id, skill_id, score", "--map correct=COLUMN"
    )
    # --map names the column and fixes it
    assert cli("data", "inspect", p, "--map", "correct=score").exit_code == 0


def test_unrecognised_header_reports_columns_not_empty_file(cli, write_file):
    p = write_file("odd.csv", "a,b,c\n1,2,3\n4,5,6\n")
    line = assert_file_error(cli("data", "inspect", p), p, "no column for 'user_id'", "columns: a, b, c", "--map user_id=")
    assert "no data rows" not in line


def test_map_names_nonexistent_column(cli, write_file):
    p = write_file("good.csv", GOOD)
    assert_file_error(
        cli("data", "inspect", p, "--map", "correct=outcome"),
        p,
        "--map correct='outcome' names no column",
        "columns are: user_id, skill_id, correct",
    )


def test_map_unknown_canonical_name(cli, write_file):
    p = write_file("good.csv", GOOD)
    # A usage error about the option itself: names the option and lists the valid names.
    assert_error(
        cli("data", "inspect", p, "--map", "learner=user_id"),
        "--map 'learner=user_id'",
        "unknown canonical column 'learner'",
        "user_id, skill_id, item_id, correct, timestamp, order",
    )
    assert_error(cli("data", "inspect", p, "--map", "correct"), "expected canonical=Column")


# --- outcomes -------------------------------------------------------------------


def test_correct_outside_0_1(cli, write_file):
    p = write_file("two.csv", HEADER + "u1,a,1\nu1,b,2\nu2,a,1\nu2,a,0\n")
    assert_file_error(cli("data", "inspect", p), p, "line 3", "column 'correct'", "value 2 is outside [0, 1]", "0/1")


def test_negative_correct_counts_all_bad_lines(cli, write_file):
    p = write_file("neg.csv", HEADER + "u1,a,-1\nu1,b,1\nu2,a,3\nu2,a,0\n")
    assert_file_error(cli("train", p, "--model", "kc-rate", "--out", p.parent / "m"), p, "line 2 (and 1 more)", "-1")
    assert not (p.parent / "m").exists()


def test_partial_credit_is_rounded_with_note(cli, write_file):
    p = write_file("partial.csv", HEADER + "u1,a,1\nu1,b,0.5\nu2,a,0.7\nu2,b,0.3\n")
    res = cli("data", "inspect", p)
    assert res.exit_code == 0, res.output
    assert "3 partial-credit outcomes" in res.output and "rounded" in res.output
    data = kt.load(str(p))
    assert data.stats["rounded_partial_credit"] == 3
    assert data.frame.sort("line")["correct"].to_list() == [1, 1, 1, 0]
    assert data.frame["correct"].dtype == pl.Int8


def test_non_numeric_correct(cli, write_file):
    p = write_file("yes.csv", HEADER + "u1,a,1\nu1,b,1\nu2,a,yes\nu2,a,0\n")
    assert_file_error(cli("data", "inspect", p), p, "line 4", "column 'correct'", "'yes' is not a number", "--map correct=")


def test_true_false_outcomes_are_accepted(write_file):
    p = write_file("bool.csv", HEADER + "u1,a,TRUE\nu1,b,false\n")
    assert kt.load(str(p)).frame["correct"].to_list() == [1, 0]


def test_empty_outcome(cli, write_file):
    p = write_file("blank.csv", HEADER + "u1,a,1\nu1,b,\nu2,a,1\nu2,a,0\n")
    assert_file_error(cli("data", "inspect", p), p, "line 3", "column 'correct'", "empty outcome")


# --- ids --------------------------------------------------------------------------


def test_null_user_id(cli, write_file):
    p = write_file("nulluser.csv", HEADER + "u1,a,1\n,b,0\nu2,a,1\nu2,b,0\n")
    assert_file_error(cli("data", "inspect", p), p, "line 3", "column 'user_id'", "empty learner id", "--drop-nulls")


def test_null_skill_fails_and_drop_nulls_drops(cli, write_file, tmp_path):
    p = write_file("nullskill.csv", HEADER + "u1,a,1\nu1,,0\nu2,a,1\nu2,b,0\nu2, ,1\n")
    assert_file_error(cli("data", "inspect", p), p, "line 3 (and 1 more)", "column 'skill_id'", "empty KC id", "--drop-nulls")

    out = tmp_path / "clean.csv"
    res = cli("data", "convert", p, "--out", out, "--drop-nulls")
    assert res.exit_code == 0, res.output
    assert "dropped 2 rows with an empty learner or KC" in res.output
    clean = pl.read_csv(out)
    assert clean.height == 3 and clean["skill_id"].null_count() == 0

    res = cli("train", p, "--model", "kc-rate", "--out", tmp_path / "m", "--valid-frac", "0", "--drop-nulls")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "model.json").exists()
    assert kt.load(str(p), drop_nulls=True).stats["dropped_nulls"] == 2


# --- empty files --------------------------------------------------------------------


def test_empty_file(cli, write_file):
    p = write_file("empty.csv", "")
    assert_file_error(cli("data", "inspect", p), p, "file is empty", "header row")
    p = write_file("blank.csv", "\n  \n")
    assert_file_error(cli("data", "inspect", p), p, "file is empty")


def test_empty_gzip_file(cli, write_file):
    p = write_file("empty.csv.gz", "")
    assert_file_error(cli("data", "inspect", p), p, "file is empty")


def test_header_only_file(cli, write_file):
    p = write_file("header.csv", HEADER)
    assert_file_error(cli("data", "inspect", p), p, "no data rows", "at least one interaction")


# --- timestamps ----------------------------------------------------------------------


TS_PARTIAL = "user_id,skill_id,correct,{col}\nu1,a,1,2020-01-01 10:00:00\nu1,b,0,yesterday\nu2,a,1,2020-01-02 10:00:00\nu2,b,1,2020-01-02 11:00:00\n"
TS_NONE = "user_id,skill_id,correct,{col}\nu1,a,1,morning\nu1,b,0,noon\nu2,a,1,evening\nu2,b,1,night\n"


def test_explicit_timestamp_unparseable_value_names_line(cli, write_file):
    p = write_file("when.csv", TS_PARTIAL.format(col="when"))
    assert_file_error(
        cli("data", "inspect", p, "--map", "timestamp=when"), p, "line 3", "column 'when'", "'yesterday'", "--map timestamp="
    )


def test_explicit_timestamp_wholly_unparseable_is_an_error(cli, write_file):
    p = write_file("when.csv", TS_NONE.format(col="when"))
    assert_file_error(
        cli("data", "inspect", p, "--map", "timestamp=when"), p, "line 2", "column 'when'", "'morning'", "--map timestamp"
    )


def test_autodetected_timestamp_partially_unparseable_is_an_error(cli, write_file):
    p = write_file("ts.csv", TS_PARTIAL.format(col="timestamp"))
    assert_file_error(cli("data", "inspect", p), p, "line 3", "column 'timestamp'", "cannot parse 'yesterday' as a time")


def test_autodetected_timestamp_wholly_unparseable_is_ignored(cli, write_file):
    p = write_file("ts.csv", TS_NONE.format(col="start_time"))
    rep = inspect_json(cli, p)
    assert rep["rows"] == 4 and rep["time_span_days"] is None
    assert any("does not hold parseable times" in w and "ignored" in w for w in rep["warnings"])
    assert not kt.load(str(p)).has_time


def test_timestamps_parsed(write_file):
    p = write_file("ts.csv", "user_id,skill_id,correct,timestamp\nu1,a,1,2020-01-02 00:00:00\nu1,b,0,2020-01-01T00:00:00\n")
    data = kt.load(str(p))
    assert data.has_time
    # sorted by time within the learner
    assert data.frame["skill_id"].to_list() == ["b", "a"]
    assert data.frame["timestamp"].diff()[1] == 86400.0


# --- learners and duplicates ----------------------------------------------------------


def test_single_attempt_learner_dropped_with_count(cli, write_file, tmp_path):
    p = write_file("single.csv", GOOD + "u4,a,1\nu5,b,0\n")
    data = kt.load(str(p))
    assert data.n_users == 3
    assert data.stats["dropped_short_learners"] == 2 and data.stats["dropped_short_rows"] == 2
    assert any("dropped 2 learners with fewer than 2 attempts (2 rows)" in n for n in data.notes)

    res = cli("train", p, "--model", "kc-rate", "--out", tmp_path / "m", "--valid-frac", "0")
    assert res.exit_code == 0, res.output
    assert "dropped 2 learners with fewer than 2 attempts" in res.output

    rep = inspect_json(cli, p)  # inspect keeps them and says so
    assert rep["learners"] == 5 and rep["single_attempt_learners"] == 2


def test_only_single_attempt_learners(cli, write_file, tmp_path):
    p = write_file("ones.csv", HEADER + "u1,a,1\nu2,a,0\n")
    assert_file_error(cli("train", p, "--model", "kc-rate", "--out", tmp_path / "m"), p, "no learner has 2 or more attempts")


DUPS = "user_id,skill_id,correct,order_id\nu1,a,1,1\nu1,a,1,1\nu1,b,0,2\nu2,a,1,3\nu2,a,1,4\n"


def test_duplicates_reported_and_kept_unless_dropped(cli, write_file, tmp_path):
    p = write_file("dups.csv", DUPS)
    rep = inspect_json(cli, p)
    assert rep["duplicates"] == 1
    assert rep["rows"] == 5  # kept
    assert any("--drop-duplicates" in w for w in rep["warnings"])

    kept, dropped = tmp_path / "kept.csv", tmp_path / "dropped.csv"
    assert cli("data", "convert", p, "--out", kept).exit_code == 0
    res = cli("data", "convert", p, "--out", dropped, "--drop-duplicates")
    assert res.exit_code == 0, res.output
    assert "1 duplicated attempts" in res.output and "dropped" in res.output
    assert pl.read_csv(kept).height == 5
    assert pl.read_csv(dropped).height == 4
    assert kt.load(str(p), drop_duplicates=True).n_rows == 4


def test_repeats_without_time_or_order_are_not_duplicates(write_file):
    # Without time or order a repeat cannot be told from a genuine re-attempt.
    p = write_file("rep.csv", HEADER + "u1,a,1\nu1,a,1\n")
    assert kt.load(str(p)).stats["duplicates"] == 0


# --- encodings and files -------------------------------------------------------------------


def test_latin1_file_read_with_iconv_note(cli, write_file):
    p = write_file("latin.csv", HEADER + "José,fracción,1\nJosé,b,0\nZoë,a,1\nZoë,a,0\n", encoding="latin-1")
    res = cli("data", "inspect", p)
    assert res.exit_code == 0, res.output
    assert "not valid UTF-8" in res.output and "iconv -f latin1 -t utf-8" in res.output
    data = kt.load(str(p))
    assert set(data.vocab.user_id) == {"José", "Zoë"}
    assert "fracción" in data.vocab.skill_id
    # an explicit encoding reads it silently
    assert not kt.load(str(p), encoding="latin-1").notes
    rep = inspect_json(cli, p, "--encoding", "latin-1")
    assert rep["learners"] == 2


def test_latin1_gzip_note_suggests_gunzip(write_file):
    p = write_file("latin.csv.gz", HEADER + "José,a,1\nJosé,b,0\n", encoding="latin-1")
    data = kt.load(str(p))
    assert data.vocab.user_id == ["José"]
    (note,) = [n for n in data.notes if "iconv" in n]
    assert f"gunzip -c {p} | iconv -f latin1 -t utf-8" in note


def test_bad_encoding_name(cli, write_file):
    p = write_file("good.csv", GOOD)
    assert_file_error(cli("data", "inspect", p, "--encoding", "no-such-codec"), p, "cannot decode as no-such-codec", "--encoding")


def test_nonexistent_file(cli, tmp_path):
    p = tmp_path / "missing.csv"
    assert_file_error(cli("data", "inspect", p), p, "file not found", "check the path")
    assert_file_error(cli("train", p, "--model", "kc-rate", "--out", tmp_path / "m"), p, "file not found")


def test_directory_instead_of_file(cli, tmp_path):
    assert_file_error(cli("data", "inspect", tmp_path), tmp_path, "is a directory")


def test_ragged_csv_names_line(cli, write_file):
    p = write_file("ragged.csv", HEADER + "u1,a,1\nu1,b,0,extra,more\nu2,a,1\n")
    assert_file_error(cli("data", "inspect", p), p, "line 3", "5 fields but the header has 3", "delimiter")


def test_truncated_gzip(cli, write_file, tmp_path):
    import gzip

    body = HEADER + "".join(f"u{i % 97},k{i % 13},{i % 2}\n" for i in range(40000))
    blob = gzip.compress(body.encode())
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(blob[: len(blob) // 2])
    assert_file_error(cli("data", "inspect", p), p, "cannot read file")


def test_line_format_bad_response_names_line(cli, write_file):
    p = write_file("seq.txt", "3\n1,2,3\n1,0,1\n2\n4,5\n0,2\n")
    assert_file_error(cli("data", "inspect", p), p, "line 6", "response '2' is not 0/1")


def test_corrupt_parquet(cli, write_file):
    p = write_file("bad.parquet", "not a parquet file")
    assert_file_error(cli("data", "inspect", p), p, "cannot read Parquet")


# --- models -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small kc-rate model trained through the CLI (shared by this module)."""
    from typer.testing import CliRunner

    from kt.cli import app

    d = tmp_path_factory.mktemp("model")
    data = d / "train.csv"
    data.write_text(GOOD)
    res = CliRunner().invoke(app, ["train", str(data), "--model", "kc-rate", "--out", str(d / "m"), "--valid-frac", "0"])
    assert res.exit_code == 0, res.output
    return d / "m", data


def test_unknown_model_name(cli, write_file, tmp_path):
    p = write_file("good.csv", GOOD)
    assert_error(
        cli("train", p, "--model", "no-such-model", "--out", tmp_path / "m"),
        "unknown model 'no-such-model'",
        "kc-rate",
        "kt models",
    )
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "setting, fragments",
    [
        ("prior=abc", ("--set prior='abc'", "expected float")),
        ("prior=-1", ("--set prior=", ">= 0")),
        ("no_such=1", ("--set no_such", "unknown option", "prior")),
        ("prior", ("--set 'prior'", "expected key=value")),
    ],
)
def test_bad_set_value(cli, write_file, tmp_path, setting, fragments):
    p = write_file("good.csv", GOOD)
    assert_error(cli("train", p, "--model", "kc-rate", "--set", setting, "--out", tmp_path / "m"), *fragments)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("threshold", ["2", "-0.1"])
def test_bad_threshold(cli, trained, tmp_path, threshold):
    model_dir, _ = trained
    out = tmp_path / "g.json"
    assert_error(cli("export-graph", model_dir, "--out", out, "--threshold", threshold), "--threshold", "must be in [0, 1]")
    assert not out.exists()


def test_export_graph_without_graph(cli, trained, tmp_path):
    import shutil

    src, _ = trained
    model_dir = tmp_path / "old-model"  # as saved by a kt version without graph.json
    shutil.copytree(src, model_dir)
    (model_dir / "graph.json").unlink()
    header = json.loads((model_dir / "model.json").read_text())
    header["meta"].pop("train_file")  # and no record of its training data
    (model_dir / "model.json").write_text(json.dumps(header))
    out = tmp_path / "g.json"
    assert_error(cli("export-graph", model_dir, "--out", out), str(model_dir), "'kc-rate' has no prerequisite graph")
    assert not out.exists()


def test_evaluate_on_non_model_dir(cli, trained, tmp_path):
    _, data = trained
    assert_error(cli("evaluate", tmp_path, data), str(tmp_path), "not a kt model directory", "kt train")
    assert_error(cli("evaluate", tmp_path / "nowhere", data), "not a kt model directory")
    assert_error(cli("predict", tmp_path, data, "--out", tmp_path / "p.csv"), "not a kt model directory")


def test_newer_model_format_version(cli, trained, tmp_path):
    model_dir, data = trained
    assert cli("evaluate", model_dir, data).exit_code == 0
    newer = tmp_path / "newer"
    shutil.copytree(model_dir, newer)
    header = json.loads((newer / "model.json").read_text())
    header["format_version"] = header["format_version"] + 1
    (newer / "model.json").write_text(json.dumps(header))
    assert_error(
        cli("evaluate", newer, data), str(newer / "model.json"), f"model format {header['format_version']}", "upgrade kt"
    )


def test_corrupt_model_json(cli, trained, tmp_path):
    model_dir, data = trained
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "model.json").write_text("{not json")
    assert_error(cli("evaluate", bad, data), "corrupt model header", "retrain")


def test_evaluate_error_in_test_file(cli, trained, write_file):
    model_dir, _ = trained
    p = write_file("bad.csv", HEADER + "u1,a,1\nu1,b,7\n")
    assert_file_error(cli("evaluate", model_dir, p), p, "line 3", "value 7")


# --- --debug and exit codes --------------------------------------------------------------------


def test_debug_reraises(cli, tmp_path):
    missing = tmp_path / "missing.csv"
    res = cli("--debug", "data", "inspect", missing)
    assert res.exit_code != 0
    assert isinstance(res.exception, DataError)
    assert "file not found" in str(res.exception)
    res = cli("--debug", "train", missing, "--model", "nope", "--out", tmp_path / "m")
    assert isinstance(res.exception, KTError)


def test_debug_shows_traceback_in_a_real_process(tmp_path):
    missing = tmp_path / "missing.csv"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, env=env, cwd=Path(kt.__file__).parents[1], timeout=120
    )
    plain = run([sys.executable, "-m", "kt.cli", "data", "inspect", str(missing)])
    assert plain.returncode == 1
    assert plain.stderr.strip() == f"error: {missing}: file not found; check the path"
    assert "Traceback" not in plain.stderr + plain.stdout
    debug = run([sys.executable, "-m", "kt.cli", "--debug", "data", "inspect", str(missing)])
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "DataError" in debug.stderr


# --- atomic outputs ---------------------------------------------------------------------------


def test_failing_convert_leaves_no_output(cli, write_file, tmp_path):
    p = write_file("two.csv", HEADER + "u1,a,1\nu1,b,2\n")
    out = tmp_path / "out" / "x.parquet"
    assert_file_error(cli("data", "convert", p, "--out", out), p, "value 2")
    assert not out.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_failing_convert_keeps_previous_output(cli, write_file, tmp_path):
    out = tmp_path / "x.csv"
    assert cli("data", "convert", write_file("good.csv", GOOD), "--out", out).exit_code == 0
    before = out.read_bytes()
    bad = write_file("bad.csv", HEADER + "u1,a,1\nu1,b,2\n")
    assert cli("data", "convert", bad, "--out", out).exit_code == 1
    assert out.read_bytes() == before


def test_convert_unknown_output_type(cli, write_file, tmp_path):
    out = tmp_path / "x.xlsx"
    assert_error(cli("data", "convert", write_file("good.csv", GOOD), "--out", out), "unknown output type '.xlsx'")
    assert not out.exists()


def test_convert_crash_while_writing_leaves_nothing(cli, write_file, tmp_path, monkeypatch):
    def boom(self, file, *args, **kwargs):
        with open(file, "wb") as fh:
            fh.write(b"PAR1 half written")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    out = tmp_path / "x.parquet"
    res = cli("data", "convert", write_file("good.csv", GOOD), "--out", out)
    assert res.exit_code == 2  # not a user error: "internal error", still no traceback
    assert "Traceback" not in res.output and "disk full" in res.output
    assert sorted(f.name for f in tmp_path.iterdir()) == ["good.csv"]


def test_convert_roundtrip(cli, write_file, tmp_path):
    p = write_file("good.csv", GOOD)
    out = tmp_path / "x.parquet"
    res = cli("data", "convert", p, "--out", out)
    assert res.exit_code == 0, res.output
    back = pl.read_parquet(out)
    assert back.columns == ["user_id", "skill_id", "item_id", "correct", "timestamp", "order"]
    assert back.height == 6
    again = kt.load(str(out))
    assert again.fmt == "parquet" and again.n_rows == 6 and again.n_users == 3

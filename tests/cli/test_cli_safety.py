"""Release blockers of issue 19 through the CLI: the distribution name in
``kt --version``, outputs that are never replaced without ``--overwrite``,
clean errors for unusable output locations, non-text inputs recognised by
their magic bytes, and duplicated column names.

Every refusal must be one ``error:`` line on stderr, exit 1, no traceback,
and leave the existing output byte for byte as it was.
"""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import kt
from kt.atomic import check_output
from kt.cli import app
from kt.data.io import sniff_input
from kt.errors import DataError, KTError

CSV = "user_id,skill_id,correct\nu1,a,1\nu1,b,0\nu2,a,1\nu2,b,1\nu3,a,0\nu3,b,1\n"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(*args) -> str:
    res = invoke(*args)
    assert res.exit_code == 0, f"kt {' '.join(map(str, args))} exited {res.exit_code}:\n{res.output}\n{res.exception!r}"
    return res.output


def ok_json(*args) -> dict:
    res = invoke(*args)
    assert res.exit_code == 0, f"kt {' '.join(map(str, args))} exited {res.exit_code}:\n{res.output}"
    return json.loads(res.stdout)


def error_line(res, *fragments: str) -> str:
    """The one ``error:`` line of a refused command, after checking the contract."""
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    assert lines[0] in res.stderr and "error:" not in res.stdout
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) -> its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli_safety")
    (d / "d.csv").write_text(CSV)
    ok("train", d / "d.csv", "--model", "kc-rate", "--out", d / "model")
    (d / "afile.txt").write_text("a regular file, so nothing can be created under it\n")
    return d


# --- the distribution name ------------------------------------------------------


def test_version_prints_the_distribution_name():
    line = ok("--version").strip()
    assert line == kt.distribution_version() and line.startswith(f"{kt.DISTRIBUTION} ")
    assert kt.DISTRIBUTION == "kt-trace" and line.split()[-1][0].isdigit()


# --- --overwrite -------------------------------------------------------------------


def test_train_refuses_an_existing_model_without_overwrite(work):
    before = snapshot(work / "model")
    line = error_line(
        invoke("train", work / "d.csv", "-m", "kc-rate", "-o", work / "model", "--seed", 7),
        str(work / "model"),
        "already exists",
        "--overwrite",
    )
    assert line.startswith(f"error: {work / 'model'}: ")
    assert snapshot(work / "model") == before
    ok("train", work / "d.csv", "-m", "kc-rate", "-o", work / "model2")
    ok("train", work / "d.csv", "-m", "kc-rate", "-o", work / "model2", "--seed", 7, "--overwrite")
    assert json.loads((work / "model2" / "model.json").read_text())["meta"]["seed"] == 7
    assert not [p for p in work.iterdir() if p.name.startswith(".model2")]  # no temporary left behind


def test_train_into_an_empty_directory_needs_no_overwrite(work):
    (work / "empty").mkdir()
    ok("train", work / "d.csv", "-m", "kc-rate", "-o", work / "empty")
    assert (work / "empty" / "model.json").is_file()


def test_train_never_replaces_a_file_even_with_overwrite(work):
    before = snapshot(work / "afile.txt")
    error_line(
        invoke("train", work / "d.csv", "-m", "kc-rate", "-o", work / "afile.txt", "--overwrite"),
        "not a directory",
        "choose another --out",
    )
    assert snapshot(work / "afile.txt") == before


def test_predict_refuses_an_existing_file_without_overwrite(work):
    out = work / "pred.csv"
    out.write_text("old\n")
    error_line(invoke("predict", work / "model", work / "d.csv", "--out", out), str(out), "already exists", "--overwrite")
    assert out.read_text() == "old\n"
    ok("predict", work / "model", work / "d.csv", "--out", out, "--overwrite")
    assert pl.read_csv(out).height == 6


def test_predict_never_overwrites_its_input(work):
    data = work / "input.csv"
    data.write_text(CSV)
    error_line(invoke("predict", work / "model", data, "--out", data, "--overwrite"), "is the input file")
    assert data.read_text() == CSV


def test_predict_into_a_directory_is_refused(work):
    error_line(invoke("predict", work / "model", work / "d.csv", "--out", work / "model", "--overwrite"), "is a directory")
    assert (work / "model" / "model.json").is_file()


def test_export_graph_refuses_an_existing_file_without_overwrite(work):
    out = work / "graph.json"
    out.write_text("{}")
    error_line(invoke("export-graph", work / "model", "--out", out), str(out), "already exists", "--overwrite")
    assert out.read_text() == "{}"
    ok("export-graph", work / "model", "--out", out, "--overwrite")
    assert "edges" in json.loads(out.read_text())


def test_learn_graph_refuses_an_existing_file_without_overwrite(work):
    out = work / "learned.json"
    out.write_text("{}")
    error_line(invoke("learn-graph", work / "d.csv", "--method", "transition", "--out", out), "already exists", "--overwrite")
    assert out.read_text() == "{}"
    ok("learn-graph", work / "d.csv", "--method", "transition", "--out", out, "--overwrite")
    assert json.loads(out.read_text())["method"] == "transition"


def test_update_refuses_another_existing_model_without_overwrite(work):
    # The check comes before the model is even loaded, so a kc-rate model serves.
    ok("train", work / "d.csv", "-m", "kc-rate", "-o", work / "other")
    before = snapshot(work / "other")
    error_line(invoke("update", work / "model", work / "d.csv", "--out", work / "other"), "already exists", "--overwrite")
    assert snapshot(work / "other") == before
    # In place (no --out, or --out MODEL_DIR) is the command's purpose and needs no --overwrite.
    for args in ((), ("--out", work / "model")):
        error_line(invoke("update", work / "model", work / "d.csv", *args), "continual updates need psikt")
    help_text = invoke("update", "--help").output
    assert "--overwrite" in help_text and "in place" in help_text


# --- unusable output locations ---------------------------------------------------


@pytest.mark.parametrize(
    "command", ["train", "predict", "export-graph", "update", "convert", "convert-partitions", "evaluate-json"]
)
def test_output_under_a_regular_file_is_one_line(work, command):
    target = work / "afile.txt" / "sub" / "out.csv"
    args = {
        "train": ("train", work / "d.csv", "-m", "kc-rate", "-o", target),
        "predict": ("predict", work / "model", work / "d.csv", "--out", target),
        "export-graph": ("export-graph", work / "model", "--out", target),
        "update": ("update", work / "model", work / "d.csv", "--out", target),
        "convert": ("data", "convert", work / "d.csv", "--out", target),
        "convert-partitions": ("data", "convert", work / "d.csv", "--out", target, "--partitions", 2),
        "evaluate-json": ("evaluate", work / "model", work / "d.csv", "--json", target),  # any atomic write
    }[command]
    error_line(invoke(*args), str(target), "afile.txt is not a directory", "choose another")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_in_proc_is_one_line(work):
    error_line(
        invoke("predict", work / "model", work / "d.csv", "--out", "/proc/kt-test.csv"), "/proc/kt-test.csv", "cannot create"
    )
    error_line(invoke("export-graph", work / "model", "--out", "/proc/kt-test/g.json"), "cannot create")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o500")
def test_output_in_a_read_only_directory_is_one_line(work, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        error_line(invoke("predict", work / "model", work / "d.csv", "--out", ro / "p.csv"), "cannot create")
        error_line(invoke("train", work / "d.csv", "-m", "kc-rate", "-o", ro / "m"), "cannot create")
    finally:
        ro.chmod(0o700)


def test_missing_parent_directories_are_created(work):
    ok("predict", work / "model", work / "d.csv", "--out", work / "new" / "a" / "p.csv")
    ok("export-graph", work / "model", "--out", work / "new" / "b" / "g.html")
    ok("train", work / "d.csv", "-m", "kc-rate", "-o", work / "new" / "c" / "m")
    assert (work / "new" / "a" / "p.csv").is_file() and (work / "new" / "c" / "m" / "model.json").is_file()


def test_check_output_python_layer(tmp_path):
    assert check_output(tmp_path / "x" / "y.csv", overwrite=False) == tmp_path / "x" / "y.csv"
    assert not (tmp_path / "x").exists()  # checking creates nothing
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(KTError, match="already exists; pass --overwrite"):
        check_output(tmp_path / "f.csv", overwrite=False)
    check_output(tmp_path / "f.csv", overwrite=True)
    with pytest.raises(KTError, match="is a directory"):
        check_output(tmp_path, overwrite=True)
    assert check_output(tmp_path / "x", overwrite=False, kind="dir")
    assert [p.name for p in tmp_path.iterdir()] == ["f.csv"]  # the write probe left nothing


# --- non-text inputs ---------------------------------------------------------------


def _xlsx(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")


def _zip(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("log.csv", CSV)


BINARIES = {
    "book.xlsx": (_xlsx, "Excel .xlsx workbook", "File > Save As > CSV UTF-8"),
    "book.csv": (_xlsx, "Excel .xlsx workbook", "File > Save As > CSV UTF-8"),  # the name does not matter
    "old.xls": (lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64)), "legacy Excel .xls", "File > Save As"),
    "log.zip": (_zip, "zip archive", "unzip it and give log.csv"),
    "chart.png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)), "PNG image", "export it as CSV"),
    "photo.jpg": (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64)), "JPEG image", "export it as CSV"),
    "anim.gif": (lambda p: p.write_bytes(b"GIF89a" + bytes(64)), "GIF image", "export it as CSV"),
    "paper.pdf": (lambda p: p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "PDF document", "export it as CSV"),
    "blob.csv": (lambda p: p.write_bytes(bytes(range(256)) * 4), "binary data", "export it as CSV"),
    "img.csv.gz": (lambda p: p.write_bytes(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(64))), "gzip holding PNG image", "gunzip"),
}


@pytest.mark.parametrize("name", list(BINARIES))
def test_non_text_input_is_named_one_line(tmp_path, name):
    make, kind, fix = BINARIES[name]
    p = tmp_path / name
    make(p)
    line = error_line(invoke("data", "inspect", p), f"not a text table ({kind}", fix)
    assert line.startswith(f"error: {p}: ")


def test_non_text_input_through_train_and_convert(tmp_path):
    p = tmp_path / "book.xlsx"
    _xlsx(p)
    error_line(invoke("train", p, "-m", "kc-rate", "-o", tmp_path / "m"), "Excel .xlsx workbook")
    error_line(invoke("data", "convert", p, "--out", tmp_path / "parts", "--partitions", 2), "Excel .xlsx workbook")
    assert not (tmp_path / "m").exists() and not (tmp_path / "parts").exists()


def test_text_gzip_and_parquet_still_load(tmp_path):
    (tmp_path / "ok.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    pl.read_csv(CSV.encode()).write_parquet(tmp_path / "ok.parquet")
    pl.read_csv(CSV.encode()).write_parquet(tmp_path / "parquet-named.csv")  # recognised by PAR1, not the name
    for name in ("ok.csv.gz", "ok.parquet", "parquet-named.csv"):
        assert ok_json("data", "inspect", tmp_path / name, "--json")["rows"] == 6
    assert sniff_input(tmp_path / "parquet-named.csv") == "parquet" and sniff_input(tmp_path / "ok.csv.gz") == "text"


def test_gzip_without_gz_name_and_utf16_get_their_fix(tmp_path):
    (tmp_path / "z.csv").write_bytes(gzip.compress(CSV.encode()))
    error_line(invoke("data", "inspect", tmp_path / "z.csv"), "gzip-compressed", "z.csv.gz")
    (tmp_path / "w.csv").write_bytes(CSV.encode("utf-16"))
    error_line(invoke("data", "inspect", tmp_path / "w.csv"), "UTF-16", "--encoding utf-16")
    assert ok_json("data", "inspect", tmp_path / "w.csv", "--encoding", "utf-16", "--json")["rows"] == 6
    with pytest.raises(DataError, match="not a text table"):
        kt.load(str(_write(tmp_path / "p.png", b"\x89PNG\r\n\x1a\n")))


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


# --- duplicated column names -------------------------------------------------------

DUP = "user_id,correct,skill_id,correct\nu1,1,a,0\nu1,1,b,0\nu2,1,a,0\nu2,1,b,1\n"


def test_duplicate_used_column_is_an_error_naming_both(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text(DUP)
    line = error_line(
        invoke("data", "inspect", p),
        "columns 2 and 4 are both named 'correct'",
        "--map correct=correct (column 2)",
        "--map correct=correct_duplicated_0 (column 4)",
    )
    assert line.startswith(f"error: {p}: ")
    error_line(invoke("train", p, "-m", "kc-rate", "-o", tmp_path / "m"), "both named 'correct'")
    error_line(invoke("data", "convert", p, "--out", tmp_path / "parts", "--partitions", 2), "both named 'correct'")
    with pytest.raises(DataError, match="both named 'correct'"):
        kt.load(str(p))


def test_map_picks_one_of_the_duplicates(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text(DUP)
    first = ok_json("data", "inspect", p, "--map", "correct=correct", "--json")
    second = ok_json("data", "inspect", p, "--map", "correct=correct_duplicated_0", "--json")
    assert first["correct_rate"] == 1.0 and second["correct_rate"] == 0.25
    res = invoke("data", "inspect", p, "--map", "correct=correct_duplicated_0")
    assert res.exit_code == 0 and "reads column 4" in res.stderr


def test_unused_duplicate_columns_are_harmless(tmp_path):
    p = tmp_path / "extra.csv"
    p.write_text("user_id,skill_id,correct,note,note\nu1,a,1,x,y\nu1,b,0,x,y\nu2,a,1,x,y\nu2,b,1,x,y\n")
    assert ok_json("data", "inspect", p, "--json")["rows"] == 4

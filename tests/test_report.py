"""`kt report`: a self-contained HTML page with inline SVG plots."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.screenshots import keep_screenshot

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "datasets" / "assist2009_sample"
VOID = {"meta", "br", "hr", "img", "input", "link"}


class Page(HTMLParser):
    """Tags, attributes and nesting of an HTML document."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.errors: list[str] = []
        self.plots: list[dict] = []  # per <svg>: data-plot and counts of drawn elements
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "svg":
            self.plots.append({"kind": a.get("data-plot"), "polyline": 0, "circle": 0})
        elif tag in ("polyline", "circle") and self.plots and "svg" in self.stack:
            self.plots[-1][tag] += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("polyline", "circle", "rect", "line") and self.plots and "svg" in self.stack:
            self.plots[-1][tag] = self.plots[-1].get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    return p


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A model dir with a training history, and evaluate/cv/compare JSON files."""
    from typer.testing import CliRunner

    from kt.cli import app

    d = tmp_path_factory.mktemp("report")

    def run(*args):
        r = CliRunner().invoke(app, [str(a) for a in args])
        assert r.exit_code == 0, r.output
        return r.output

    run("train", SAMPLE / "train.csv", "-m", "kc-rate", "-o", d / "m")
    # kc-rate trains in one pass; give the directory a per-epoch history like a gradient model's
    hist = [{"epoch": e, "train_loss": 0.7 - 0.03 * e, "valid_auc": 0.6 + 0.02 * e, "seconds": 1.0} for e in range(1, 6)]
    (d / "m" / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hist))
    run("evaluate", d / "m", SAMPLE / "test.csv", "--json", d / "next.json")
    run(
        "evaluate",
        d / "m",
        SAMPLE / "test.csv",
        "--protocol",
        "multistep",
        "--history",
        "5",
        "--horizon",
        "5",
        "--json",
        d / "ms.json",
    )
    run("cv", SAMPLE / "train.csv", "-m", "majority", "--folds", "3", "--json", d / "cv.json")
    run("compare", SAMPLE / "train.csv", "--models", "kc-rate,majority", "--json", d / "cmp.json")
    return d


@pytest.fixture(scope="module")
def report(inputs):
    from typer.testing import CliRunner

    from kt.cli import app

    out = inputs / "report.html"
    r = CliRunner().invoke(
        app,
        [
            "report",
            str(inputs / "m"),
            str(inputs / "next.json"),
            str(inputs / "ms.json"),
            str(inputs / "cv.json"),
            str(inputs / "cmp.json"),
            "--out",
            str(out),
            "--title",
            "Sample <report>",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output
    return out


def test_report_is_self_contained(report):
    html = report.read_text()
    low = html.lower()
    assert "http://" not in low and "https://" not in low
    for banned in ("<script", "<link", "<img", "<iframe", "@import", " src="):
        assert banned not in low, banned
    # the only url() references are the page's own clip paths
    assert all(ref.startswith("#clip") for ref in [seg.split(")")[0] for seg in low.split("url(")[1:]])


def test_report_plots_are_present_and_drawn(report):
    page = parse(report.read_text())
    assert not page.errors and page.stack == []
    kinds = [p["kind"] for p in page.plots]
    for kind in ("roc", "reliability", "horizon-accuracy", "horizon-auc", "learning-curve", "training-loss", "training-auc"):
        assert kind in kinds, kind
    for p in page.plots:
        assert p["polyline"] + p["circle"] > 0, p
    roc = next(p for p in page.plots if p["kind"] == "roc")
    assert roc["polyline"] >= 4  # evaluate, 3 cv folds, 2 compared models


def test_report_table_lists_every_result(report):
    page = parse(report.read_text())
    text = " ".join(page.text)
    assert "Sample <report>" in text  # escaped in the source, shown as text
    assert "&lt;report&gt;" in report.read_text()
    for label in ("kc-rate (next)", "kc-rate (ms)", "majority fold 0", "mean ± sd", "majority"):
        assert label in text, label
    assert "Training" in text and "kc-rate (m)" in text


def test_report_of_a_model_dir_only(inputs, tmp_path, cli):
    r = cli("report", inputs / "m", "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    page = parse((tmp_path / "r.html").read_text())
    assert {p["kind"] for p in page.plots} == {"training-loss", "training-auc"}


def test_report_errors(cli, tmp_path, inputs):
    r = cli("report", tmp_path / "missing.json")
    assert r.exit_code == 1 and "no such file" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = cli("report", bad)
    assert r.exit_code == 1 and "cannot read JSON" in r.output
    other = tmp_path / "other.json"
    other.write_text('{"rows": 3}')
    r = cli("report", other)
    assert r.exit_code == 1 and "not a kt" in r.output
    r = cli("report", tmp_path)
    assert r.exit_code == 1 and "not a kt model directory" in r.output


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium/chromium-browser/google-chrome on PATH")
    flags = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)  # the DOM as the browser built it
    kinds = {p["kind"] for p in page.plots}
    assert {"roc", "reliability", "horizon-accuracy", "learning-curve", "training-loss"} <= kinds
    assert sum(p["polyline"] for p in page.plots) > 20
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [*flags, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a page of plots, not a blank one
    keep_screenshot(shot, "report.png")

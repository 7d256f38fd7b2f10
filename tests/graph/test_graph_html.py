"""The self-contained HTML graph view: embedded data, no network references,
valid inline script (node --check when Node.js is present), and a slow
check in headless Chromium (skipped when no Chromium is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from tests.screenshots import keep_screenshot

from kt.graph.export import render, view
from kt.graph.graph import PrerequisiteGraph

KCS = ["fractions", "decimals", "percent </script> <b>", 'ratio "x"', "algebra", "lonely"]


def _graph() -> PrerequisiteGraph:
    p = np.zeros((6, 6))
    p[0, 1], p[1, 2], p[0, 3], p[3, 4], p[2, 4], p[4, 0] = 0.9, 0.8, 0.7, 0.95, 0.6, 0.55  # 4 -> 0 closes a cycle
    return PrerequisiteGraph(KCS, p, "learned", support=np.full((6, 6), 3.0), difficulty=[0.2, 0.3, 0.4, 0.5, 0.6, 0.1])


class _Page(HTMLParser):
    """Collects tags, their attributes, and the text of each script."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


@pytest.fixture(scope="module")
def page() -> str:
    return render(view(_graph(), 0.5), "html")


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    p.close()
    return p


def test_html_embeds_the_graph(page):
    p = _parse(page)
    data_blocks = [t for a, t in p.scripts if a.get("id") == "kt-graph-data"]
    assert len(data_blocks) == 1 and p.scripts[0][0].get("type") == "application/json"
    d = json.loads(data_blocks[0])
    assert d["kcs"] == KCS and d["method"] == "learned" and d["threshold"] == 0.5
    assert len(d["edges"]) == 6
    edges = {(KCS[u], KCS[v]): (p_, s, c) for u, v, p_, s, c in d["edges"]}
    assert edges[("algebra", "fractions")] == (0.55, 3.0, 1)  # the cycle-closing edge is flagged
    assert edges[("fractions", "decimals")] == (0.9, 3.0, 0)
    assert d["cycles"] == [KCS[:5]] and d["dropped"] == [["algebra", "fractions", 0.55]]
    assert [KCS[i] for i in d["order"]][0] == "lonely"  # ready at once and the easiest
    assert d["lone"] == [KCS.index("lonely")]
    assert len(d["x"]) == len(d["y"]) == 6
    # prerequisites are drawn left of their dependents
    assert all(d["x"][u] < d["x"][v] for u, v, _, _, c in d["edges"] if not c)


def test_html_is_self_contained(page):
    assert not re.search(r"https?://", page, re.I)
    assert not re.search(r"\b(src|href)\s*=", page, re.I)  # no script/link/img fetched from anywhere
    assert "@import" not in page and "url(http" not in page
    p = _parse(page)
    assert {t for t, _ in p.tags} >= {"svg", "input", "select", "script", "style"}
    assert any(t == "input" and a.get("type") == "range" for t, a in p.tags)  # threshold filter
    assert page.count("</script>") == 2  # a KC name with </script> cannot end the data block


def test_html_script_parses():
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    p = _parse(render(view(_graph(), 0.5), "html"))
    code = next(t for a, t in p.scripts if not a)
    res = subprocess.run([node, "--check", "-"], input=code, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_renders_in_headless_chromium(tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium is not installed")
    f = tmp_path / "g.html"
    f.write_text(render(view(_graph(), 0.5), "html"), encoding="utf-8")

    def dom(fragment: str) -> str:
        res = subprocess.run(
            [
                exe,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--virtual-time-budget=3000",
                "--dump-dom",
                f.as_uri() + fragment,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    plain = dom("")
    # count drawn elements, not the markup templates inside the page's script
    assert len(re.findall(r'<g class="node[^"]*" data-i="\d+"', plain)) == 6
    assert len(re.findall(r'<path class="edge[^"]*" data-e="\d+"', plain)) == 6
    assert "6 of 6 edges shown" in plain and "fractions" in plain
    # the fragment sets a threshold and selects a KC: its prerequisites and dependents are marked
    sel = dom("#t=0.75&kc=decimals")
    assert "3 of 6 edges shown" in sel
    assert re.search(r'class="node sel"[^>]*data-i="1"|data-i="1"[^>]*class="node sel"', sel)
    assert re.search(r'class="node pre"[^>]*data-i="0"|data-i="0"[^>]*class="node pre"', sel)
    assert re.search(r'class="node dep"[^>]*data-i="2"|data-i="2"[^>]*class="node dep"', sel)
    assert 'id="sel-name"' in sel
    # The picture the README shows: a mastery graph with bootstrap stability, learnt from a simulated curriculum.
    from kt.api import from_frame
    from kt.data.synthetic_gated import simulate_gated
    from kt.graph.bootstrap import bootstrap_graph

    frame, _ = simulate_gated(1000, 8, 100, seed=3)
    g = bootstrap_graph(from_frame(frame, source="simulated"), "mastery", n=8, seed=0)
    demo = tmp_path / "demo.html"
    demo.write_text(render(view(g, 0.5), "html"), encoding="utf-8")
    shot = tmp_path / "graph.png"
    res = subprocess.run(
        [
            exe,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--virtual-time-budget=3000",
            "--window-size=1280,720",
            f"--screenshot={shot}",
            demo.as_uri() + "#kc=kc0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    keep_screenshot(shot, "graph-viewer.png")

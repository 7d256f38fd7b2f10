"""The documentation site's examples run (issue 19 item 5), the Typer way.

Every code block on a page under ``docs/`` is a ``--8<-- "FILE"`` include of a
file in ``docs/examples/`` (checked below, so an untested example cannot creep
in), and every such file is exercised here, in a scratch directory holding the
bundled ``datasets/`` and the example data files:

* ``*.sh``: each ``kt ...`` command runs through Typer's ``CliRunner`` against
  ``kt.cli`` (exit code 0, every ``--out`` written); a ``FILE.out`` beside a
  ``FILE.sh`` is the output its last command must print (exit 1 for an
  ``error:`` line).
* ``*.py``: run as a script (``runpy``).
* ``*.txt``: command synopses; every ``--option`` they name must be an option
  of that command.
* Examples that need what a test cannot have are listed in the tables below
  with what is checked instead: the README's own examples (executed by
  ``tests/test_readme.py``, so checked here to be verbatim copies), commands
  that need fake devices or two JAX processes (run as shell scripts, slow
  tests), cluster commands (options checked), and ``pip``/``pytest``/``mkdocs``
  lines (the extra they name must exist; CI runs them itself).

No mkdocs is needed to run this file.
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kt.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Files the examples read (shown on the pages too): copied into each scratch directory.
DATA = {"answers.csv", "expert-edges.csv", "dkt.toml"}
# The README's examples, executed there by tests/test_readme.py: here they must be its verbatim copies.
IN_README = {"python_api.py": "## Python API", "graph-recovery.sh": "### Graphs from data alone"}
# Run as shell scripts in a subprocess (they set XLA_FLAGS or start two JAX processes): slow tests.
SHELL = {"devices.sh", "distributed.sh"}
# Need a cluster (two hosts, Slurm): every kt command's options are checked, nothing is run.
CLUSTER = {"two-hosts.sh", "slurm.sh"}
# Commands that are not kt's: installation and the test suite (CI runs them itself). Each maps to
# nothing to run; `pip install ".[X]"` must name an extra that pyproject.toml defines.
SETUP = re.compile(r"""^(pip install (\.|"\.\[(?P<extra>[a-z]+)\]")|python -m pytest( -q| -m slow)?|mkdocs build --strict)$""")
# The page marker for a block that is output only (not a command or code): none is used yet.
OUTPUT_ONLY = "<!-- output-only -->"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[^\n]*\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S)
INCLUDE = re.compile(r'^--8<-- "(?P<name>[^"]+)"$')


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if EXAMPLES not in p.parents)


def _included() -> dict[str, list[str]]:
    """Example file -> the pages that include it."""
    seen: dict[str, list[str]] = {}
    for page in _pages():
        for m in re.finditer(r'--8<-- "([^"]+)"', page.read_text(encoding="utf-8")):
            seen.setdefault(m.group(1), []).append(page.name)
    return seen


def test_pages_show_only_example_files():
    """Every fenced block is one include of an existing file under docs/examples/ (or marked output-only)."""
    bad = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            before = text[: m.start()].rstrip().splitlines()
            if before and before[-1].strip() == OUTPUT_ONLY:
                continue
            body = [ln.strip() for ln in m.group("body").splitlines() if ln.strip()]
            inc = INCLUDE.match(body[0]) if len(body) == 1 else None
            if inc is None:
                bad.append(
                    f"{page.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: a code block not from docs/examples"
                )
            elif not (EXAMPLES / inc.group("name")).is_file():
                bad.append(f"{page.relative_to(ROOT)}: includes missing docs/examples/{inc.group('name')}")
    assert not bad, "\n".join(bad)
    assert len(_included()) >= 20


def test_every_example_file_is_shown_and_tested():
    files = {p.name for p in EXAMPLES.iterdir() if p.is_file()}
    shown = set(_included())
    outputs = {f for f in files if f.endswith(".out")}
    assert files - shown == set(), "example files no page includes"
    assert {f[:-4] + ".sh" for f in outputs} <= files, "a .out file without its .sh"
    handled = DATA | set(IN_README) | SHELL | CLUSTER | outputs | set(EXAMPLE_FILES)
    assert files - handled == set(), "example files no test runs (add them to a table in tests/test_docs.py)"


# --- running the examples -------------------------------------------------------------------------------

EXAMPLE_FILES = sorted(
    p.name
    for p in EXAMPLES.iterdir()
    if p.suffix in (".sh", ".py", ".txt") and p.name not in set(IN_README) | SHELL | CLUSTER | DATA
)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    (tmp_path / "datasets").symlink_to(ROOT / "datasets", target_is_directory=True)
    for name in DATA:
        shutil.copy(EXAMPLES / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _commands(text: str) -> list[list[str]]:
    """The commands of a shell example: one per line (``&&`` separates several), comments dropped."""
    cmds = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            cmds.append(words[:cut])
            words = words[cut + 1 :]
    return cmds


def _setup_line(words: list[str]) -> None:
    line = shlex.join(words).replace("'", '"')
    m = SETUP.match(line)
    assert m, f"not a kt command and not a known setup command: {line}"
    if m.group("extra"):
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert m.group("extra") in extras, f"{line}: pyproject.toml has no extra {m.group('extra')!r}"


def _command(args: list[str]):
    """The (Typer/click) command that ``kt ARGS`` runs, and the groups above it."""
    cmd = typer.main.get_command(app)
    parents = []
    while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
        parents.append(cmd)
        cmd, args = cmd.commands[args[0]], args[1:]
    return cmd, parents


def _check_options(line: str) -> None:
    """Every ``--option`` in a synopsis or command line is an option of the command it names."""
    words = line.split()
    assert "kt" in words, line
    args = [w for w in words[words.index("kt") + 1 :] if not w.startswith("-")]
    cmd, parents = _command(args)
    assert parents, f"{line}: no such kt command"
    names = {o for c in (cmd, *parents) for p in c.params for o in (*p.opts, *p.secondary_opts)}
    for opt in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", " ".join(words[words.index("kt") :])):
        assert opt in names, f"{line}: {opt} is not an option of kt {cmd.name}"


def _run_shell_example(path: Path) -> None:
    expected = path.with_suffix(".out")
    cmds = _commands(path.read_text(encoding="utf-8"))
    runner = CliRunner()
    for i, words in enumerate(cmds):
        if words[0] != "kt":
            _setup_line(words)
            continue
        res = runner.invoke(app, words[1:])
        line = shlex.join(words)
        if i == len(cmds) - 1 and expected.exists():
            want = expected.read_text(encoding="utf-8").strip()
            assert res.exit_code == (1 if want.startswith("error:") else 0), f"{line}: {res.output}"
            assert want in res.output, f"{line}: expected {want!r} in {res.output!r}"
            continue
        assert res.exit_code == 0, f"{line}: exit {res.exit_code}\n{res.output}"
        for flag in ("--out", "-o"):
            if flag in words:
                out = Path(words[words.index(flag) + 1])
                assert out.exists(), f"{line}: wrote no {out}"


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_example_runs(name, scratch):
    path = EXAMPLES / name
    if path.suffix == ".py":
        runpy.run_path(str(path), run_name="__main__")
    elif path.suffix == ".txt":
        text = re.sub(r"\n\s+", " ", path.read_text(encoding="utf-8"))  # continuation lines join their command
        for line in text.splitlines():
            _check_options(line)
    else:
        _run_shell_example(path)


@pytest.mark.parametrize("name", sorted(IN_README))
def test_readme_examples_are_the_docs_examples(name):
    """The README shows these examples verbatim; tests/test_readme.py executes them there."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    after = README[README.index(IN_README[name]) :]
    blocks = re.findall(r"```(?:python|bash)\n(.*?)```", after, re.S)
    assert text in blocks, f"README: no block after {IN_README[name]!r} equal to docs/examples/{name}"


def test_readme_quick_start_is_the_docs_quick_start():
    text = (EXAMPLES / "quickstart.sh").read_text(encoding="utf-8")
    assert f"```bash\n{text}```" in README


@pytest.mark.parametrize("name", sorted(CLUSTER))
def test_cluster_commands_name_real_options(name):
    for words in _commands((EXAMPLES / name).read_text(encoding="utf-8")):
        _check_options(shlex.join(words))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHELL))
def test_multi_device_examples_run(name, scratch):
    """Fake CPU devices and two JAX processes on this machine, as the scaling page shows them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KT_", "SLURM_", "OMPI_", "XLA_", "JAX_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    res = subprocess.run(["bash", "-e", str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (scratch / "runs" / "dkt" / "model.json").is_file()
    if name == "distributed.sh":  # `wait` returns 0 whatever the jobs did: process 1 must say it finished
        assert "process 1: training done" in res.stdout + res.stderr, res.stdout + res.stderr

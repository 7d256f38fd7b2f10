"""Layers point one way: data -> metrics -> train -> models -> eval/graph -> API -> CLI.

Every ``import`` of a kt module (at the top of a file or inside a function) is
checked against the layer order, so an upward one fails this test instead of
creeping in.
"""

from __future__ import annotations

import ast
from pathlib import Path

KT = Path(__file__).resolve().parents[1] / "kt"
LAYER = {"errors": 0, "atomic": 0, "data": 1, "metrics": 2, "train": 3, "models": 4, "eval": 5, "graph": 5, "report": 5,
         "api": 6, "cli": 7}  # fmt: skip
# Upward imports allowed by name: none are left, and nothing may be added here.
KNOWN: set[tuple[str, str]] = set()


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts == ["kt"]:
        return None  # `from kt import __version__`: the version, not the API
    return LAYER.get(parts[1])


def _imports():
    for f in sorted(KT.rglob("*.py")):
        rel = f.relative_to(KT.parent).with_suffix("")
        mod = ".".join(p for p in rel.parts if p != "__init__")
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "kt":
                yield mod, node.module
            elif isinstance(node, ast.Import):
                yield from ((mod, a.name) for a in node.names if a.name.split(".")[0] == "kt")


def test_imports_point_down_the_layers():
    upward = set()
    for src, dst in _imports():
        a, b = _layer(src), _layer(dst)
        if a is not None and b is not None and b > a:
            upward.add((src, dst))
    assert upward - KNOWN == set(), f"new upward imports: {sorted(upward - KNOWN)}"
    assert KNOWN - upward == set(), f"fixed, remove from KNOWN: {sorted(KNOWN - upward)}"


def test_every_top_level_part_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in KT.iterdir() if p.name != "__pycache__" and not p.name.startswith(".")}
    assert tops - {"__init__", "__main__"} <= set(LAYER), sorted(tops - set(LAYER))

"""Read a true or expert prerequisite graph for ``kt graph-eval``.

Accepted files:

* **JSON** (what ``kt simulate --truth`` writes): ``kcs`` (KC names), and
  ``edges`` (``[source, target]`` pairs or ``{"source", "target"}``
  objects) and/or ``adjacency`` (alias ``A``; K x K, row = prerequisite
  source, column = dependent target, non-zero = edge; needs ``kcs``).
  Endpoints are KC names; numbers are read as names (``3`` is KC "3").
* **Edge-list CSV/TSV** with a header: a source column (``source``,
  ``src``, ``from``, ``prerequisite``, ``prereq``, ``parent``, ``u``) and a
  target column (``target``, ``tgt``, ``dst``, ``to``, ``dependent``,
  ``postrequisite``, ``child``, ``kc``, ``v``). Case and spaces are ignored.
* **Node-table CSV** (the Junyi exercise table): a KC column (``name``,
  ``kc``, ``skill``, ``skill_id``, ``exercise``, ``node``, ``id``) and a
  prerequisite-list column (``prerequisites``, ``prereqs``,
  ``prerequisite_list``, ``requires``) holding comma/semicolon-separated KC
  names; each listed prerequisite p of KC n is the edge p -> n.

Self-loops are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kt.errors import DataError

SOURCE_ALIASES = ("source", "src", "from", "prerequisite", "prereq", "parent", "u")
TARGET_ALIASES = ("target", "tgt", "dst", "to", "dependent", "postrequisite", "child", "kc", "v")
NODE_ALIASES = ("name", "kc", "skill", "skill_id", "exercise", "node", "id")
LIST_ALIASES = ("prerequisites", "prereqs", "prerequisite_list", "requires")
_FIX = "give a truth JSON (kcs + edges/adjacency), an edge-list CSV (source,target) or a node table (name,prerequisites)"


@dataclass(frozen=True)
class Truth:
    """A known prerequisite graph.

    Attributes:
        edges: (source, target) KC-name pairs, no self-loops, no repeats.
        kcs: every KC the truth covers (None when only edges are known:
            an edge list says nothing about KCs without edges).
        source: the file read.
        layout: ``json``, ``edge-list`` or ``node-table`` (with the columns used).
    """

    edges: list[tuple[str, str]]
    kcs: list[str] | None
    source: str
    layout: str


def read_truth(path: str | Path) -> Truth:
    """Read a truth file (see the module docstring for the layouts).

    Args:
        path: JSON or CSV/TSV file.

    Returns:
        The :class:`Truth`.

    Raises:
        DataError: unreadable file or unrecognised layout (one line).
    """
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise DataError(src, "no such truth file" if not p.exists() else "is not a file", _FIX)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(src, "not UTF-8 text", "convert it to UTF-8 (iconv -f latin1 -t utf-8)") from None
    except OSError as exc:
        raise DataError(src, f"cannot read ({exc.strerror})", _FIX) from None
    if not text.strip():
        raise DataError(src, "empty file", _FIX)
    if p.suffix.lower() == ".json" or text.lstrip()[:1] in "{[":
        return _from_json(text, src)
    return _from_table(text, src, "\t" if p.suffix.lower() == ".tsv" or "\t" in text.split("\n", 1)[0] else ",")


def _from_json(text: str, src: str) -> Truth:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(src, f"not valid JSON ({exc.msg}, line {exc.lineno})", _FIX) from None
    if not isinstance(d, dict):
        raise DataError(src, "the JSON is not an object", _FIX)
    kcs = d.get("kcs")
    adj = d.get("adjacency", d.get("A"))
    if kcs is not None and not (isinstance(kcs, list) and all(isinstance(k, (str, int)) for k in kcs)):
        raise DataError(src, "'kcs' must be a list of KC names", _FIX)
    kcs = None if kcs is None else [str(k) for k in kcs]
    if kcs is not None and len(set(kcs)) != len(kcs):
        raise DataError(src, "'kcs' repeats a KC name", "list every KC once")
    edges: list[tuple[str, str]] = []
    if adj is not None:
        if kcs is None:
            raise DataError(src, "'adjacency' without 'kcs'", "add 'kcs', the KC names of its rows and columns")
        if not (isinstance(adj, list) and len(adj) == len(kcs) and all(isinstance(r, list) and len(r) == len(kcs) for r in adj)):
            raise DataError(src, f"'adjacency' must be a {len(kcs)} x {len(kcs)} list of lists (one row per KC in 'kcs')", _FIX)
        try:
            edges = [(kcs[i], kcs[j]) for i, r in enumerate(adj) for j, x in enumerate(r) if i != j and float(x or 0) != 0]
        except (TypeError, ValueError):
            raise DataError(src, "'adjacency' holds a value that is not a number", "use 0/1") from None
    if d.get("edges") is not None:
        listed = _json_edges(d["edges"], src)
        if kcs is not None:
            unknown = sorted({k for e in listed for k in e} - set(kcs))
            if unknown:
                raise DataError(src, f"edge endpoint {unknown[0]!r} is not in 'kcs'", "list every KC in 'kcs'")
        if adj is not None and set(listed) != set(edges):
            raise DataError(src, "'edges' and 'adjacency' disagree", "give one of them, or make them match")
        edges = listed
    elif adj is None:
        raise DataError(src, "no 'edges' or 'adjacency' key", _FIX)
    return Truth(_unique(edges), kcs, src, "json")


def _json_edges(raw, src: str) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise DataError(src, "'edges' must be a list of [source, target] pairs", _FIX)
    out = []
    for n, e in enumerate(raw):
        if isinstance(e, dict) and "source" in e and "target" in e:
            s, t = e["source"], e["target"]
        elif isinstance(e, list) and len(e) >= 2:
            s, t = e[0], e[1]
        else:
            raise DataError(src, f"edge {n} ({json.dumps(e)[:40]}) is not a [source, target] pair", _FIX)
        if not all(isinstance(x, (str, int)) for x in (s, t)):
            raise DataError(src, f"edge {n}: endpoints must be KC names", _FIX)
        if str(s) != str(t):
            out.append((str(s), str(t)))
    return out


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").lower())


def _from_table(text: str, src: str, sep: str) -> Truth:
    try:
        f = pl.read_csv(text.encode("utf-8"), separator=sep, infer_schema_length=0, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise DataError(src, f"cannot parse as a table ({' '.join(str(exc).split())[:120]})", _FIX) from None
    cols = {_norm(c): c for c in f.columns}

    def pick(aliases, avoid=()):
        return next((cols[a] for a in aliases if a in cols and cols[a] not in avoid), None)

    s_col, t_col = pick(SOURCE_ALIASES), None
    if s_col is not None:
        t_col = pick(TARGET_ALIASES, avoid=(s_col,))
    lst = pick(LIST_ALIASES)
    if s_col is not None and t_col is not None:
        sub = f.select(pl.col(s_col).str.strip_chars().alias("s"), pl.col(t_col).str.strip_chars().alias("t")).drop_nulls()
        sub = sub.filter((pl.col("s") != "") & (pl.col("t") != ""))
        edges = [(s, t) for s, t in sub.iter_rows() if s != t]
        return Truth(_unique(edges), None, src, f"edge-list ({s_col} -> {t_col})")
    node = pick(NODE_ALIASES, avoid=(lst,))
    if lst is not None and node is not None:
        names = f[node].str.strip_chars()
        edges = []
        for n, cell in zip(names.to_list(), f[lst].to_list()):
            if not n or not cell:
                continue
            edges += [(p.strip(), n) for p in re.split(r"[,;]", cell) if p.strip() and p.strip() != n]
        kcs = list(dict.fromkeys([n for n in names.to_list() if n] + [k for e in edges for k in e]))
        return Truth(_unique(edges), kcs, src, f"node-table ({lst} -> {node})")
    raise DataError(src, f"no source/target or name/prerequisites columns (columns: {', '.join(f.columns)})", _FIX)


def _unique(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(edges))

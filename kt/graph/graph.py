"""The prerequisite graph every model can hand to a curriculum designer."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import Float

from kt.errors import KTError

GRAPH_FORMAT = 1
METHODS = ("learned", "conditional-influence", "causal-support")


@dataclass(frozen=True, eq=False)
class PrerequisiteGraph:
    """Directed KC graph; ``prob[i, k]`` = strength of "KC i is a prerequisite of KC k".

    Attributes:
        kcs: KC names (the model's vocabulary order).
        prob: edge probabilities in [0, 1], zero diagonal. 0.5 is each
            method's neutral point, so one threshold means the same for all.
        method: how the graph was obtained: ``learned`` (PSI-KT),
            ``conditional-influence`` (DKT/CAKT, Piech et al. 2015) or
            ``causal-support`` (transition statistics of the training data).
        confidence: optional per-edge confidence in [0, 1] (K x K).
        support: optional per-edge evidence counts (K x K), e.g. the number
            of consecutive-attempt transitions i -> k.
        score: optional raw method score (K x K) before the map to [0, 1]:
            Piech's normalised influence, or the causal-support log Bayes factor.
        difficulty: optional per-KC difficulty, 1 - mean correctness in the
            training data (NaN where unseen); breaks ties in the learning order.
        meta: free-form provenance (transform, counts, notes).
    """

    kcs: list[str]
    prob: Float[np.ndarray, "K K"]
    method: str
    confidence: Float[np.ndarray, "K K"] | None = None
    support: Float[np.ndarray, "K K"] | None = None
    score: Float[np.ndarray, "K K"] | None = None
    difficulty: Float[np.ndarray, " K"] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        kcs = [str(k) for k in self.kcs]
        k = len(kcs)
        if len(set(kcs)) != k:
            raise ValueError("PrerequisiteGraph: KC names must be unique")
        prob = np.array(self.prob, dtype=np.float64)
        if prob.shape != (k, k):
            raise ValueError(f"PrerequisiteGraph: prob has shape {prob.shape}, expected ({k}, {k})")
        if not np.all(np.isfinite(prob)) or prob.min(initial=0) < 0 or prob.max(initial=0) > 1:
            raise ValueError("PrerequisiteGraph: prob must be finite and in [0, 1]")
        np.fill_diagonal(prob, 0.0)
        object.__setattr__(self, "kcs", kcs)
        object.__setattr__(self, "prob", prob)
        for name in ("confidence", "support", "score"):
            v = getattr(self, name)
            if v is not None:
                v = np.array(v, dtype=np.float64)
                if v.shape != (k, k):
                    raise ValueError(f"PrerequisiteGraph: {name} has shape {v.shape}, expected ({k}, {k})")
                object.__setattr__(self, name, v)
        if self.difficulty is not None:
            d = np.array(self.difficulty, dtype=np.float64)
            if d.shape != (k,):
                raise ValueError(f"PrerequisiteGraph: difficulty has shape {d.shape}, expected ({k},)")
            object.__setattr__(self, "difficulty", d)

    @property
    def n_kcs(self) -> int:
        """Number of KCs."""
        return len(self.kcs)

    def edge_index(self, threshold: float = 0.5, top_k: int | None = None) -> list[tuple[int, int, float]]:
        """Edges as ``(source, target, prob)`` indices, strongest first.

        Args:
            threshold: keep edges with ``prob >= threshold`` (and > 0).
            top_k: then keep at most this many of the strongest.

        Returns:
            Edges sorted by decreasing probability, ties by KC names.
        """
        i, k = np.nonzero((self.prob >= threshold) & (self.prob > 0))
        rows = [(int(a), int(b), float(self.prob[a, b])) for a, b in zip(i, k) if a != b]
        rows.sort(key=lambda r: (-r[2], self.kcs[r[0]], self.kcs[r[1]]))
        return rows if top_k is None else rows[:top_k]

    def edges(self, threshold: float = 0.5, top_k: int | None = None) -> list[tuple[str, str, float]]:
        """Edges as ``(source name, target name, prob)``, strongest first.

        Args:
            threshold: keep edges with ``prob >= threshold`` (and > 0).
            top_k: then keep at most this many of the strongest.

        Returns:
            Named edges sorted by decreasing probability.
        """
        return [(self.kcs[a], self.kcs[b], p) for a, b, p in self.edge_index(threshold, top_k)]

    def to_dict(self) -> dict:
        """Everything needed to rebuild the graph (the ``graph.json`` layout).

        Returns:
            JSON-ready dict: ``kt_graph`` (format version), ``method``,
            ``kcs``, the full ``prob`` matrix and the optional fields.
        """
        d = {"kt_graph": GRAPH_FORMAT, "method": self.method, "kcs": list(self.kcs), "prob": _matrix(self.prob)}
        for name in ("confidence", "support", "score"):
            v = getattr(self, name)
            if v is not None:
                d[name] = _matrix(v)
        if self.difficulty is not None:
            d["difficulty"] = _vector(self.difficulty)
        if self.meta:
            d["meta"] = self.meta
        return d

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (NaN written as null)."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> "PrerequisiteGraph":
        """Rebuild a graph from :meth:`to_dict` output or an exported JSON.

        An exported file without the ``prob`` matrix is read from its
        ``edges`` list; pairs not listed get probability 0.

        Args:
            d: parsed JSON.
            source: file name for error messages.

        Returns:
            The graph.

        Raises:
            KTError: the dict is not a kt graph.
        """
        fix = "give a graph.json from a model directory or a `kt export-graph --format json` file"
        if not isinstance(d, dict) or not isinstance(d.get("kcs"), list):
            raise KTError(f"{source}: not a kt graph JSON (no 'kcs' list); {fix}")
        version = d.get("kt_graph", GRAPH_FORMAT)
        if not isinstance(version, int) or version > GRAPH_FORMAT:
            raise KTError(f"{source}: graph format {version!r} is newer than this kt reads ({GRAPH_FORMAT}); upgrade kt")
        kcs = [str(k) for k in d["kcs"]]
        try:
            if d.get("prob") is not None:
                prob = _array(d["prob"])
            elif isinstance(d.get("edges"), list):
                prob = _from_edges(kcs, d["edges"])
            else:
                raise ValueError("neither a 'prob' matrix nor an 'edges' list")
            opt = {n: _array(d[n]) for n in ("confidence", "support", "score") if d.get(n) is not None}
            if d.get("difficulty") is not None:
                opt["difficulty"] = _array(d["difficulty"])
            return cls(kcs, prob, str(d.get("method", "unknown")), meta=dict(d.get("meta") or {}), **opt)
        except (ValueError, TypeError, KeyError) as exc:
            raise KTError(f"{source}: invalid kt graph ({_one_line(exc)}); {fix}") from None


def read_graph(path: str | Path) -> PrerequisiteGraph:
    """Read a graph JSON file, or ``graph.json`` inside a model directory.

    Args:
        path: a JSON file written by kt, or a saved model directory.

    Returns:
        The graph.

    Raises:
        KTError: missing or unreadable file, or not a kt graph.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "graph.json"
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KTError(f"{p}: cannot read graph ({_one_line(exc.strerror if isinstance(exc, OSError) else exc)}); "
                      "give a graph.json or a `kt export-graph --format json` file") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KTError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno}); re-export the graph") from None
    return PrerequisiteGraph.from_dict(d, str(p))


def dumps(obj: dict) -> str:
    """Strict JSON (NaN/inf as null), one line per top-level key and per
    element of a list of lists or objects (matrix rows, edges): readable,
    and compact enough for graphs of a thousand KCs.

    Args:
        obj: a JSON-ready dict.

    Returns:
        The JSON text.
    """

    def one(v) -> str:
        return json.dumps(v, ensure_ascii=False, allow_nan=False)

    parts = []
    for key, v in _clean(obj).items():
        if isinstance(v, list) and v and all(isinstance(x, (list, dict)) for x in v):
            rows = ",\n  ".join(one(x) for x in v)
            parts.append(f" {one(key)}: [\n  {rows}\n ]")
        else:
            parts.append(f" {one(key)}: {one(v)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _clean(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.generic):
        return _clean(o.item())
    return o


def _vector(v: np.ndarray) -> list:
    # Six significant decimals keep files small; NaN becomes null.
    return [None if not math.isfinite(x) else (int(x) if float(x).is_integer() else round(float(x), 6)) for x in v]


def _matrix(m: np.ndarray) -> list:
    return [_vector(row) for row in m]


def _array(x) -> np.ndarray:
    a = np.array(x, dtype=object)
    a[a == None] = np.nan  # noqa: E711 - element-wise null test
    return a.astype(np.float64)


def _from_edges(kcs: list[str], edges: list) -> np.ndarray:
    pos = {k: i for i, k in enumerate(kcs)}
    prob = np.zeros((len(kcs), len(kcs)))
    for e in edges:
        if isinstance(e, dict):
            s, t, p = e.get("source"), e.get("target"), e.get("prob", 1.0)
        else:
            s, t, p = (list(e) + [1.0])[:3]
        if str(s) not in pos or str(t) not in pos:
            raise ValueError(f"edge {s!r} -> {t!r} names a KC missing from 'kcs'")
        prob[pos[str(s)], pos[str(t)]] = float(p)
    return prob


def _one_line(msg) -> str:
    return " ".join(str(msg).split())

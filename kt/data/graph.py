"""The prerequisite graph every model can hand to a curriculum designer."""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from jaxtyping import Float

from kt.errors import KTError

GRAPH_FORMAT = 2  # newest layout written and read: matrices as typed arrays (see encode_array)
LIST_FORMAT = 1  # matrices as nested lists (what to_dict() gives; still read)
MATRICES = ("confidence", "support", "score", "stability", "strength_lo", "strength_hi")  # optional K x K fields
METHODS = ("learned", "conditional-influence", "causal-support", "mastery", "transition", "gated")


@dataclass(frozen=True, eq=False)
class PrerequisiteGraph:
    """Directed KC graph; ``prob[i, k]`` = strength of "KC i is a prerequisite of KC k".

    Attributes:
        kcs: KC names (the model's vocabulary order).
        prob: edge probabilities in [0, 1], zero diagonal. 0.5 is each
            method's neutral point, so one threshold means the same for all.
        method: how the graph was obtained: ``learned`` (PSI-KT),
            ``conditional-influence`` (DKT/CAKT, Piech et al. 2015),
            ``causal-support`` (transition statistics of the training data),
            ``mastery`` (the mastery-regression structure learner,
            kt.graph.mastery), ``gated`` (the gated-BKT structure learner,
            kt.graph.gated) or ``transition`` (practice-order counts).
        confidence: optional per-edge confidence in [0, 1] (K x K).
        support: optional per-edge evidence counts (K x K), e.g. the number
            of consecutive-attempt transitions i -> k.
        score: optional raw method score (K x K) before the map to [0, 1]:
            Piech's normalised influence, or the causal-support log Bayes factor.
        difficulty: optional per-KC difficulty, 1 - mean correctness in the
            training data (NaN where unseen); breaks ties in the learning order.
        meta: free-form provenance (transform, counts, notes; ``bootstrap``
            describes how stability was measured).
        stability: optional per-edge bootstrap stability in [0, 1] (K x K):
            the share of learner-resampled refits whose graph keeps the edge
            (kt.graph.bootstrap).
        strength_lo, strength_hi: optional 2.5% / 97.5% quantiles of the
            edge probability over the refits (K x K).
    """

    kcs: list[str]
    prob: Float[np.ndarray, "K K"]
    method: str
    confidence: Float[np.ndarray, "K K"] | None = None
    support: Float[np.ndarray, "K K"] | None = None
    score: Float[np.ndarray, "K K"] | None = None
    difficulty: Float[np.ndarray, " K"] | None = None
    meta: dict = field(default_factory=dict)
    stability: Float[np.ndarray, "K K"] | None = None
    strength_lo: Float[np.ndarray, "K K"] | None = None
    strength_hi: Float[np.ndarray, "K K"] | None = None

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
        for name in MATRICES:
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

    def edge_index(
        self, threshold: float = 0.5, top_k: int | None = None, min_stability: float | None = None
    ) -> list[tuple[int, int, float]]:
        """Edges as ``(source, target, prob)`` indices, strongest first.

        Args:
            threshold: keep edges with ``prob >= threshold`` (and > 0).
            top_k: then keep at most this many of the strongest.
            min_stability: first keep only edges with ``stability >=`` this
                (needs the bootstrap's ``stability``).

        Returns:
            Edges sorted by decreasing probability, ties by KC names.

        Raises:
            ValueError: ``min_stability`` given for a graph without stability.
        """
        sel = (self.prob >= threshold) & (self.prob > 0)
        if min_stability is not None:
            if self.stability is None:
                raise ValueError("min_stability needs per-edge stability (a bootstrapped graph)")
            sel &= self.stability >= min_stability
        i, k = np.nonzero(sel)
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

    def to_dict(self, *, compact: bool = False) -> dict:
        """Everything needed to rebuild the graph.

        Args:
            compact: store the arrays as typed arrays (:func:`encode_array`:
                exact float64 values, zlib-compressed, base64; format 2, the
                ``graph.json`` layout). Default: nested lists with six
                decimals and null for NaN (format 1, readable by other tools;
                what ``kt export-graph --format json`` writes).

        Returns:
            JSON-ready dict: ``kt_graph`` (format version), ``method``,
            ``kcs``, the full ``prob`` matrix and the optional fields.
        """
        enc = encode_array if compact else _nested
        d = {
            "kt_graph": GRAPH_FORMAT if compact else LIST_FORMAT,
            "method": self.method,
            "kcs": list(self.kcs),
            "prob": enc(self.prob),
        }
        for name in MATRICES:
            v = getattr(self, name)
            if v is not None:
                d[name] = enc(v)
        if self.difficulty is not None:
            d["difficulty"] = enc(self.difficulty)
        if self.meta:
            d["meta"] = self.meta
        return d

    def to_json(self, *, compact: bool = True) -> str:
        """:meth:`to_dict` as JSON text; by default compact (typed arrays), as
        ``kt train`` writes ``graph.json``: at K = 400 a few hundred kB written
        in milliseconds, where nested lists took megabytes and seconds."""
        return dumps(self.to_dict(compact=compact))

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> "PrerequisiteGraph":
        """Rebuild a graph from :meth:`to_dict` output or an exported JSON.

        Arrays may be typed arrays (format 2, :func:`encode_array`) or
        nested lists with null for NaN (format 1). An exported file without
        the ``prob`` matrix is read from its ``edges`` list; pairs not listed
        get probability 0.

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
            opt = {n: _array(d[n]) for n in MATRICES if d.get(n) is not None}
            if d.get("difficulty") is not None:
                opt["difficulty"] = _array(d["difficulty"])
            return cls(kcs, prob, str(d.get("method", "unknown")), meta=dict(d.get("meta") or {}), **opt)
        except (ValueError, TypeError, KeyError) as exc:
            raise KTError(f"{source}: invalid kt graph ({_one_line(exc)}); {fix}") from None


KEEP_RULE = (
    "a refit keeps i -> k when its edge probability is >= threshold, exceeds that of k -> i, "
    "and (with top_k) is among the refit's top_k such edges"
)


def kept_mask(prob: np.ndarray, threshold: float = 0.5, top_k: int | None = None) -> np.ndarray:
    """Boolean K x K: the edges an export with this threshold and top-k keeps (the rule of :data:`KEEP_RULE`)."""
    keep = (prob >= threshold) & (prob > 0) & (prob > prob.T)
    np.fill_diagonal(keep, False)
    if top_k is not None and keep.sum() > top_k:
        i, k = np.nonzero(keep)
        order = np.argsort(-prob[i, k], kind="stable")[:top_k]
        keep = np.zeros_like(keep)
        keep[i[order], k[order]] = True
    return keep


def stability_of(probs: np.ndarray, threshold: float = 0.5, top_k: int | None = None) -> np.ndarray:
    """Share of refits (``probs``, shape (n, K, K)) keeping each edge (:func:`kept_mask`)."""
    return np.mean([kept_mask(p, threshold, top_k) for p in probs], axis=0)


def with_refit_stability(
    g: PrerequisiteGraph, probs: np.ndarray, threshold: float = 0.5, top_k: int | None = None, **about
) -> PrerequisiteGraph:
    """``g`` with the stability and 95% strength interval of refits' edge probabilities.

    Args:
        g: the graph on the full data.
        probs: edge probabilities of the refits, shape (n, K, K).
        threshold, top_k: the export rule under which a refit keeps an edge (:func:`kept_mask`).
        about: how the refits were made (seed, resample, method), recorded in ``meta["bootstrap"]``.

    Returns:
        A copy with ``stability``, ``strength_lo``, ``strength_hi`` and ``meta["bootstrap"]``.
    """
    stability = stability_of(probs, threshold, top_k)
    lo, hi = np.quantile(probs, [0.025, 0.975], axis=0)
    for a in (stability, lo, hi):
        np.fill_diagonal(a, 0.0)
    meta = dict(g.meta)
    meta["bootstrap"] = {
        "refits": len(probs),
        **about,
        "threshold": threshold,
        "top_k": top_k,
        "keep_rule": KEEP_RULE,
        "interval": "2.5% and 97.5% quantiles of the edge probability over the refits",
    }
    return replace(g, stability=stability, strength_lo=lo, strength_hi=hi, meta=meta)


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
        raise KTError(
            f"{p}: cannot read graph ({_one_line(exc.strerror if isinstance(exc, OSError) else exc)}); "
            "give a graph.json or a `kt export-graph --format json` file"
        ) from None
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


_PLAIN = frozenset({int, str, bool, type(None)})
_PLAIN_OR_FLOAT = _PLAIN | {float}


def _clean(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        kinds = set(map(type, o))  # exact types: flat lists (matrix rows) skip the recursion
        if kinds <= _PLAIN:
            return list(o)
        if kinds <= _PLAIN_OR_FLOAT:
            return [None if type(v) is float and not math.isfinite(v) else v for v in o]
        return [_clean(v) for v in o]
    if isinstance(o, np.generic):
        return _clean(o.item())
    return o


def _vector(v: np.ndarray) -> list:
    # Six significant decimals keep files small; NaN becomes null.
    return [
        None if not math.isfinite(x) else (int(x) if x.is_integer() else round(x, 6))
        for x in np.asarray(v, dtype=np.float64).tolist()
    ]


def _nested(a: np.ndarray) -> list:
    return _vector(a) if a.ndim == 1 else [_vector(row) for row in a]


# Typed arrays: {"dtype", "shape", "encoding", "data"}. dtype is a little-endian
# NumPy type string, data the C-order bytes, zlib-compressed, in base64.
ARRAY_ENCODINGS = ("zlib+base64", "base64")
_DTYPES = ("|u1", "<u2", "<u4", "|i1", "<i2", "<i4", "<f4", "<f8")
_ZLIB_LEVEL = 1  # fastest; level 6 saves a third of the bytes of sparse graphs at several times the time


def encode_array(a) -> dict:
    """A numeric array as a compact, exact JSON object (a typed array).

    The values are stored in the smallest type that holds them exactly
    (unsigned/signed 8-32 bit integers for counts, float32 when every value
    is a float32, else float64; NaN and infinities as they are), as
    little-endian bytes in C order, zlib-compressed and base64-encoded.
    :func:`decode_array` gives the same float64 values back.

    Args:
        a: array-like of numbers (any shape).

    Returns:
        ``{"dtype": "<f8", "shape": [K, K], "encoding": "zlib+base64", "data": "..."}``.
    """
    a = np.asarray(a, dtype=np.float64)
    dt = _exact_dtype(a)
    raw = np.ascontiguousarray(a.astype(dt, copy=False)).tobytes()
    return {
        "dtype": dt.str,
        "shape": list(a.shape),
        "encoding": "zlib+base64",
        "data": base64.b64encode(zlib.compress(raw, _ZLIB_LEVEL)).decode("ascii"),
    }


def decode_array(d: dict) -> np.ndarray:
    """The float64 array of a typed array (:func:`encode_array`).

    ``encoding`` may also be ``base64`` (uncompressed bytes).

    Raises:
        ValueError: not a valid typed array.
    """
    keys = ("dtype", "shape", "encoding", "data")
    if not all(k in d for k in keys):
        raise ValueError(f"typed array needs the keys {', '.join(keys)}")
    try:
        dt = np.dtype(d["dtype"])
    except TypeError:
        dt = None
    if dt is None or dt.str not in _DTYPES:
        raise ValueError(f"typed array dtype {d['dtype']!r}: expected one of {', '.join(_DTYPES)}")
    shape = d["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(f"typed array shape {shape!r}: expected a list of sizes")
    if d["encoding"] not in ARRAY_ENCODINGS:
        raise ValueError(f"typed array encoding {d['encoding']!r}: expected one of {', '.join(ARRAY_ENCODINGS)}")
    if not isinstance(d["data"], str):
        raise ValueError("typed array data must be a base64 string")
    size = math.prod(shape) * dt.itemsize
    try:
        raw = base64.b64decode(d["data"], validate=True)
        if d["encoding"] == "zlib+base64":
            z = zlib.decompressobj()
            raw = z.decompress(raw, size + 1)  # bounded: a corrupt stream cannot blow up memory
            if not z.eof:
                raise ValueError("more data than its shape holds")
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"typed array data: {_one_line(exc)}") from None
    if len(raw) != size:
        raise ValueError(f"typed array data has {len(raw)} bytes; dtype {dt.str} and shape {shape} need {size}")
    return np.frombuffer(raw, dtype=dt).reshape(shape).astype(np.float64)


def _exact_dtype(a: np.ndarray) -> np.dtype:
    """The smallest of :data:`_DTYPES` that holds every value of float64 ``a`` exactly."""
    if a.size and np.isfinite(a).all() and np.array_equal(a, np.trunc(a)) and not np.signbit(a[a == 0]).any():
        lo, hi = a.min(), a.max()
        for s in ("|u1", "<u2", "<u4") if lo >= 0 else ("|i1", "<i2", "<i4"):
            info = np.iinfo(np.dtype(s))
            if info.min <= lo and hi <= info.max:
                return np.dtype(s)
    with np.errstate(over="ignore"):
        if np.array_equal(a.astype(np.float32), a, equal_nan=True):
            return np.dtype("<f4")
    return np.dtype("<f8")


def _array(x) -> np.ndarray:
    if isinstance(x, dict):
        return decode_array(x)
    try:
        return np.array(x, dtype=np.float64)  # no nulls: the fast path
    except TypeError:
        pass
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

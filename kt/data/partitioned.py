"""Interactions stored as Parquet partitions by learner (``kt data convert --partitions``).

A partitioned dataset is a directory written by :mod:`kt.data.stream`:

``meta.json``
    format version, column mapping, global KC/item vocabularies, counts,
    per-KC attempt/correct counts, the partition files and a fingerprint of
    the source. It is written last; a directory without it is not a dataset.
``learners.parquet``
    one row per learner: ``user_id``, ``part`` (its partition), ``rows``.
``part-PPPPP-I.parquet``
    the canonical columns (``user_id``, ``skill_id``, ``item_id``,
    ``correct``, ``timestamp``, ``order``, ``line``) of the learners of
    partition P, in file order (sorted when loaded).

Every learner lives in exactly one partition, chosen by a stable hash of its
id (:func:`learner_hash`), so a partition loads on its own into kt's normal
:class:`~kt.data.schema.Interactions` (ordered per learner as ``load`` does,
encoded with the global vocabulary). :class:`PartitionedData` is the dataset
(or a learner-level view of it, see :meth:`PartitionedData.split`);
:class:`PartitionStream` feeds the training loop one partition at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import polars as pl

from kt.data.columns import ColumnMap
from kt.data.schema import Interactions, _duplicates, _encode_all, _order
from kt.data.sequences import Sequences
from kt.data.vocab import Vocab
from kt.errors import DataError, KTError

FORMAT = "kt-partitioned"
FORMAT_VERSION = 1
META = "meta.json"
LEARNERS = "learners.parquet"
HASH_SCHEME = "blake2b-64 of the UTF-8 learner id (little-endian) mod partitions"
SPLIT_SCHEME = "blake2b-64 of the UTF-8 learner id keyed with 'kt-split-SEED' / 2**64 < valid_frac"


def learner_hash(ids: list[str], key: bytes = b"") -> np.ndarray:
    """Stable 64-bit hash of each learner id (same on every platform and version).

    Args:
        ids: learner ids as strings.
        key: optional blake2b key (different keys give independent hashes).

    Returns:
        ``uint64`` array, one value per id.
    """
    h = hashlib.blake2b
    return np.fromiter(
        (int.from_bytes(h(s.encode("utf-8"), digest_size=8, key=key).digest(), "little") for s in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def partition_of(ids: list[str], n: int) -> np.ndarray:
    """Partition (0..n-1) of each learner id, by :func:`learner_hash`."""
    return (learner_hash(ids) % np.uint64(n)).astype(np.int32)


def is_partitioned(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory written by ``kt data convert --partitions``."""
    p = Path(path)
    return p.is_dir() and (p / META).is_file()


@dataclass(frozen=True, eq=False)
class PartitionedData:
    """A partitioned dataset, or a learner-level view of one.

    Attributes:
        root: the dataset directory.
        meta: the parsed ``meta.json``.
        vocab: global KC and item vocabularies (``user_id`` is left empty:
            learners are encoded per partition).
        learners: ``user_id``, ``part``, ``rows`` of the learners in this view
            (those with at least ``min_attempts`` rows).
        min_attempts: learners with fewer attempts are left out (as ``load``).
        drop_duplicates: drop duplicated attempts when loading a partition.
        whole: True for the whole dataset (no learner filter needed).
    """

    root: Path
    meta: dict
    vocab: Vocab
    learners: pl.DataFrame
    min_attempts: int = 2
    drop_duplicates: bool = False
    whole: bool = True
    _colmap: ColumnMap | None = field(default=None, repr=False)

    # -- opening ----------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, min_attempts: int = 2, drop_duplicates: bool = False) -> "PartitionedData":
        """Open a dataset directory.

        Args:
            path: directory written by ``kt data convert --partitions``.
            min_attempts: leave out learners with fewer attempts.
            drop_duplicates: drop duplicated attempts (also on when the
                conversion asked for it).

        Raises:
            DataError: not a dataset, or written by a newer kt.
        """
        root = Path(path)
        src = str(path)
        if not is_partitioned(root):
            raise DataError(
                src,
                f"no {META}: not a partitioned dataset (or its conversion did not finish)",
                "convert the log again with kt data convert FILE --out DIR --partitions N",
            )
        try:
            meta = json.loads((root / META).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(src, f"cannot read {META} ({exc})", "convert the log again") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(src, f"{META} is not a kt partitioned dataset", "convert the log again")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise DataError(
                src,
                f"written by a newer kt (format {meta['format_version']} > {FORMAT_VERSION})",
                "upgrade kt or convert the log again with this version",
            )
        try:
            learners = pl.read_parquet(root / meta["learners_file"])
        except (OSError, KeyError, pl.exceptions.PolarsError) as exc:
            raise DataError(
                src, f"cannot read the learner table ({' '.join(str(exc).split())[:200]})", "convert the log again"
            ) from None
        learners = learners.filter(pl.col("rows") >= min_attempts)
        vocab = Vocab(user_id=[], skill_id=list(meta["vocab"]["skill_id"]), item_id=list(meta["vocab"]["item_id"]))
        cols = meta["columns"]
        colmap = ColumnMap(
            columns=dict(cols["columns"]),
            layout=cols.get("layout", "generic"),
            item_step=cols.get("item_step"),
            explicit=frozenset(cols.get("explicit", [])),
        )
        drop = drop_duplicates or bool(meta.get("options", {}).get("drop_duplicates"))
        return cls(root, meta, vocab, learners, min_attempts, drop, True, colmap)

    # -- counts -------------------------------------------------------------
    @property
    def source(self) -> str:
        """The directory, for messages."""
        return str(self.root)

    @property
    def colmap(self) -> ColumnMap | None:
        """How the source columns were mapped at conversion."""
        return self._colmap

    @property
    def n_partitions(self) -> int:
        """Number of partitions (some may be empty)."""
        return len(self.meta["partitions"])

    @property
    def n_rows(self) -> int:
        """Attempts of the learners in this view (before any duplicate dropping)."""
        return int(self.learners["rows"].sum() or 0)

    @property
    def n_users(self) -> int:
        """Learners in this view."""
        return self.learners.height

    @property
    def multi_kc(self) -> bool:
        """True when KCs are lists (items with several KCs)."""
        return bool(self.meta["multi_kc"])

    @property
    def correct_rate(self) -> float:
        """Share of correct attempts in the whole dataset."""
        return float(self.meta["correct_rate"])

    def fingerprint(self) -> str:
        """The dataset's fingerprint (source content and conversion options), saved with models."""
        return str(self.meta["fingerprint"])

    # -- views ----------------------------------------------------------------
    def split(self, valid_frac: float, seed: int) -> tuple["PartitionedData", "PartitionedData | None"]:
        """Learner-level train/validation split by a seeded hash of the learner id.

        Learner u is held out when ``blake2b(u, key='kt-split-SEED') / 2**64 <
        valid_frac``: deterministic, independent of the partition count and
        of row order, and computed from ``learners.parquet`` alone. The held
        out share is ``valid_frac`` in expectation (not exactly, unlike
        :func:`kt.data.splits.train_valid`).

        Args:
            valid_frac: share of learners held out (0: no validation set).
            seed: split seed.

        Returns:
            (train, valid) views; ``valid`` is ``None`` when ``valid_frac`` is
            0 or either side would be empty.
        """
        if not 0 <= valid_frac < 1:
            raise KTError(f"--valid-frac {valid_frac}: must be in [0, 1)")
        if valid_frac == 0:
            return self, None
        u = learner_hash(self.learners["user_id"].to_list(), key=f"kt-split-{seed}".encode())
        held = pl.Series(u.astype(np.float64) / 2.0**64 < valid_frac)
        valid, train = self.learners.filter(held), self.learners.filter(~held)
        if valid.height == 0 or train.height == 0:
            return self, None
        return self._view(train), self._view(valid)

    def _view(self, learners: pl.DataFrame) -> "PartitionedData":
        return dataclasses.replace(self, learners=learners, whole=False)

    # -- loading --------------------------------------------------------------
    def partition(self, i: int) -> Interactions | None:
        """The interactions of this view's learners in partition ``i``.

        Returns:
            :class:`Interactions` ordered and checked as :func:`kt.data.schema.load`
            orders them, encoded with the global vocabulary (``user_idx``
            counts the partition's learners), or ``None`` when the partition
            holds none of this view's learners.
        """
        info = self.meta["partitions"][i]
        if not info["files"]:
            return None
        lf = pl.scan_parquet([self.root / f for f in info["files"]])
        if not self.whole:
            ids = self.learners.filter(pl.col("part") == i)["user_id"]
            if ids.len() == 0:
                return None
            lf = lf.filter(pl.col("user_id").is_in(ids.implode()))
        return self._finish(lf.collect(), f"{self.root}/{info['files'][0]}")

    def partitions(self, order: np.ndarray | None = None) -> Iterator[Interactions]:
        """Each non-empty partition in turn (``order``: partition indices)."""
        for i in range(self.n_partitions) if order is None else order:
            part = self.partition(int(i))
            if part is not None:
                yield part

    def to_interactions(self, vocab: Vocab | None = None) -> Interactions:
        """Everything in memory at once (for small data and models that do not stream).

        Args:
            vocab: encode KCs and items with this vocabulary (a trained
                model's; unknown ones become -1 as with ``load(vocab=...)``)
                instead of the dataset's own.

        Returns:
            The same :class:`Interactions` as ``load`` of the source file
            (rows, order, KC/item vocabulary), with this view's learners.
        """
        files = [self.root / f for p in self.meta["partitions"] for f in p["files"]]
        if not files:
            raise DataError(self.source, "no rows", "convert a file with at least one interaction")
        lf = pl.scan_parquet(files)
        if not self.whole:
            lf = lf.filter(pl.col("user_id").is_in(self.learners["user_id"].implode()))
        data = self._finish(lf.collect(), self.source, vocab)
        if data is None:
            raise DataError(self.source, f"no learner has {self.min_attempts} or more attempts", "give longer sequences")
        return data

    def _finish(self, frame: pl.DataFrame, src: str, vocab: Vocab | None = None) -> Interactions | None:
        # The tail of kt.data.schema.to_interactions: same ordering, duplicate
        # check, short-learner filter and encoding, on canonical columns.
        notes: list[str] = []
        stats: dict = {"rows_read": frame.height}
        frame = _order(frame)
        frame, dups = _duplicates(frame, self.drop_duplicates)
        stats["duplicates"] = dups
        if frame.height and self.min_attempts > 1:
            runs = frame.select(pl.col("user_id").rle_id())["user_id"].to_numpy()
            lengths = np.bincount(runs)
            short = lengths < self.min_attempts
            if short.any():
                frame = frame.filter(pl.Series(~short[runs]))
                stats["dropped_short_learners"] = int(short.sum())
        if frame.height == 0:
            return None
        frame, vocab = _encode_all(frame, self.vocab if vocab is None else vocab, self.multi_kc, notes, src, stats)
        return Interactions(frame, vocab, src, self._colmap, "partitioned", tuple(notes), stats)

    # -- training and evaluation ----------------------------------------------
    def stream(self, build: Callable[[Interactions], Sequences]) -> "PartitionStream":
        """A :class:`kt.train.loop.SequenceStream` of ``build(partition)`` per partition."""
        return PartitionStream(self, build)

    def kc_difficulty(self, kcs: list[str]) -> np.ndarray:
        """1 - correct rate per KC over the whole dataset (NaN for unknown KCs)."""
        v = self.meta["vocab"]["skill_id"]
        att, cor = self.meta["kc_attempts"], self.meta["kc_correct"]
        rate = {k: (1.0 - c / a if a else np.nan) for k, a, c in zip(v, att, cor)}
        return np.array([rate.get(k, np.nan) for k in kcs])


class PartitionStream:
    """Training/validation sequences delivered one partition at a time.

    Implements :class:`kt.train.loop.SequenceStream`: ``chunks(rng)`` loads
    each partition, builds its sequences with ``build`` and yields them; with
    a generator the partition order is shuffled (only when there are
    several, so one partition reproduces in-memory training exactly).
    Memory follows the largest partition, not the dataset.

    Attributes:
        data: the dataset view.
        build: ``Interactions -> Sequences`` (e.g. DKT's windowing).
        seen: per partition index, ``(rows, correct, sequences)`` of the
            last pass (filled while streaming).
    """

    def __init__(self, data: PartitionedData, build: Callable[[Interactions], Sequences]):
        self.data = data
        self.build = build
        self.seen: dict[int, tuple[int, int, int]] = {}

    def chunks(self, rng: np.random.Generator | None) -> Iterator[Sequences]:
        """Yield one :class:`Sequences` per non-empty partition."""
        n = self.data.n_partitions
        order = rng.permutation(n) if rng is not None and n > 1 else np.arange(n)
        for i in order:
            part = self.data.partition(int(i))
            if part is None:
                continue
            seqs = self.build(part)
            self.seen[int(i)] = (part.n_rows, int(part.frame["correct"].sum()), int(seqs.mask.shape[0]))
            del part
            if seqs.mask.shape[0]:
                yield seqs

    @property
    def rows(self) -> int:
        """Attempts streamed in the last full pass."""
        return sum(r for r, _, _ in self.seen.values())

    @property
    def correct_rate(self) -> float | None:
        """Correct share of the streamed attempts (``None`` before a pass)."""
        rows = self.rows
        return sum(c for _, c, _ in self.seen.values()) / rows if rows else None

    @property
    def sequences(self) -> int:
        """Sequences (windows) built in the last full pass."""
        return sum(s for _, _, s in self.seen.values())


def open_for_training(
    path: Path, model, valid_frac: float, seed: int, *, map_=None, encoding=None, drop_duplicates: bool = False
):
    """Training data from a partitioned directory, for ``kt train DIR``.

    Models that stream (``model.capabilities.streams``, e.g. DKT) get learner-level views
    split by hash (:meth:`PartitionedData.split`); others get the whole
    dataset loaded in memory and split as for a file.

    Returns:
        (data, train, valid, notes) as ``kt train`` uses them.
    """
    from kt.data.splits import train_valid

    if map_ or encoding:
        raise KTError(f"{path}: --map/--encoding apply when converting; a partitioned dataset already has its columns")
    data = PartitionedData.open(path, drop_duplicates=drop_duplicates)
    if model.capabilities.streams:
        tr, va = data.split(valid_frac, seed)
        return data, tr, va, []
    note = f"{model.name} does not stream partitions; loading all {data.n_rows:,} attempts of {path} into memory"
    mem = data.to_interactions()
    mem_tr, mem_va = train_valid(mem, valid_frac, seed)
    return mem, mem_tr, mem_va, [note]

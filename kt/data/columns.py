"""Map a file's own column names onto kt's canonical columns.

Each canonical column has an ordered list of aliases taken from the layouts
kt knows (ASSISTments 2009/2012/2015/2017, DataShop/Cognitive Tutor, pyBKT,
Gervet TSV-5, EdNet/Riiid, Eedi). The first alias present wins; explicit
``--map canonical=Column`` overrides beat every alias.
"""

from __future__ import annotations

from dataclasses import dataclass

from kt.errors import KTError

CANONICAL = ("user_id", "skill_id", "item_id", "correct", "timestamp", "order")
REQUIRED = ("user_id", "correct")

# Order matters: the first alias found in the header is used.
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "Anon Student Id", "studentId", "student_id", "UserId", "user", "learner_id", "student"),
    "skill_id": (
        "skill_id",
        "KC(Default)",
        "skill_name",
        "skill",
        "kc",
        "knowledge_component",
        "concept",
        "sequence_id",  # ASSISTments 2015: the problem set is the skill
    ),
    "item_id": ("item_id", "problem_id", "problemId", "question_id", "QuestionId", "content_id", "Problem Name"),
    "correct": ("correct", "Correct First Attempt", "answered_correctly", "IsCorrect", "is_correct"),
    "timestamp": ("timestamp", "start_time", "startTime", "First Transaction Time", "time"),
    "order": ("order_id", "Row", "problem_log_id", "log_id", "order"),
}

# (layout name, columns that must all be present); first match names the layout.
SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("tsv5", frozenset({"user_id", "item_id", "timestamp", "correct", "skill_id"})),
    ("datashop", frozenset({"Anon Student Id", "Correct First Attempt"})),
    ("assistments-2009", frozenset({"order_id", "assistment_id", "user_id", "problem_id", "correct"})),
    ("assistments-2012", frozenset({"problem_log_id", "user_id", "problem_id", "correct"})),
    ("assistments-2017", frozenset({"studentId", "problemId", "correct"})),
    ("assistments-2015", frozenset({"user_id", "log_id", "sequence_id", "correct"})),
    ("pybkt", frozenset({"user_id", "skill_name", "correct"})),
    ("ednet-riiid", frozenset({"user_id", "content_id", "answered_correctly"})),
    ("eedi", frozenset({"UserId", "QuestionId", "IsCorrect"})),
)


def _norm(name: str) -> str:
    return name.strip().lstrip("\ufeff").lower()


@dataclass(frozen=True)
class ColumnMap:
    """Which source column feeds each canonical column.

    Attributes:
        columns: canonical name -> source column name (absent = not mapped).
        layout: name of the recognised layout, or ``"generic"``.
        item_step: for DataShop, the step column joined to the problem
            column to form the item (a problem-step is the item there).
        explicit: canonical names chosen by ``--map`` rather than detected.
    """

    columns: dict[str, str]
    layout: str = "generic"
    item_step: str | None = None
    explicit: frozenset[str] = frozenset()

    def get(self, canonical: str) -> str | None:
        """Source column mapped to ``canonical``, if any."""
        return self.columns.get(canonical)

    def to_dict(self) -> dict:
        """JSON-ready view."""
        d: dict = {"layout": self.layout, "columns": dict(self.columns)}
        if self.item_step:
            d["item_step"] = self.item_step
        return d


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    """Parse ``canonical=Column`` strings from ``--map``.

    Args:
        pairs: strings such as ``correct=Correct First Attempt``.

    Returns:
        canonical name -> source column name.
    """
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise KTError(f"--map {pair!r}: expected canonical=Column, e.g. --map correct='Correct First Attempt'")
        if key not in CANONICAL:
            raise KTError(f"--map {pair!r}: unknown canonical column {key!r}; choose one of {', '.join(CANONICAL)}")
        out[key] = value.strip()
    return out


def detect(header: list[str], overrides: dict[str, str] | None = None, *, source: str = "input") -> ColumnMap:
    """Build the column map for a header.

    Args:
        header: column names as read from the file.
        overrides: explicit canonical -> column choices (from ``--map``).
        source: file name used in error messages.

    Returns:
        The detected :class:`ColumnMap`.

    Raises:
        KTError: an override names a column that is not in the file.
    """
    overrides = overrides or {}
    by_norm: dict[str, str] = {}
    for col in header:
        by_norm.setdefault(_norm(col), col)
    present = set(header) | {c.lstrip("\ufeff") for c in header}

    layout = "generic"
    for name, needed in SIGNATURES:
        if needed <= present:
            layout = name
            break

    columns: dict[str, str] = {}
    for canonical in CANONICAL:
        if canonical in overrides:
            wanted = overrides[canonical]
            real = wanted if wanted in header else by_norm.get(_norm(wanted))
            if real is None:
                raise KTError(
                    f"{source}: --map {canonical}={wanted!r} names no column of this file; columns are: {', '.join(header)}"
                )
            columns[canonical] = real
            continue
        for alias in ALIASES[canonical]:
            real = by_norm.get(_norm(alias))
            if real is not None and real not in columns.values():
                columns[canonical] = real
                break
        if canonical == "skill_id" and canonical not in columns:
            # DataShop exports name KC models as "KC(<model>)"; take the first one.
            kc = [c for c in header if c.startswith("KC(") and c.endswith(")")]
            if kc:
                columns[canonical] = kc[0]

    item_step = None
    if layout == "datashop" and "item_id" not in overrides and columns.get("item_id") == by_norm.get("problem name"):
        item_step = by_norm.get("step name")
    return ColumnMap(columns=columns, layout=layout, item_step=item_step, explicit=frozenset(overrides))

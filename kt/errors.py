"""Errors that the CLI turns into one-line messages with exit code 1."""

from __future__ import annotations

from typing import Sequence


class KTError(Exception):
    """A problem with the user's input or request, not a bug in kt.

    The message is shown as is, on one line, so it must name the file,
    the row or column at fault, and the fix.
    """


class DataError(KTError):
    """Bad or unreadable interaction data."""

    def __init__(self, source: str, problem: str, fix: str | None = None):
        msg = f"{source}: {problem}"
        if fix:
            msg += f"; {fix}"
        super().__init__(msg)
        self.source = source
        self.problem = problem
        self.fix = fix


class ModelError(KTError):
    """A saved model that cannot be used, or an invalid model configuration."""


def check_choice(option: str, value: object, choices: Sequence[str]) -> None:
    """Refuse a value that is not one of ``choices``, with the one-line message kt gives for it.

    Args:
        option: how the user gave the value, as the message starts it
            (``"--set norm="``, ``"--protocol "``).
        value: the value given.
        choices: the allowed values, in the order the message lists them.

    Raises:
        KTError: ``{option}{value!r}: choose a or b`` for two choices,
            ``choose one of a, b, c`` for more.
    """
    if value not in choices:
        listed = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"
        raise KTError(f"{option}{value!r}: choose {listed}")

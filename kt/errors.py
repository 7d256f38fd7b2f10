"""Errors that the CLI turns into one-line messages with exit code 1."""

from __future__ import annotations


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

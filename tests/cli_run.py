"""Run the ``kt`` CLI in-process from tests, failing with its output unless it exits 0."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from kt.cli import app


def invoke(*args, ok: bool = True) -> Result:
    """``kt *args`` in-process; with ``ok``, assert exit code 0 (the message shows the output and exception).

    Args:
        args: the command line (each item passed through ``str``).
        ok: require a zero exit code.

    Returns:
        Typer's result (``output`` holds stdout and stderr together).
    """
    res = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, f"kt {' '.join(map(str, args))} exited {res.exit_code}:\n{res.output}\n{res.exception!r}"
    return res


def output(*args, ok: bool = True) -> str:
    """:func:`invoke`'s output text.

    Args:
        args: the command line.
        ok: require a zero exit code.

    Returns:
        stdout and stderr together.
    """
    return invoke(*args, ok=ok).output

"""The ``kt`` command line. Commands parse options, call the library, print.

One module per command group; each registers its commands on the shared
Typer app from ``kt.cli.common`` when imported here.

Exit codes: 0 ok, 1 bad input or usage (one-line message), 2 internal error.
"""

from __future__ import annotations

from kt.cli import data, train, eval, graph, graph_learn, simulate, psikt  # noqa: F401, I001 - registers commands in help order
from kt.cli.common import _enable_compile_cache, app, use_memory_scheduler


def main() -> None:
    """Console-script entry point."""
    _enable_compile_cache()
    use_memory_scheduler()
    try:
        app(prog_name="kt")
    finally:
        # The process ends here: spare interpreter shutdown its full garbage collections over
        # every object JAX and friends created (~0.5 s); the OS takes the memory back anyway.
        import gc

        gc.freeze()


__all__ = ["app", "main"]

"""Write output files so that nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from kt.errors import KTError


def _nearest_existing(path: Path) -> Path:
    p = path
    while not (p.exists() or p.is_symlink()):
        if p.parent == p:
            break
        p = p.parent
    return p


def _unusable(target: Path, anchor: Path, reason: str, option: str) -> KTError:
    problem = (
        f"cannot create it: {anchor} is not a directory" if not anchor.is_dir() else f"cannot create files in {anchor} ({reason})"
    )
    return KTError(f"{target}: {problem}; choose another {option}")


def check_location(path: str | Path, option: str = "--out") -> None:
    """Fail with one line unless ``path`` could be created.

    Its directory must exist and take new files, or the missing part must be
    makeable under one that does. Nothing is left behind: the check creates
    and removes one probe file.

    Args:
        path: the output path given by the user.
        option: the option that named it, for the hint.

    Raises:
        KTError: a parent is a file, or the nearest existing directory
            refuses new files (permissions, a read-only or pseudo filesystem).
    """
    target = Path(path)
    anchor = _nearest_existing(target.parent)
    if not anchor.is_dir():
        raise _unusable(target, anchor, "", option)
    # A real probe, not os.access: root passes os.access everywhere, and
    # pseudo-filesystems such as /proc refuse files whatever the mode bits say.
    try:
        fd, probe = tempfile.mkstemp(prefix=".kt-probe.", dir=anchor)
    except OSError as exc:
        raise _unusable(target, anchor, exc.strerror or str(exc), option) from None
    os.close(fd)
    os.unlink(probe)


def check_output(
    path: str | Path, *, overwrite: bool, what: str = "output file", kind: str = "file", option: str = "--out"
) -> Path:
    """Check, before any work is done, that an output can be written as asked.

    Missing parent directories are fine (the writers create them); a parent
    that cannot be created or written to is not.

    Args:
        path: the output path given by the user.
        overwrite: whether an existing output may be replaced (``--overwrite``).
        what: what the output is, for messages (e.g. ``"model directory"``).
        kind: ``"file"`` or ``"dir"``. An empty directory is no existing
            output for ``"dir"``; a directory where a file should go (or the
            reverse) is refused even with ``overwrite``.
        option: the option that named the path, for the hint.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        KTError: the output exists and ``overwrite`` is false, has the wrong
            kind, or its directory cannot be created or written to. Nothing
            is written or removed in that case.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', not {kind!r}")
    target = Path(path)
    if target.exists() or target.is_symlink():
        if kind == "file" and target.is_dir():
            raise KTError(f"{target}: is a directory, expected a {what}; choose another {option}")
        if kind == "dir" and not target.is_dir():
            raise KTError(f"{target}: exists and is not a directory, expected a {what}; choose another {option}")
        occupied = kind == "file" or any(target.iterdir())
        if occupied and not overwrite:
            raise KTError(f"{target}: {what} already exists; pass --overwrite to replace it, or choose another {option}")
    check_location(target, option)
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place on success.

    Args:
        path: final file path; missing parent directories are created.

    Yields:
        A temporary path in the same directory (same filesystem, so the
        final rename is atomic). It is removed if the block raises.

    Raises:
        KTError: the directory cannot be created or written to, or ``path``
            is a directory.
    """
    target = Path(path)
    if target.is_dir():
        raise KTError(f"{target}: is a directory; give a file path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _unusable(target, _nearest_existing(target.parent), exc.strerror or str(exc), "path") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp_path, 0o666 & ~mask)  # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` to ``path``.

    Args:
        path: final file path; missing parent directories are created.
        text: the whole content.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)

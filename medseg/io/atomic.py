"""Atomic file output: write to a temporary file beside the target, then rename.

A crash, a full disk or an exception mid-way leaves the target untouched (either the old file or no
file), never a half-written one. Used by every writer in medseg: volumes, checkpoints, exports.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from medseg.errors import InvalidInputError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, allow_empty: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``target`` on success.

    The temporary name keeps the target's full suffix (``.nii.gz``, ``.seg.nrrd``...) because
    several libraries pick the format from the extension. The file gets the permissions a plain
    ``open(target, "w")`` would give (0o666 less the umask), not ``mkstemp``'s owner-only 0o600.

    Args:
        target: the final path.
        allow_empty: accept an empty result; by default an empty file means the writer failed
            silently and raises :class:`OSError`.

    Example:
        >>> with atomic_path("out.nii.gz") as tmp:  # doctest: +SKIP
        ...     nib.save(img, tmp)
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError("output folder does not exist; create it first", path=parent)
    if target.is_dir():
        raise InvalidInputError("output path is a directory; give a file name", path=target)
    suffix = "".join(target.suffixes[-2:]) if len(target.suffixes) >= 2 else target.suffix
    tmp = _create_temporary(parent, prefix=f".{target.name}.", suffix=f".part{suffix}")
    try:
        yield tmp
        if not tmp.exists() or (tmp.stat().st_size == 0 and not allow_empty):
            raise OSError(f"writer produced no data for {target}")
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target, allow_empty=True) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def _create_temporary(parent: Path, *, prefix: str, suffix: str) -> Path:
    """Create a new empty file with a random name in ``parent``, mode 0o666 filtered by the umask."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"could not create a temporary file in {parent}")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())

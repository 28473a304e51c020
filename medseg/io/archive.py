"""Safe extraction of ``.zip`` archives (DICOM series sent as a zip).

Every member is checked before anything is written: absolute paths, ``..`` components, symbolic
links and archives that would expand beyond a size limit are refused, so a crafted archive cannot
write outside the temporary folder it is extracted into.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from medseg.errors import InvalidInputError

#: Refuse archives that expand to more than this many bytes (a guard against zip bombs).
MAX_EXTRACTED_BYTES = 32 * 1024**3


def safe_extract_zip(archive: Path, destination: Path, *, max_bytes: int = MAX_EXTRACTED_BYTES) -> None:
    """Extract ``archive`` into ``destination`` after checking every member.

    Raises:
        InvalidInputError: the file is not a zip, or a member is unsafe (path traversal, absolute
            path, symbolic link) or the archive expands beyond ``max_bytes``.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"not a readable zip archive ({exc}); re-create the archive", path=archive) from exc
    with zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise InvalidInputError(
                f"archive expands to {total / 1024**3:.1f} GiB, more than the {max_bytes / 1024**3:.0f} GiB limit; "
                "extract it yourself and pass the folder",
                path=archive,
            )
        root = destination.resolve()
        for member in members:
            _check_member(member, root, archive)
        for member in members:
            target = root.joinpath(*PurePosixPath(member.filename).parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _check_member(member: zipfile.ZipInfo, root: Path, archive: Path) -> None:
    name = member.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    mode = member.external_attr >> 16
    if name.startswith("/") or (parts and parts[0].endswith(":")) or ".." in parts:
        raise InvalidInputError(
            f"unsafe member {member.filename!r} (absolute path or '..'): refusing to extract", path=archive
        )
    if stat.S_ISLNK(mode):
        raise InvalidInputError(f"member {member.filename!r} is a symbolic link: refusing to extract", path=archive)
    target = root.joinpath(*parts).resolve()
    if root != target and root not in target.parents:
        raise InvalidInputError(f"member {member.filename!r} would be written outside the folder", path=archive)

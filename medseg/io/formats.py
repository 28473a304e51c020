"""File formats medseg reads and writes, recognised by extension."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from medseg.errors import InvalidInputError


class Format(str, Enum):
    """A volume file format."""

    NIFTI = "nifti"
    NRRD = "nrrd"
    METAIMAGE = "metaimage"
    MGH = "mgh"
    DICOM = "dicom"
    SLICER_SEG = "seg.nrrd"


_EXTENSIONS: dict[str, Format] = {
    ".nii.gz": Format.NIFTI,
    ".nii": Format.NIFTI,
    ".seg.nrrd": Format.SLICER_SEG,
    ".nrrd": Format.NRRD,
    ".nhdr": Format.NRRD,
    ".mha": Format.METAIMAGE,
    ".mhd": Format.METAIMAGE,
    ".mgz": Format.MGH,
    ".mgh": Format.MGH,
    ".dcm": Format.DICOM,
    ".zip": Format.DICOM,
}

#: Extensions readable by :func:`medseg.io.read_volume`, longest first.
VOLUME_EXTENSIONS = tuple(sorted(_EXTENSIONS, key=len, reverse=True))

#: Formats whose header and voxel data live in two files.
DETACHED_EXTENSIONS = (".nhdr", ".mhd")


def extension_of(path: str | Path) -> str:
    """The recognised (possibly double) extension of ``path`` in lower case, or ``""``."""
    name = Path(path).name.lower()
    for ext in VOLUME_EXTENSIONS:
        if name.endswith(ext):
            return ext
    return ""


def format_of(path: str | Path) -> Format:
    """The :class:`Format` of ``path`` from its extension (folders are DICOM series).

    A file with no known extension is DICOM if it carries the DICOM magic (``DICM`` at byte 128):
    PACS exports are often named ``IM0001`` or by their UID (``1.2.840....320``).

    Raises:
        InvalidInputError: the extension is not one medseg knows.
    """
    p = Path(path)
    if p.is_dir():
        return Format.DICOM
    ext = extension_of(p)
    if not ext and is_dicom_file(p):
        return Format.DICOM
    if not ext:
        raise InvalidInputError(
            f"unknown file extension {''.join(p.suffixes) or '(none)'!r}; medseg reads "
            ".nii/.nii.gz, .nrrd/.nhdr, .mha/.mhd, .mgz/.mgh, DICOM folders, .dcm and .zip",
            path=p,
        )
    return _EXTENSIONS[ext]


def strip_extension(path: str | Path) -> str:
    """File name without its recognised extension: ``"ct.nii.gz"`` → ``"ct"``."""
    name = Path(path).name
    ext = extension_of(name)
    return name[: len(name) - len(ext)] if ext else Path(name).stem


def is_dicom_file(path: str | Path) -> bool:
    """True if ``path`` is a file starting with the DICOM preamble magic (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False

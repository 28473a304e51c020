"""``export_labelmap``: one label map → the format its output name asks for."""

from __future__ import annotations

import os
from pathlib import Path

from medseg.errors import InvalidInputError
from medseg.export.labelmap import label_array
from medseg.io import Volume, write_volume
from medseg.labels import LabelSpec

#: Output extensions and what they produce.
EXPORT_EXTENSIONS: dict[str, str] = {
    ".seg.nrrd": "3D Slicer segmentation (names, colours, terminology)",
    ".dcm": "DICOM SEG (needs the source DICOM series as reference)",
    ".nii.gz": "NIfTI label map",
    ".nii": "NIfTI label map",
    ".nrrd": "NRRD label map",
    ".mha": "MetaImage label map",
}


def export_labelmap(
    label: Volume,
    output: str | os.PathLike[str],
    *,
    labels: LabelSpec,
    reference_dicom: str | os.PathLike[str] | None = None,
    image: Volume | None = None,
    model_name: str | None = None,
) -> Path:
    """Write ``label`` in the format of ``output``'s extension (see :data:`EXPORT_EXTENSIONS`).

    Args:
        label: label map ``[i, j, k]`` with its RAS affine.
        output: ``.seg.nrrd``, ``.dcm`` (DICOM SEG), ``.nii.gz``, ``.nii``, ``.nrrd`` or ``.mha``.
        labels: names, colours and terminology of the label values.
        reference_dicom: the source DICOM series (folder or ``.zip``); required for ``.dcm``.
        image: the image the labels belong to; unused by the writers today, accepted so callers can
            pass what they have (statistics and previews take it separately).
        model_name: recorded in DICOM SEG.

    Returns:
        The path written (atomically).

    Raises:
        InvalidInputError: unknown extension, ``.dcm`` without a reference, not a label map.
        GeometryError: DICOM SEG on a grid other than the reference series'.
    """
    del image  # accepted for a uniform signature; see docstring
    p = Path(output)
    ext = _extension(p)
    if ext == ".seg.nrrd":
        from medseg.export.slicer import write_seg_nrrd

        return write_seg_nrrd(label, p, labels=labels)
    if ext == ".dcm":
        if reference_dicom is None:
            raise InvalidInputError(
                "DICOM SEG output needs the source DICOM series: pass --reference DICOM_DIR", path=p
            )
        from medseg.export.dicom_seg import write_dicom_seg

        return write_dicom_seg(label, reference_dicom, p, labels=labels, model_name=model_name)
    return write_volume(label.with_array(label_array(label)), p)


def output_stem(path: str | os.PathLike[str]) -> Path:
    """``out/ct.seg.nrrd`` → ``out/ct`` (companion files are named ``<stem>.statistics.json`` etc.)."""
    p = Path(path)
    name = p.name
    for ext in sorted(EXPORT_EXTENSIONS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return p.with_name(name[: len(name) - len(ext)])
    return p.with_name(p.stem)


def _extension(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(EXPORT_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    choices = ", ".join(EXPORT_EXTENSIONS)
    raise InvalidInputError(
        f"cannot tell the export format from the name; end it with one of {choices}", path=path
    )

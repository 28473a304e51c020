"""DICOM Segmentation (SEG) objects via highdicom, referencing the source DICOM series.

Follows ``../shared/specs/slicer-seg-nrrd.md`` §7: BINARY segmentation (read by every viewer, dcmqi and
so Slicer); segment numbers 1..N in label-value order, every label of the spec described (absent ones as
segments without frames); ``SegmentLabel`` = the label name; category/type codes from the label spec
(Tissue/Tissue when unknown), laterality as ``SegmentedPropertyTypeModifierCodeSequence``; the colour as
``RecommendedDisplayCIELabValue``; algorithm identification medseg + version (+ model). The label map must
lie on the referenced series' grid: it is compared with ``medseg.io.read_volume(reference)`` and refused
otherwise (no resampling of labels); highdicom then derives which source instance each frame belongs to
from the geometry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import medseg
from medseg.errors import GeometryError, InvalidInputError
from medseg.export.labelmap import label_array, present_values, reconcile_labels
from medseg.io import Volume, atomic_path, grid_difference, read_volume
from medseg.labels import Code, Label, LabelSpec, Terminology

log = logging.getLogger(__name__)

#: Used when a label has no terminology: what Slicer and TotalSegmentator use for "unknown".
TISSUE = Code("85756007", "SCT", "Tissue")


def write_dicom_seg(
    label: Volume,
    reference: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    labels: LabelSpec | None = None,
    model_name: str | None = None,
    series_description: str | None = None,
) -> Path:
    """Write ``label`` as a DICOM SEG that references the DICOM series in ``reference`` (atomically).

    Args:
        label: label map ``[i, j, k]`` on the reference series' grid.
        reference: folder (or ``.zip``) holding the one source series.
        path: output ``.dcm``.
        labels: names, colours, codes; values present but unnamed get numbered labels (warning).
        model_name: model recorded in the algorithm identification and series description.
        series_description: default ``"medseg segmentation"`` (+ model name).

    Returns:
        The path written.

    Raises:
        GeometryError: the label map's grid differs from the series' (message says how).
        InvalidInputError: the reference is not a readable DICOM series, or the label map is not one.
    """
    import highdicom as hd

    ref = read_volume(reference)
    _check_grid(label, ref, Path(reference))
    array = label_array(label)
    spec = reconcile_labels(present_values(array), labels, source=label.meta.source)
    if len(spec) == 0:
        raise InvalidInputError(
            "the label map is empty and no labels were given: nothing to put in a DICOM SEG",
            path=label.meta.source,
        )
    numbers = {lab.value: n for n, lab in enumerate(spec, start=1)}
    with _source_datasets(Path(reference), ref) as sources:
        volume = _seg_volume(array, label.affine, numbers, sources, ref)
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=volume,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[_description(lab, numbers[lab.value], model_name) for lab in spec],
            series_instance_uid=hd.UID(),
            series_number=_series_number(sources),
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="medseg",
            manufacturer_model_name=(model_name or "medseg")[:64],
            software_versions=medseg.__version__,
            device_serial_number="none",
            series_description=(series_description or _default_description(model_name))[:64],
            content_label="SEGMENTATION",
            content_description="automatic segmentation"[:64],
            content_creator_name="medseg^automatic",
            specific_character_set="ISO_IR 192",  # UTF-8: segment labels may be any Unicode
        )
    p = Path(path)
    with atomic_path(p) as tmp:
        seg.save_as(tmp)
    return p


def _check_grid(label: Volume, ref: Volume, reference: Path) -> None:
    diff = grid_difference(label, ref)
    if diff is not None:
        raise GeometryError(
            f"the label map is not on the grid of the DICOM series {reference} ({diff}); "
            "a DICOM SEG must reference the exact series the labels were made on: pass that series, "
            "or resample the labels onto it first "
            "(medseg never resamples labels silently)",
            path=label.meta.source,
        )


@contextlib.contextmanager
def _source_datasets(reference: Path, ref: Volume) -> Iterator[list[Any]]:
    """The series' datasets (no pixel data) in the order of the reference volume's ``k`` axis."""
    if reference.is_file() and reference.suffix.lower() == ".zip":
        from medseg.io.archive import safe_extract_zip

        with tempfile.TemporaryDirectory(prefix="medseg-seg-") as tmp:
            safe_extract_zip(reference, Path(tmp))
            yield _load_series(Path(tmp), ref)
        return
    yield _load_series(reference.parent if reference.is_file() else reference, ref)


def _load_series(folder: Path, ref: Volume) -> list[Any]:
    import pydicom

    wanted = {uid: n for n, uid in enumerate(ref.meta.sop_instance_uids)}
    found: dict[int, Any] = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError):
            continue
        n = wanted.get(str(ds.get("SOPInstanceUID", "")))
        if n is not None and str(ds.get("SeriesInstanceUID", "")) == ref.meta.series_uid:
            found[n] = _with_type2_attributes(ds, file)
    if len(found) != len(wanted) or not wanted:
        raise InvalidInputError(
            f"found {len(found)} of the {len(wanted)} instances of the series; DICOM SEG "
            "needs every slice of a single-frame series",
            path=folder,
        )
    return [found[n] for n in range(len(wanted))]


#: Patient/study attributes a DICOM SEG copies from its source (type 2: may be empty, must exist).
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _with_type2_attributes(ds: Any, file: Path) -> Any:
    """Add the copied type-2 attributes a source lacks as empty values (anonymised series often drop
    them); refuse a source without StudyInstanceUID, which a SEG must reference."""
    if "StudyInstanceUID" not in ds:
        raise InvalidInputError("source instance has no StudyInstanceUID; a DICOM SEG cannot reference it",
                                path=file)
    for keyword in _TYPE2_COPIED:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _seg_volume(
    array: npt.NDArray[Any],
    affine: npt.NDArray[np.float64],
    numbers: dict[int, int],
    sources: list[Any],
    ref: Volume,
) -> Any:
    """Label map relabelled to segment numbers, as a highdicom Volume matched to the source frames."""
    import highdicom as hd

    dtype = np.uint8 if len(numbers) <= 255 else np.uint16
    lut = np.zeros(int(array.max(initial=0)) + 1, dtype=dtype)
    for value, number in numbers.items():
        if value < len(lut):
            lut[value] = number
    volume = hd.Volume(
        array=lut[array],
        affine=affine,
        coordinate_system="PATIENT",
        frame_of_reference_uid=ref.meta.frame_of_reference_uid,
        from_reference_convention="RAS",
    )
    # highdicom stacks frames along minus the slice normal (as get_volume_from_series does), so the
    # geometry starts at the last source slice of medseg's order (ascending along the normal)
    first, last = sources[0], sources[-1]
    geometry = hd.VolumeGeometry.from_attributes(
        image_position=[float(v) for v in last.ImagePositionPatient],
        image_orientation=[float(v) for v in first.ImageOrientationPatient],
        rows=int(first.Rows),
        columns=int(first.Columns),
        pixel_spacing=[float(v) for v in first.PixelSpacing],
        spacing_between_slices=ref.spacing[2],
        number_of_frames=len(sources),
        coordinate_system="PATIENT",
        frame_of_reference_uid=ref.meta.frame_of_reference_uid,
    )
    try:
        return volume.match_geometry(geometry, tol=1e-3)
    except (RuntimeError, ValueError) as exc:
        raise GeometryError(f"label map and DICOM series frames do not align ({exc})") from exc


def _description(lab: Label, number: int, model_name: str | None) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    term = lab.terminology or Terminology(TISSUE, TISSUE)
    parameters = {"model": model_name} if model_name else None
    desc = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=lab.name[:64],
        segmented_property_category=_concept(term.category),
        segmented_property_type=_concept(term.type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="medseg",
            version=medseg.__version__,
            family=codes.DCM.ArtificialIntelligence,
            parameters=parameters,
        ),
        anatomic_regions=None if term.region is None else [_concept(term.region)],
        display_color=hd.color.CIELabColor.from_rgb(*lab.color),
    )
    # highdicom has no argument for modifiers (issue #458): add them as the standard sequences
    if term.modifier is not None:
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _concept(term.modifier)
        ]
    if term.region is not None and term.region_modifier is not None:
        desc.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [_concept(term.region_modifier)]
    return desc


def _concept(code: Code) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning[:64])


def _series_number(sources: list[Any]) -> int:
    number = sources[0].get("SeriesNumber")
    try:
        return (int(number) if number not in (None, "") else 0) + 1000
    except (TypeError, ValueError):
        return 1000


def _default_description(model_name: str | None) -> str:
    return f"medseg segmentation ({model_name})" if model_name else "medseg segmentation"

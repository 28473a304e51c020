"""DICOM series → :class:`Volume`.

Headers are scanned with pydicom (to group files by series, sort slices along the slice normal
and check the geometry); pixels are decoded by SimpleITK/GDCM, which applies RescaleSlope and
RescaleIntercept (so CT comes out in Hounsfield units) and decodes JPEG, JPEG 2000 and JPEG-LS.

Refused with a clear message: several series without ``series_uid``, missing slices or uneven
slice spacing, gantry tilt, repeated slice positions (several echoes or phases in one series),
mixed orientations.
"""

from __future__ import annotations

import logging
import struct
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from medseg.errors import InvalidInputError
from medseg.io.archive import safe_extract_zip
from medseg.io.itk import itk_error_reason, volume_from_itk
from medseg.io.volume import ORTHONORMAL_TOLERANCE, Volume, VolumeMeta, check_orthonormal

log = logging.getLogger(__name__)

#: What pydicom raises when a file is not DICOM or its header is garbage.
_NOT_DICOM = (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError, KeyError,
              IndexError, OverflowError, UnicodeDecodeError, NotImplementedError, struct.error)

#: Modalities that are not images (segmentations, structure sets, reports, presentation states).
NON_IMAGE_MODALITIES = frozenset({"SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "SR", "PR", "KO", "REG"})

#: Relative tolerance on slice spacing before a gap counts as a missing slice.
SPACING_RTOL = 0.01
#: Largest angle (degrees) between the slice stacking direction and the slice normal (gantry tilt).
MAX_TILT_DEG = 0.05

@dataclass(frozen=True)
class DicomFile:
    """The header fields of one DICOM file that series assembly needs."""

    path: Path
    series_uid: str
    modality: str
    description: str
    sop_instance_uid: str
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    n_frames: int
    transfer_syntax: str
    slope: float
    intercept: float
    size: tuple[int, int] = (0, 0)  # (Columns, Rows): the extent of i and j


@dataclass(frozen=True)
class SeriesSummary:
    """One series found in a folder, as listed in error messages and ``medseg info``."""

    series_uid: str
    description: str
    modality: str
    n_files: int


def read_dicom(path: Path, *, series_uid: str | None = None) -> Volume:
    """Read one DICOM image series from a folder (searched recursively), a ``.zip`` or a file.

    Args:
        path: a folder, a zip archive, or one ``.dcm`` file (its series is read from its folder).
        series_uid: SeriesInstanceUID to pick when the folder holds several series.

    Returns:
        Volume with voxels ``[i, j, k]`` = (column, row, slice) and the RAS affine; ``meta`` carries
        modality, series/study/frame-of-reference UIDs and SOPInstanceUIDs in slice order.

    Raises:
        InvalidInputError: no DICOM images, several series, missing slices, gantry tilt,
            undecodable pixel data.
    """
    if path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="medseg-zip-") as tmp:
            safe_extract_zip(path, Path(tmp))
            volume = _read_folder(Path(tmp), series_uid=series_uid, shown_as=path)
        return volume
    if path.is_file():
        header = _scan_file(path)
        if header is None:
            raise InvalidInputError("not a readable DICOM file", path=path)
        if header.modality in NON_IMAGE_MODALITIES:
            raise InvalidInputError(
                f"this is a DICOM {header.modality} object, not an image; pass the image series it refers to",
                path=path,
            )
        return _read_folder(path.parent, series_uid=series_uid or header.series_uid, shown_as=path, recursive=False)
    return _read_folder(path, series_uid=series_uid, shown_as=path)


def list_series(folder: Path) -> list[SeriesSummary]:
    """Summarise every image series under ``folder`` (searched recursively)."""
    groups = _group_by_series(_scan_folder(folder, recursive=True))
    return [_summary(files) for files in groups.values()]


# --- scanning ------------------------------------------------------------------------------------
def _scan_folder(folder: Path, *, recursive: bool) -> list[DicomFile]:
    candidates = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir()) if p.is_file())
    headers = [h for h in map(_scan_file, candidates) if h is not None]
    return [h for h in headers if h.modality not in NON_IMAGE_MODALITIES]


def _scan_file(path: Path) -> DicomFile | None:
    if path.name.upper() == "DICOMDIR":
        return None
    try:
        # force=True also accepts old files without the 128-byte preamble; garbage fails below
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if "SeriesInstanceUID" not in ds or "Rows" not in ds:
            return None
        return _header(path, ds)
    except _NOT_DICOM:
        return None


def _header(path: Path, ds: pydicom.Dataset) -> DicomFile:
    position = ds.get("ImagePositionPatient")
    orientation = ds.get("ImageOrientationPatient")
    number = ds.get("InstanceNumber")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")
    return DicomFile(
        path=path,
        series_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.get("Modality", "")),
        description=str(ds.get("SeriesDescription", "")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        instance_number=int(number) if number not in (None, "") else None,
        position=tuple(float(v) for v in position) if position else None,  # type: ignore[arg-type]
        orientation=tuple(float(v) for v in orientation) if orientation else None,
        n_frames=int(ds.get("NumberOfFrames", 1) or 1),
        transfer_syntax=str(ts),
        slope=float(ds.get("RescaleSlope", 1) or 1),
        intercept=float(ds.get("RescaleIntercept", 0) or 0),
        size=(int(ds.get("Columns", 0) or 0), int(ds.get("Rows", 0) or 0)),
    )


def _group_by_series(files: list[DicomFile]) -> dict[str, list[DicomFile]]:
    groups: dict[str, list[DicomFile]] = defaultdict(list)
    for f in files:
        groups[f.series_uid].append(f)
    return dict(groups)


def _summary(files: list[DicomFile]) -> SeriesSummary:
    first = files[0]
    return SeriesSummary(first.series_uid, first.description, first.modality, len(files))


# --- assembling one series -------------------------------------------------------------------------
def _read_folder(folder: Path, *, series_uid: str | None, shown_as: Path, recursive: bool = True) -> Volume:
    if not folder.is_dir():
        raise InvalidInputError("no such file or folder; check the path", path=shown_as)
    if not any(folder.iterdir()):
        raise InvalidInputError("folder is empty; point to a DICOM series folder or a volume file", path=shown_as)
    groups = _group_by_series(_scan_folder(folder, recursive=recursive))
    if not groups:
        raise InvalidInputError(
            "folder holds no DICOM image files; point to a DICOM series folder or a volume file "
            "(.nii.gz, .nrrd, .mha, .mgz)",
            path=shown_as,
        )
    files = _pick_series(groups, series_uid, shown_as)
    if len(files) == 1 and files[0].n_frames > 1:
        return _read_multiframe(files[0], shown_as)
    ordered = _sort_and_check(files, shown_as)
    return _read_series(ordered, shown_as)


def _pick_series(groups: dict[str, list[DicomFile]], series_uid: str | None, shown_as: Path) -> list[DicomFile]:
    if series_uid is not None:
        if series_uid not in groups:
            raise InvalidInputError(
                f"no series with UID {series_uid}; the folder holds: {_describe(groups)}", path=shown_as
            )
        return groups[series_uid]
    if len(groups) > 1:
        raise InvalidInputError(
            f"folder holds {len(groups)} DICOM series; choose one with --series-uid "
            f"(series_uid=...): {_describe(groups)}",
            path=shown_as,
        )
    return next(iter(groups.values()))


def _describe(groups: dict[str, list[DicomFile]]) -> str:
    parts = []
    for files in groups.values():
        s = _summary(files)
        parts.append(f"{s.series_uid} ({s.modality or '?'}, {s.description or 'no description'!r}, {s.n_files} files)")
    return "; ".join(parts)


def _normal(orientation: tuple[float, ...], shown_as: Path) -> npt.NDArray[np.float64]:
    """Unit slice normal from ImageOrientationPatient; refuses row/column cosines that are not
    unit length and perpendicular (a sheared or corrupt header, not a gantry tilt)."""
    row, col = np.asarray(orientation[:3], dtype=np.float64), np.asarray(orientation[3:6], dtype=np.float64)
    error = max(abs(np.linalg.norm(row) - 1), abs(np.linalg.norm(col) - 1), abs(float(np.dot(row, col))))
    if error > ORTHONORMAL_TOLERANCE:
        raise InvalidInputError(
            f"ImageOrientationPatient {list(orientation)} is not two perpendicular unit vectors (deviation "
            f"{error:.3g}): the direction cosines are not orthonormal; the header is corrupt or sheared",
            path=shown_as,
        )
    normal = np.cross(row, col)
    return normal / np.linalg.norm(normal)


def _sort_and_check(files: list[DicomFile], shown_as: Path) -> list[DicomFile]:
    """Sort slices along the normal; refuse mixed orientation, duplicates, gaps and tilt."""
    if any(f.position is None or f.orientation is None for f in files):
        raise InvalidInputError(
            "slices lack ImagePositionPatient/ImageOrientationPatient; cannot place them in space", path=shown_as
        )
    orient0 = np.asarray(files[0].orientation)
    if any(not np.allclose(f.orientation, orient0, atol=1e-4) for f in files):  # type: ignore[arg-type]
        raise InvalidInputError(
            "slices have different orientations (a localizer or multi-planar series?); "
            "pick one stack with --series-uid or separate the files",
            path=shown_as,
        )
    sizes = sorted({f.size for f in files})
    if len(sizes) > 1:
        raise InvalidInputError(
            f"slices have different sizes ({', '.join(f'{c}×{r}' for c, r in sizes)} pixels); "
            "pick one stack with --series-uid or separate the files",
            path=shown_as,
        )
    normal = _normal(files[0].orientation, shown_as)  # type: ignore[arg-type]
    proj = np.array([np.dot(f.position, normal) for f in files])  # type: ignore[arg-type]
    order = np.argsort(proj, kind="stable")
    files = [files[i] for i in order]
    proj = proj[order]
    if len(files) < 2:
        return files
    gaps = np.diff(proj)
    if np.any(gaps < 1e-3):
        n_dup = int(np.sum(gaps < 1e-3))
        raise InvalidInputError(
            f"{n_dup} slice positions occur more than once (several echoes, phases or acquisitions in one series); "
            "split the series (e.g. with dcm2niix) before reading",
            path=shown_as,
        )
    median = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - median) > max(SPACING_RTOL * median, 1e-3))
    if bad.size:
        i = int(bad[0])
        n_missing = round(gaps[i] / median) - 1
        what = f"about {n_missing} missing slice(s)" if n_missing >= 1 else "uneven slice spacing"
        raise InvalidInputError(
            f"non-uniform slice spacing: {gaps[i]:.3g} mm between slices at {proj[i]:.2f} and {proj[i + 1]:.2f} mm "
            f"where the series otherwise has {median:.3g} mm ({what}); re-export the complete series",
            path=shown_as,
        )
    stack = np.asarray(files[-1].position) - np.asarray(files[0].position)
    cos = abs(float(np.dot(stack, normal))) / max(float(np.linalg.norm(stack)), 1e-9)
    tilt = float(np.degrees(np.arccos(min(cos, 1.0))))
    if tilt > MAX_TILT_DEG:
        raise InvalidInputError(
            f"gantry tilt of {tilt:.2f}° (slices are stacked obliquely to their normal); medseg does not "
            "resample tilted stacks: convert with dcm2niix, which corrects the tilt, then pass the NIfTI",
            path=shown_as,
        )
    return files


def _read_series(files: list[DicomFile], shown_as: Path) -> Volume:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f.path) for f in files])
    slopes = {(f.slope, f.intercept) for f in files}
    if len(slopes) > 1 or any(s != int(s) or i != int(i) for s, i in slopes):
        reader.SetOutputPixelType(sitk.sitkFloat32)  # per-slice or fractional rescale: keep the precision
    image = _execute(reader.Execute, files, shown_as)
    return _finish(image, files, shown_as)


def _read_multiframe(file: DicomFile, shown_as: Path) -> Volume:
    image = _execute(lambda: sitk.ReadImage(str(file.path)), [file], shown_as)
    return _finish(image, [file], shown_as)


def _execute(fn: object, files: list[DicomFile], shown_as: Path) -> sitk.Image:
    try:
        image = fn()  # type: ignore[operator]
    except RuntimeError as exc:
        bad = _first_unreadable(files) if len(files) > 1 else None
        first = bad or files[0]
        reason = f"{bad.path.name}: {itk_error_reason(exc)}" if bad else itk_error_reason(exc)
        syntax = UID(first.transfer_syntax) if first.transfer_syntax else None
        if syntax is not None and syntax.is_compressed:
            # GDCM (inside SimpleITK) decodes JPEG, JPEG-LS, JPEG 2000 and RLE itself: installing a Python
            # codec would not help, so say what to do with the data instead
            raise InvalidInputError(
                f"cannot decode the {syntax.name} pixel data ({reason}); the data may be damaged or use an "
                "unsupported variant: convert the series to uncompressed DICOM (e.g. `gdcmconv --raw IN OUT` "
                "or `dcmdjpeg IN OUT`) and read that",
                path=shown_as,
            ) from exc
        damaged = "; the file is truncated or damaged: re-export the series" if bad or len(files) == 1 else ""
        raise InvalidInputError(f"cannot read pixel data ({reason}){damaged}", path=shown_as) from exc
    if image.GetDimension() != 3:
        raise InvalidInputError(f"expected a 3D series, got a {image.GetDimension()}D image", path=shown_as)
    return image


def _first_unreadable(files: list[DicomFile]) -> DicomFile | None:
    """The first file GDCM cannot read on its own (only called once the series read failed), or
    ``None`` if each reads alone and only the series as a whole fails."""
    for f in files:
        try:
            sitk.ReadImage(str(f.path))
        except RuntimeError:
            return f
    return None


def _finish(image: sitk.Image, files: list[DicomFile], shown_as: Path) -> Volume:
    first = files[0]
    ds = pydicom.dcmread(first.path, stop_before_pixels=True)
    meta = VolumeMeta(
        source=str(shown_as),
        modality=first.modality or None,
        series_uid=first.series_uid,
        study_uid=str(ds.get("StudyInstanceUID", "")) or None,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")) or None,
        sop_instance_uids=tuple(f.sop_instance_uid for f in files),
        header={
            "format": "DICOM",
            "series_description": first.description,
            "patient_position": str(ds.get("PatientPosition", "")),
            "manufacturer": str(ds.get("Manufacturer", "")),
            "transfer_syntax": first.transfer_syntax,
            "n_files": str(len(files)),
        },
    )
    volume = volume_from_itk(image, meta)
    check_orthonormal(volume.affine, path=shown_as)
    volume = _compact_integers(volume)
    log.debug("read DICOM series %s: %d slices, shape %s", first.series_uid, len(files), volume.shape)
    return volume


def _compact_integers(volume: Volume) -> Volume:
    """GDCM returns rescaled CT as int32; int16 holds every HU value and halves the memory."""
    a = volume.array
    if a.dtype in (np.int32, np.int64) and a.size and a.min() >= -32768 and a.max() <= 32767:
        return volume.with_array(a.astype(np.int16))
    return volume

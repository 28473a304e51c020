"""Small hand-built inputs for the IO tests: named affines and minimal DICOM CT series.

Every affine here is voxel index ``(i, j, k)`` → RAS millimetres, written out by hand so the
expected geometry never comes from the code under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0])


def _affine(columns: npt.ArrayLike, origin: Sequence[float]) -> npt.NDArray[np.float64]:
    a = np.eye(4)
    a[:3, :3] = np.asarray(columns, dtype=np.float64)
    a[:3, 3] = origin
    return a


def _rotation(ax: float, ay: float, az: float) -> npt.NDArray[np.float64]:
    """Rotation about x, then y, then z (radians)."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


#: Named voxel → RAS affines covering the geometry cases that break naive readers.
AFFINES: dict[str, npt.NDArray[np.float64]] = {
    # rotated about all three axes, anisotropic (0.7, 0.9, 3.1 mm), non-integer origin
    "oblique": _affine(_rotation(0.3, -0.4, 0.55) * [0.7, 0.9, 3.1], (-101.3, 57.25, -33.125)),
    # the same rotation with i flipped: a left-handed grid (NIfTI qfac = -1)
    "oblique-left-handed": _affine(_rotation(0.3, -0.4, 0.55) * [-0.7, 0.9, 3.1], (12.5, -8.75, 60.0)),
    # axis-aligned, i and k flipped (orientation LAI), j kept: det > 0
    "flipped": _affine(np.diag([-0.8, 1.2, -2.5]), (40.0, -20.0, 60.0)),
    # i → A, j → I, k → R: a permuted, left-handed grid (orientation "AIR")
    "permuted": _affine([[0, 0, 1.5], [0.6, 0, 0], [0, -0.9, 0]], (12.0, -80.0, 33.0)),
    # thick slices: 0.5 × 0.5 × 5 mm, LPS like most DICOM
    "anisotropic-5mm": _affine(np.diag([-0.5, -0.5, 5.0]), (120.0, 98.5, -250.0)),
}


def write_ct_series(
    folder: Path,
    stored: npt.NDArray[np.int16],
    *,
    origin_lps: Sequence[float],
    row_dir_lps: Sequence[float],
    col_dir_lps: Sequence[float],
    pixel_spacing: tuple[float, float],
    slice_step_lps: Sequence[float],
    intercept: float = -1024.0,
    slope: float = 1.0,
    series_uid: str | None = None,
    skip: Sequence[int] = (),
) -> list[Path]:
    """Write a minimal CT Image Storage series, one file per slice, in a shuffled file order.

    Args:
        folder: output folder (created).
        stored: stored pixel values ``[i, j, k]`` = (column, row, slice), int16.
        origin_lps: ImagePositionPatient of slice ``k = 0``.
        row_dir_lps, col_dir_lps: ImageOrientationPatient (direction of increasing column
            index ``i`` and row index ``j``).
        pixel_spacing: DICOM PixelSpacing ``(row spacing = along j, column spacing = along i)``.
        slice_step_lps: ImagePositionPatient step from slice ``k`` to ``k + 1`` (mm, LPS).
        intercept, slope: RescaleIntercept / RescaleSlope.
        series_uid: SeriesInstanceUID (a new one by default).
        skip: slice indices not written (to make a gap).

    Returns:
        The files written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    n_k = stored.shape[2]
    paths = []
    names = np.random.default_rng(7).permutation(n_k)  # file names do not follow slice order
    for k in range(n_k):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.SeriesDescription = "synthetic"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientID, ds.PatientName = "SYNTH", "Synthetic^Phantom"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in np.asarray(origin_lps) + k * np.asarray(slice_step_lps)]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_dir_lps, *col_dir_lps)]
        ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
        ds.SliceThickness = f"{float(np.linalg.norm(slice_step_lps)):g}"
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:g}", f"{slope:g}"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T.astype("<i2")).tobytes()  # rows × columns
        path = folder / f"IM{names[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def ras_affine_of_series(
    *,
    origin_lps: Sequence[float],
    row_dir_lps: Sequence[float],
    col_dir_lps: Sequence[float],
    pixel_spacing: tuple[float, float],
    slice_step_lps: Sequence[float],
) -> npt.NDArray[np.float64]:
    """The voxel → RAS affine a DICOM series must get, from the DICOM definitions (PS3.3 C.7.6.2.1.1)."""
    columns_lps = np.column_stack([
        np.asarray(row_dir_lps) * pixel_spacing[1],  # i: along a row, column spacing
        np.asarray(col_dir_lps) * pixel_spacing[0],  # j: down a column, row spacing
        np.asarray(slice_step_lps),
    ])
    return _affine(RAS_FROM_LPS @ columns_lps, RAS_FROM_LPS @ np.asarray(origin_lps, dtype=np.float64))

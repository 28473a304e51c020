"""The :class:`Volume`: voxels plus the affine that places them in the world.

Conventions (the same as nibabel's):

* ``array`` is indexed ``[i, j, k]`` (voxel axes in file order, ``i`` fastest on disk), optionally
  with a leading channel axis ``[c, i, j, k]``.
* ``affine`` is a 4×4 matrix mapping a voxel index ``(i, j, k, 1)`` to **RAS** world coordinates in
  millimetres (+x = patient Right, +y = Anterior, +z = Superior). The centre of voxel ``[0, 0, 0]``
  sits at ``affine[:3, 3]``.

Spacing, origin, direction and orientation code are derived from the affine and never stored twice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.errors import GeometryError

#: Largest deviation from orthonormality accepted for direction cosines (dimensionless).
ORTHONORMAL_TOLERANCE = 1e-3

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Flips x and y: converts an LPS affine to RAS and back (the matrix is its own inverse)."""


@dataclass(frozen=True)
class VolumeMeta:
    """What a reader learned about where a volume came from.

    Attributes:
        source: path the volume was read from, if any.
        modality: DICOM modality (``"CT"``, ``"MR"``...) when known.
        series_uid: DICOM SeriesInstanceUID.
        study_uid: DICOM StudyInstanceUID.
        frame_of_reference_uid: DICOM FrameOfReferenceUID.
        sop_instance_uids: SOPInstanceUIDs of the slices, in the order of the ``k`` axis.
        header: a few essentials of the original header (strings), for display and provenance.
    """

    source: str | None = None
    modality: str | None = None
    series_uid: str | None = None
    study_uid: str | None = None
    frame_of_reference_uid: str | None = None
    sop_instance_uids: tuple[str, ...] = ()
    header: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image or label map with its geometry.

    Attributes:
        array: voxels, shape ``(I, J, K)`` or ``(C, I, J, K)`` (channel first).
        affine: 4×4 float64, voxel index → RAS world millimetres.
        meta: provenance (source path, modality, DICOM UIDs).

    Example:
        >>> v = Volume(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 2.0, 5.0, 1.0]))
        >>> v.spacing, v.orientation
        ((2.0, 2.0, 5.0), 'RAS')
    """

    array: npt.NDArray[Any]
    affine: npt.NDArray[np.float64]
    meta: VolumeMeta = field(default_factory=VolumeMeta)

    def __post_init__(self) -> None:
        array = np.asanyarray(self.array)
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise GeometryError(f"affine shape must be (4, 4), not {affine.shape}")
        if not np.all(np.isfinite(affine)):
            raise GeometryError("affine contains NaN or infinite values")
        if array.ndim not in (3, 4):
            raise GeometryError(
                f"a volume needs 3 spatial axes (optionally a leading channel axis); got shape {array.shape}"
            )
        if np.any(np.linalg.norm(affine[:3, :3], axis=0) == 0):
            raise GeometryError("affine has a zero-length voxel axis (spacing 0)")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", affine)

    # --- shape -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(I, J, K)`` (the channel axis excluded)."""
        i, j, k = self.array.shape[-3:]
        return (int(i), int(j), int(k))

    @property
    def n_channels(self) -> int:
        """Number of channels: 1 for a plain 3D array."""
        return int(self.array.shape[0]) if self.array.ndim == 4 else 1

    @property
    def is_multichannel(self) -> bool:
        return self.array.ndim == 4

    # --- geometry derived from the affine ------------------------------------------------------
    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along ``i, j, k`` in millimetres."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS position (mm) of the centre of voxel ``[0, 0, 0]``."""
        o = self.affine[:3, 3]
        return (float(o[0]), float(o[1]), float(o[2]))

    @property
    def direction(self) -> npt.NDArray[np.float64]:
        """3×3 matrix whose columns are the RAS unit vectors of the ``i, j, k`` axes."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    @property
    def orientation(self) -> str:
        """Axis code such as ``"RAS"``, ``"LPS"`` or ``"LIA"``: the world direction each voxel axis
        points to most closely (nibabel's ``aff2axcodes``)."""
        import nibabel as nib

        return "".join(str(c) for c in nib.aff2axcodes(self.affine))

    @property
    def is_oblique(self) -> bool:
        """True if any voxel axis is not aligned with a world axis (beyond 1e-4)."""
        d = np.abs(self.direction)
        return bool(np.any((d > 1e-4) & (d < 1 - 1e-4)))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (cm³)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    # --- helpers --------------------------------------------------------------------------------
    def with_array(self, array: npt.NDArray[Any]) -> Volume:
        """A volume on the same grid holding ``array`` (same spatial shape required)."""
        if tuple(np.shape(array)[-3:]) != self.shape:
            raise GeometryError(
                f"new array has spatial shape {tuple(np.shape(array)[-3:])}, expected {self.shape}"
            )
        return replace(self, array=array)

    def voxel_to_world(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map voxel indices ``(..., 3)`` to RAS millimetres ``(..., 3)``."""
        p = np.asarray(ijk, dtype=np.float64)
        return p @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map RAS millimetres ``(..., 3)`` to (fractional) voxel indices ``(..., 3)``."""
        inv = np.linalg.inv(self.affine)
        p = np.asarray(xyz, dtype=np.float64)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def same_grid(self, other: Volume, *, atol_mm: float = 1e-3, atol_dir: float = 1e-4) -> bool:
        """True if ``other`` has the same spatial shape and the same voxel → world mapping."""
        return self.shape == other.shape and grid_difference(self, other, atol_mm=atol_mm, atol_dir=atol_dir) is None


def check_orthonormal(
    affine: npt.NDArray[np.float64],
    *,
    tolerance: float = ORTHONORMAL_TOLERANCE,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Raise :class:`GeometryError` unless the affine's direction cosines are orthonormal.

    A sheared affine (columns not perpendicular) cannot be represented by ITK, DICOM or NRRD and
    means the header is broken or the image must be resampled first.

    Args:
        affine: 4×4 voxel → world matrix.
        tolerance: largest accepted deviation of ``Dᵀ D`` from the identity (dimensionless).
        path: the file the affine came from or goes to, named in the error.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / spacing
    error = float(np.max(np.abs(direction.T @ direction - np.eye(3))))
    if error > tolerance:
        raise GeometryError(
            f"direction cosines are not orthonormal (max deviation {error:.3g}, tolerance {tolerance:g}): "
            "the header describes a sheared grid; fix the header or resample the image to a rigid grid",
            path=path,
        )


def grid_difference(
    a: Volume, b: Volume, *, atol_mm: float = 1e-3, atol_dir: float = 1e-4
) -> str | None:
    """Describe how the grids of ``a`` and ``b`` differ, or return ``None`` if they match.

    Args:
        a, b: volumes to compare (channels ignored).
        atol_mm: tolerance for spacing and origin, millimetres.
        atol_dir: tolerance for direction cosines (dimensionless).
    """
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if not np.allclose(a.spacing, b.spacing, atol=atol_mm, rtol=0):
        return f"spacing {_fmt(a.spacing)} vs {_fmt(b.spacing)} mm"
    if not np.allclose(a.origin, b.origin, atol=atol_mm, rtol=0):
        dist = float(np.linalg.norm(np.subtract(a.origin, b.origin)))
        return f"origin {_fmt(a.origin)} vs {_fmt(b.origin)} mm ({dist:.3g} mm apart)"
    if not np.allclose(a.direction, b.direction, atol=atol_dir, rtol=0):
        return f"direction {a.orientation} vs {b.orientation} (cosines differ)"
    return None


def _fmt(values: tuple[float, ...]) -> str:
    return "×".join(f"{v:.4g}" for v in values)

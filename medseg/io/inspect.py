"""Describe a volume for ``medseg info``: geometry, intensities and warnings worth a look."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medseg.io.volume import Volume

#: Spacing ratio (largest / smallest) above which a volume counts as strongly anisotropic.
ANISOTROPY_WARN = 3.0
#: Plausible Hounsfield range; voxels outside it (other than a constant padding value) are suspicious.
HU_RANGE = (-1100.0, 4000.0)


@dataclass(frozen=True)
class VolumeReport:
    """What ``medseg info`` prints. Lengths in mm; ``direction`` columns are RAS unit vectors."""

    path: str | None
    shape: tuple[int, ...]
    n_channels: int
    dtype: str
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[tuple[float, float, float], ...]
    orientation: str
    modality: str | None
    intensity_min: float
    intensity_max: float
    intensity_mean: float
    n_unique: int | None
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_volume(volume: Volume) -> VolumeReport:
    """Summarise ``volume`` and collect warnings (oblique, anisotropic, implausible HU, NaN/Inf)."""
    a = volume.array
    finite = np.isfinite(a) if a.dtype.kind == "f" else None
    values = a[finite] if finite is not None else a
    lo = float(values.min()) if values.size else float("nan")
    hi = float(values.max()) if values.size else float("nan")
    mean = float(values.mean(dtype=np.float64)) if values.size else float("nan")
    n_unique = int(np.unique(a).size) if a.dtype.kind in "iub" else None
    warnings = _warnings(volume, finite, lo, hi)
    return VolumeReport(
        path=volume.meta.source,
        shape=tuple(int(s) for s in a.shape),
        n_channels=volume.n_channels,
        dtype=str(a.dtype),
        spacing_mm=volume.spacing,
        origin_mm=volume.origin,
        direction=tuple(tuple(float(x) for x in col) for col in volume.direction.T),  # type: ignore[misc]
        orientation=volume.orientation,
        modality=volume.meta.modality,
        intensity_min=lo,
        intensity_max=hi,
        intensity_mean=mean,
        n_unique=n_unique,
        warnings=tuple(warnings),
    )


def _warnings(volume: Volume, finite: np.ndarray | None, lo: float, hi: float) -> list[str]:
    out: list[str] = []
    if finite is not None and not finite.all():
        out.append(f"{int((~finite).sum())} voxels are NaN or infinite; fix or mask them before training or inference")
    if volume.is_oblique:
        out.append(
            f"oblique grid (closest orientation {volume.orientation}); medseg keeps it exact, other tools may not"
        )
    spacing = np.asarray(volume.spacing)
    ratio = float(spacing.max() / spacing.min())
    if ratio > ANISOTROPY_WARN:
        out.append(f"strongly anisotropic voxels ({ratio:.1f}:1, spacing {'×'.join(f'{s:.3g}' for s in spacing)} mm)")
    if volume.meta.modality == "CT":
        out.extend(_hu_warnings(volume.array, lo, hi))
    return out


def _hu_warnings(a: np.ndarray, lo: float, hi: float) -> list[str]:
    """CT values outside the plausible HU range, ignoring a constant padding value at the minimum."""
    if lo >= 0 and hi > 1000:
        return ["CT values are all ≥ 0: looks like stored values without RescaleIntercept, not Hounsfield units"]
    body = a[a != lo] if lo < HU_RANGE[0] else a
    outside = int(np.count_nonzero((body < HU_RANGE[0]) | (body > HU_RANGE[1])))
    if body.size and outside / body.size > 1e-3:
        return [f"{outside} CT voxels lie outside the plausible range {HU_RANGE[0]:g}..{HU_RANGE[1]:g} HU"]
    return []

"""Per-structure statistics of a label map: voxel count, volume, intensity inside, bounding box.

Volume in millilitres = voxel count × ``Volume.voxel_volume_ml`` (no partial-voxel estimate). Intensity
statistics are population statistics (``std`` with ddof 0) of the image voxels inside the structure; the
image must be on the label map's grid (same shape, spacing, origin, direction).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.errors import GeometryError, InvalidInputError
from medseg.export.labelmap import label_array, present_values, reconcile_labels
from medseg.io import Volume, atomic_write_text, grid_difference
from medseg.labels import LabelSpec

CSV_COLUMNS = (
    "value",
    "name",
    "voxel_count",
    "volume_ml",
    "mean",
    "std",
    "min",
    "max",
    "bbox_i0",
    "bbox_i1",
    "bbox_j0",
    "bbox_j1",
    "bbox_k0",
    "bbox_k1",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
)


@dataclass(frozen=True)
class StructureStatistics:
    """Statistics of one labelled structure.

    Attributes:
        value, name: the label.
        voxel_count: number of voxels with this value.
        volume_ml: ``voxel_count × voxel volume`` in millilitres.
        mean, std, min, max: image intensity inside the structure (``None`` without an image or voxels).
        bbox_voxel: inclusive voxel bounding box ``(i0, i1, j0, j1, k0, k1)``; ``None`` if empty.
        centroid_ras_mm: centre of mass in RAS millimetres; ``None`` if empty.
    """

    value: int
    name: str
    voxel_count: int
    volume_ml: float
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    bbox_voxel: tuple[int, int, int, int, int, int] | None = None
    centroid_ras_mm: tuple[float, float, float] | None = None

    def to_row(self) -> dict[str, Any]:
        """Flat dict with the :data:`CSV_COLUMNS` keys (empty string for missing values)."""
        box = self.bbox_voxel or (None,) * 6
        centre = self.centroid_ras_mm or (None,) * 3
        row: dict[str, Any] = {
            "value": self.value,
            "name": self.name,
            "voxel_count": self.voxel_count,
            "volume_ml": self.volume_ml,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }
        row.update(dict(zip(CSV_COLUMNS[8:14], box, strict=True)))
        row.update(dict(zip(CSV_COLUMNS[14:], centre, strict=True)))
        return {k: ("" if v is None else v) for k, v in row.items()}


def compute_statistics(
    label: Volume, *, labels: LabelSpec | None = None, image: Volume | None = None
) -> list[StructureStatistics]:
    """Statistics for every label of ``labels`` (and every value present), sorted by value.

    Args:
        label: label map ``[i, j, k]``.
        labels: names; labels absent from the map get a row with zero voxels.
        image: intensity image on the same grid (3D), or ``None`` for geometry-only statistics.

    Raises:
        GeometryError: the image is on a different grid.
        InvalidInputError: the label map or image is not usable (channels, non-integral labels).
    """
    array = label_array(label)
    spec = reconcile_labels(present_values(array), labels, source=label.meta.source)
    values = _image_values(image, label)
    flat = array.ravel().astype(np.int64, copy=False)
    size = max(spec.max_value, int(flat.max()) if flat.size else 0) + 1
    counts = np.bincount(flat, minlength=size)
    intensity = _intensity(flat, values, counts, spec.values) if values is not None else {}
    boxes = _boxes(array, size)
    rows = []
    for lab in spec:
        n = int(counts[lab.value])
        box = boxes[lab.value - 1] if lab.value - 1 < len(boxes) else None
        rows.append(
            StructureStatistics(
                value=lab.value,
                name=lab.name,
                voxel_count=n,
                volume_ml=n * label.voxel_volume_ml,
                **intensity.get(lab.value, {}),
                bbox_voxel=None if box is None else _inclusive(box),
                centroid_ras_mm=None if box is None else _centroid(array, box, lab.value, label),
            )
        )
    return rows


def _image_values(image: Volume | None, label: Volume) -> npt.NDArray[np.float64] | None:
    if image is None:
        return None
    if image.is_multichannel:
        raise InvalidInputError(
            f"statistics need a 3D image; this one has {image.n_channels} channels", path=image.meta.source
        )
    diff = grid_difference(label, image)
    if diff is not None:
        raise GeometryError(
            f"image and label map are on different grids ({diff}); statistics need the image "
            "the labels were made on",
            path=image.meta.source,
        )
    return np.asarray(image.array, dtype=np.float64).ravel()


def _intensity(
    flat: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    wanted: tuple[int, ...],
) -> dict[int, dict[str, float]]:
    """mean, std (two-pass, ddof 0), min, max per label value."""
    from scipy import ndimage

    size = len(counts)
    sums = np.bincount(flat, weights=values, minlength=size)
    safe = np.maximum(counts, 1)
    mean = sums / safe
    sq = np.bincount(flat, weights=(values - mean[flat]) ** 2, minlength=size)
    present = [v for v in wanted if counts[v] > 0]
    if not present:
        return {}
    shaped = flat.reshape(-1)
    lows = ndimage.minimum(values, labels=shaped, index=present)
    highs = ndimage.maximum(values, labels=shaped, index=present)
    return {
        v: {
            "mean": float(mean[v]),
            "std": math.sqrt(float(sq[v]) / counts[v]),
            "min": float(lo),
            "max": float(hi),
        }
        for v, lo, hi in zip(present, np.atleast_1d(lows), np.atleast_1d(highs), strict=True)
    }


def _boxes(array: npt.NDArray[Any], size: int) -> list[tuple[slice, ...] | None]:
    from scipy import ndimage

    if not array.size:
        return []
    return list(ndimage.find_objects(array.astype(np.int32, copy=False), max_label=size - 1))


def _inclusive(box: tuple[slice, ...]) -> tuple[int, int, int, int, int, int]:
    i, j, k = box
    return (i.start, i.stop - 1, j.start, j.stop - 1, k.start, k.stop - 1)


def _centroid(
    array: npt.NDArray[Any], box: tuple[slice, ...], value: int, label: Volume
) -> tuple[float, float, float]:
    idx = np.nonzero(array[box] == value)
    ijk = [float(np.mean(axis)) + s.start for axis, s in zip(idx, box, strict=True)]
    x, y, z = label.voxel_to_world(ijk)
    return (float(x), float(y), float(z))


def write_statistics(
    label: Volume,
    path: str | os.PathLike[str],
    *,
    labels: LabelSpec | None = None,
    image: Volume | None = None,
) -> tuple[Path, Path]:
    """Compute :func:`compute_statistics` and write it as ``<stem>.json`` and ``<stem>.csv`` (atomically).

    Args:
        label: label map ``[i, j, k]``.
        path: the JSON or CSV path, or a stem; both files are written beside each other
            (``ct_statistics.json`` → ``ct_statistics.json`` + ``ct_statistics.csv``).
        labels: names (structures absent from the map get a zero row).
        image: intensity image on the same grid, or ``None``.

    Returns:
        ``(json_path, csv_path)``.
    """
    rows = compute_statistics(label, labels=labels, image=image)
    p = Path(path)
    stem = p.with_suffix("") if p.suffix.lower() in (".json", ".csv") else p
    json_path, csv_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".csv")
    doc: dict[str, Any] = {
        "source": label.meta.source,
        "image": None if image is None else image.meta.source,
        "shape": list(label.shape),
        "spacing_mm": list(label.spacing),
        "voxel_volume_ml": label.voxel_volume_ml,
        "structures": [asdict(r) for r in rows],
    }
    atomic_write_text(json_path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.to_row() for r in rows)
    atomic_write_text(csv_path, buffer.getvalue())
    return json_path, csv_path

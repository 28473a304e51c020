"""All metrics of every class of a label map in one pass: :func:`evaluate_case`.

Each class is cropped to the union bounding box of its predicted and reference voxels (found for
all classes at once with ``scipy.ndimage.find_objects``) plus one background voxel on every side;
masks, counts, boundaries and distances are computed only there. The values are those of the
single-metric functions in :mod:`medseg.metrics.overlap` and :mod:`medseg.metrics.surface`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medseg.errors import ConfigError, InvalidInputError
from medseg.metrics.overlap import (
    Confusion,
    dice_from_counts,
    iou_from_counts,
    precision_from_counts,
    recall_from_counts,
)
from medseg.metrics.surface import (
    assd_from,
    check_spacing,
    check_tolerance,
    edge_distances,
    hausdorff95_from,
    hausdorff_from,
    nsd_from,
    padded_edges,
)

Status = Literal["ok", "both_empty", "empty_reference", "empty_prediction"]

#: Metric fields of :class:`ClassMetrics`, in report order.
METRIC_NAMES = (
    "dice",
    "iou",
    "precision",
    "recall",
    "hd",
    "hd95",
    "assd",
    "nsd",
    "volume_ref_ml",
    "volume_pred_ml",
)

Box = tuple[slice, ...]


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class of one case.

    Attributes:
        label: label value in the label maps (≥ 1).
        dice, iou: overlap (0-1); 1 when both masks are empty, 0 when exactly one is.
        precision, recall: 0-1; ``None`` when undefined (empty prediction / empty reference).
        hd, hd95, assd: boundary distances in mm; 0 when both masks are empty, ``None`` when
            exactly one is (never ``inf`` or ``nan``).
        nsd: normalised surface Dice at the tolerance given to :func:`evaluate_case` (0-1);
            1 when both masks are empty, 0 when exactly one is.
        volume_ref_ml, volume_pred_ml: volumes of the reference and predicted masks in mL.
        status: ``"ok"``, ``"both_empty"``, ``"empty_reference"`` or ``"empty_prediction"``.
    """

    label: int
    dice: float
    iou: float
    precision: float | None
    recall: float | None
    hd: float | None
    hd95: float | None
    assd: float | None
    nsd: float
    volume_ref_ml: float
    volume_pred_ml: float
    status: Status

    @property
    def volume_diff_ml(self) -> float:
        """Predicted minus reference volume in mL."""
        return self.volume_pred_ml - self.volume_ref_ml


def evaluate_case(
    pred: npt.ArrayLike,
    ref: npt.ArrayLike,
    *,
    spacing_mm: Sequence[float] | npt.ArrayLike,
    labels: Sequence[int],
    nsd_tolerance_mm: float = 2.0,
) -> list[ClassMetrics]:
    """Dice, IoU, precision, recall, HD, HD95, ASSD, NSD and volumes for each label.

    Args:
        pred: predicted label map ``[i, j, k]`` (integers; floats holding integers are accepted).
        ref: reference label map, same shape and grid.
        spacing_mm: voxel size along ``i, j, k`` in mm.
        labels: label values to evaluate (integers ≥ 1); other values count as background.
        nsd_tolerance_mm: distance (mm) within which a boundary voxel counts as correct for NSD.

    Returns:
        One :class:`ClassMetrics` per label, in the order of ``labels``.

    Example:
        >>> ref = np.zeros((8, 8, 8), np.uint8); ref[2:6, 2:6, 2:6] = 1
        >>> pred = np.roll(ref, 1, axis=0)
        >>> m = evaluate_case(pred, ref, spacing_mm=(2.0, 1.0, 1.0), labels=[1])[0]
        >>> round(m.dice, 4), m.hd, m.status
        (0.75, 2.0, 'ok')
    """
    p = as_label_map(pred, what="prediction")
    r = as_label_map(ref, what="reference")
    if p.shape != r.shape:
        raise InvalidInputError(f"prediction and reference label maps differ in shape: {p.shape} vs {r.shape}")
    spacing = check_spacing(spacing_mm, p.ndim)
    values = check_labels(labels)
    check_tolerance(nsd_tolerance_mm)
    if not values:
        return []
    boxes_p = ndimage.find_objects(p, max_label=max(values))
    boxes_r = ndimage.find_objects(r, max_label=max(values))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return [
        _class_metrics(p, r, v, boxes_p[v - 1], boxes_r[v - 1], spacing, voxel_ml, nsd_tolerance_mm) for v in values
    ]


def both_empty_metrics(label: int) -> ClassMetrics:
    """The result for a class absent from both prediction and reference."""
    return ClassMetrics(label, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, "both_empty")


def as_label_map(array: npt.ArrayLike, *, what: str) -> npt.NDArray[np.integer]:
    """An integer view or copy of a label map; floats must hold whole numbers."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        return a
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise InvalidInputError(f"{what} is not a label map: it holds non-integer values; give class indices")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        small = np.iinfo(np.int32).min <= lo and hi <= np.iinfo(np.int32).max
        return a.astype(np.int32 if small else np.int64)
    raise InvalidInputError(f"{what} is not a label map (dtype {a.dtype}); give integer class indices")


def check_labels(labels: Sequence[int]) -> list[int]:
    """``labels`` as a list of distinct Python ints ≥ 1."""
    values: list[int] = []
    for v in labels:
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigError(f"labels must be integer values ≥ 1 (0 is background); got {v!r}")
        values.append(int(v))
    if len(set(values)) != len(values):
        raise ConfigError(f"labels listed twice: {sorted({v for v in values if values.count(v) > 1})}")
    return values


def _class_metrics(
    p: npt.NDArray[np.integer],
    r: npt.NDArray[np.integer],
    value: int,
    box_p: Box | None,
    box_r: Box | None,
    spacing: npt.NDArray[np.float64],
    voxel_ml: float,
    tolerance_mm: float,
) -> ClassMetrics:
    box = _union_box(box_p, box_r)
    if box is None:
        return both_empty_metrics(value)
    mask_p = _padded_mask(p, box, value)
    mask_r = _padded_mask(r, box, value)
    tp = int(np.count_nonzero(mask_p & mask_r))
    n_p, n_r = int(np.count_nonzero(mask_p)), int(np.count_nonzero(mask_r))
    counts = Confusion(tp=tp, fp=n_p - tp, fn=n_r - tp)
    dice, iou = dice_from_counts(counts), iou_from_counts(counts)
    precision, recall = precision_from_counts(counts), recall_from_counts(counts)
    volume_ref_ml, volume_pred_ml = n_r * voxel_ml, n_p * voxel_ml
    if n_r == 0 or n_p == 0:
        status: Status = "empty_reference" if n_r == 0 else "empty_prediction"
        return ClassMetrics(
            value, dice, iou, precision, recall, None, None, None, 0.0, volume_ref_ml, volume_pred_ml, status
        )
    d = edge_distances(padded_edges(mask_p), padded_edges(mask_r), spacing)
    hd, hd95, assd = hausdorff_from(d), hausdorff95_from(d), assd_from(d)
    nsd = nsd_from(d, tolerance_mm=tolerance_mm)
    return ClassMetrics(value, dice, iou, precision, recall, hd, hd95, assd, nsd, volume_ref_ml, volume_pred_ml, "ok")


def _union_box(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))


def _padded_mask(labels: npt.NDArray[np.integer], box: Box, value: int) -> npt.NDArray[np.bool_]:
    """``labels[box] == value`` with one background voxel added on every side."""
    crop = labels[box]
    out = np.zeros(tuple(n + 2 for n in crop.shape), dtype=bool)
    np.equal(crop, value, out=out[(slice(1, -1),) * crop.ndim])
    return out

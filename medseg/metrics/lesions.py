"""Lesion-wise detection metrics for tumour-like classes: connected components matched by overlap.

Lesions are the 26-connected components (3D; 8 in 2D) of the reference and predicted masks of one
class. A reference lesion is **detected** (a true positive) if at least one predicted voxel lies in
it; otherwise it is a false negative. A predicted component that touches no reference lesion is a
false positive. Each reference lesion's Dice is taken against the union of the predicted components
that overlap it (0 if undetected), as in the BraTS 2023 lesion-wise evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medseg.errors import InvalidInputError
from medseg.metrics.surface import check_spacing


@dataclass(frozen=True)
class Lesion:
    """One reference lesion.

    Attributes:
        index: component number (1-based, in scan order of the reference mask).
        volume_ref_ml: its volume in mL.
        volume_pred_ml: volume of the predicted components that overlap it, in mL.
        dice: Dice of the lesion against those components (0 if undetected).
    """

    index: int
    volume_ref_ml: float
    volume_pred_ml: float
    dice: float

    @property
    def detected(self) -> bool:
        return self.volume_pred_ml > 0


@dataclass(frozen=True)
class LesionMetrics:
    """Lesion-wise counts and rates of one class of one case.

    Attributes:
        n_ref, n_pred: numbers of reference lesions and predicted components.
        tp: reference lesions detected; fn: reference lesions missed.
        fp: predicted components overlapping no reference lesion.
        sensitivity: detection rate ``tp / n_ref`` (``None`` without reference lesions).
        precision: ``(n_pred - fp) / n_pred``, the fraction of predicted components that hit a
            lesion (``None`` without predicted components).
        f1: ``2·tp / (2·tp + fp + fn)``; 1.0 when there are neither lesions nor predictions.
        lesions: per reference lesion, in component order.
        false_positive_volumes_ml: volume of each false-positive component, in mL.
    """

    n_ref: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    sensitivity: float | None
    precision: float | None
    f1: float
    lesions: tuple[Lesion, ...]
    false_positive_volumes_ml: tuple[float, ...]


def lesion_metrics(
    pred: npt.ArrayLike, ref: npt.ArrayLike, *, spacing_mm: Sequence[float] | npt.ArrayLike
) -> LesionMetrics:
    """Lesion-wise metrics of two binary masks (non-zero = foreground) of the same shape.

    Args:
        pred: predicted mask ``[i, j, k]`` of one class (e.g. ``labels == tumour_value``).
        ref: reference mask, same shape.
        spacing_mm: voxel size along each axis in mm (for volumes).

    Example:
        >>> ref = np.zeros((9, 9, 9), bool); ref[1:3, 1:3, 1:3] = True; ref[6:8, 6:8, 6:8] = True
        >>> pred = np.zeros_like(ref); pred[1:3, 1:3, 1:2] = True; pred[4, 4, 4] = True
        >>> m = lesion_metrics(pred, ref, spacing_mm=(1, 1, 1))
        >>> (m.tp, m.fp, m.fn, m.f1)
        (1, 1, 1, 0.5)
    """
    p = np.asarray(pred) != 0
    r = np.asarray(ref) != 0
    if p.shape != r.shape:
        raise InvalidInputError(f"prediction and reference masks differ in shape: {p.shape} vs {r.shape}")
    voxel_ml = float(np.prod(check_spacing(spacing_mm, p.ndim))) / 1000.0
    box = _bounding_box(p | r)
    structure = np.ones((3,) * p.ndim, dtype=bool)
    lab_r, n_ref = ndimage.label(r[box], structure=structure)
    lab_p, n_pred = ndimage.label(p[box], structure=structure)
    size_r = np.bincount(lab_r.ravel(), minlength=n_ref + 1)
    size_p = np.bincount(lab_p.ravel(), minlength=n_pred + 1)
    both = (lab_r > 0) & (lab_p > 0)
    pairs, overlap = np.unique(lab_r[both].astype(np.int64) * (n_pred + 1) + lab_p[both], return_counts=True)
    pair_r, pair_p = np.divmod(pairs, n_pred + 1)
    inter = np.bincount(pair_r, weights=overlap, minlength=n_ref + 1)
    matched_size = np.bincount(pair_r, weights=size_p[pair_p], minlength=n_ref + 1)
    lesions = tuple(
        Lesion(
            index=i,
            volume_ref_ml=float(size_r[i] * voxel_ml),
            volume_pred_ml=float(matched_size[i] * voxel_ml),
            dice=float(2.0 * inter[i] / (size_r[i] + matched_size[i])),
        )
        for i in range(1, n_ref + 1)
    )
    hit_p = np.zeros(n_pred + 1, dtype=bool)
    hit_p[pair_p] = True
    tp = int(np.count_nonzero(inter[1:] > 0))
    fp_sizes = size_p[1:][~hit_p[1:]]
    fp, fn = int(fp_sizes.size), n_ref - tp
    return LesionMetrics(
        n_ref=n_ref,
        n_pred=n_pred,
        tp=tp,
        fp=fp,
        fn=fn,
        sensitivity=tp / n_ref if n_ref else None,
        precision=(n_pred - fp) / n_pred if n_pred else None,
        f1=2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0,
        lesions=lesions,
        false_positive_volumes_ml=tuple(float(s) * voxel_ml for s in fp_sizes),
    )


def _bounding_box(mask: npt.NDArray[np.bool_]) -> tuple[slice, ...]:
    """Smallest box holding all of ``mask`` (an empty box for an empty mask)."""
    box = ndimage.find_objects(mask.view(np.uint8), max_label=1)[0]
    return box if box is not None else (slice(0, 0),) * mask.ndim

"""Overlap metrics of two binary masks: Dice, IoU, precision, recall (voxel counts, no units).

Counts are ``tp`` (foreground in both), ``fp`` (prediction only) and ``fn`` (reference only).
Empty masks follow ``docs/metrics.md``: both empty → Dice = IoU = 1 (a correct "absent"), exactly
one empty → Dice = IoU = 0; precision (recall) is ``None`` when the prediction (reference) is
empty, since 0/0 says nothing — except that both empty gives 1.0 for both.
Dice equals MONAI 1.6's ``compute_dice(..., ignore_empty=False)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medseg.errors import InvalidInputError


@dataclass(frozen=True)
class Confusion:
    """Voxel counts of a binary prediction against a binary reference."""

    tp: int
    fp: int
    fn: int

    @property
    def n_pred(self) -> int:
        return self.tp + self.fp

    @property
    def n_ref(self) -> int:
        return self.tp + self.fn


def confusion(pred: npt.ArrayLike, ref: npt.ArrayLike) -> Confusion:
    """Count ``tp``, ``fp``, ``fn`` of two masks of the same shape (non-zero = foreground)."""
    p = np.asarray(pred) != 0
    r = np.asarray(ref) != 0
    if p.shape != r.shape:
        raise InvalidInputError(f"prediction and reference masks differ in shape: {p.shape} vs {r.shape}")
    tp = int(np.count_nonzero(p & r))
    return Confusion(tp=tp, fp=int(np.count_nonzero(p)) - tp, fn=int(np.count_nonzero(r)) - tp)


def dice_from_counts(c: Confusion) -> float:
    """``2·tp / (2·tp + fp + fn)``; 1.0 if both masks are empty."""
    denominator = 2 * c.tp + c.fp + c.fn
    return 1.0 if denominator == 0 else 2.0 * c.tp / denominator


def iou_from_counts(c: Confusion) -> float:
    """``tp / (tp + fp + fn)`` (Jaccard); 1.0 if both masks are empty."""
    denominator = c.tp + c.fp + c.fn
    return 1.0 if denominator == 0 else c.tp / denominator


def precision_from_counts(c: Confusion) -> float | None:
    """``tp / (tp + fp)``; 1.0 if both masks are empty, ``None`` if only the prediction is."""
    if c.n_pred == 0:
        return 1.0 if c.n_ref == 0 else None
    return c.tp / c.n_pred


def recall_from_counts(c: Confusion) -> float | None:
    """``tp / (tp + fn)`` (sensitivity); 1.0 if both masks are empty, ``None`` if only the reference is."""
    if c.n_ref == 0:
        return 1.0 if c.n_pred == 0 else None
    return c.tp / c.n_ref


def dice(pred: npt.ArrayLike, ref: npt.ArrayLike) -> float:
    """Dice coefficient of two binary masks (see :func:`dice_from_counts`)."""
    return dice_from_counts(confusion(pred, ref))


def iou(pred: npt.ArrayLike, ref: npt.ArrayLike) -> float:
    """Intersection over union of two binary masks (see :func:`iou_from_counts`)."""
    return iou_from_counts(confusion(pred, ref))


def precision(pred: npt.ArrayLike, ref: npt.ArrayLike) -> float | None:
    """Fraction of predicted voxels that are in the reference (see :func:`precision_from_counts`)."""
    return precision_from_counts(confusion(pred, ref))


def recall(pred: npt.ArrayLike, ref: npt.ArrayLike) -> float | None:
    """Fraction of reference voxels that are predicted (see :func:`recall_from_counts`)."""
    return recall_from_counts(confusion(pred, ref))

"""Segmentation metrics in millimetres, equal to MONAI 1.6's definitions; numpy and scipy only.

Per class: Dice, IoU, precision, recall, volumes, Hausdorff distance (HD), HD95, average symmetric
surface distance (ASSD) and normalised surface Dice (NSD); lesion-wise detection metrics; and the
cohort summary (mean, median, std, bootstrap confidence interval). Formulas and the empty-mask
convention: ``docs/metrics.md``.
"""

from medseg.metrics.case import METRIC_NAMES, ClassMetrics, evaluate_case
from medseg.metrics.lesions import Lesion, LesionMetrics, lesion_metrics
from medseg.metrics.overlap import Confusion, confusion, dice, iou, precision, recall
from medseg.metrics.summary import ClassSummary, MetricStats, bootstrap_ci, summarize
from medseg.metrics.surface import (
    SurfaceDistances,
    assd,
    hausdorff,
    hausdorff95,
    mask_edges,
    nsd,
    surface_distances,
)

__all__ = [
    "METRIC_NAMES",
    "ClassMetrics",
    "ClassSummary",
    "Confusion",
    "Lesion",
    "LesionMetrics",
    "MetricStats",
    "SurfaceDistances",
    "assd",
    "bootstrap_ci",
    "confusion",
    "dice",
    "evaluate_case",
    "hausdorff",
    "hausdorff95",
    "iou",
    "lesion_metrics",
    "mask_edges",
    "nsd",
    "precision",
    "recall",
    "summarize",
    "surface_distances",
]

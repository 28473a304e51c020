"""Cohort summary per class: n, mean, median, std and a bootstrap 95% confidence interval.

Missing values (``None``: distances when exactly one mask is empty, precision or recall when
undefined) are left out of a metric's statistics and counted per status instead, so no ``inf`` or
``nan`` ever reaches a mean. The confidence interval is the percentile bootstrap of the mean
(``n_bootstrap`` resamples of the cases with replacement, a fixed ``seed``): the same inputs always
give the same interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from medseg.metrics.case import METRIC_NAMES, ClassMetrics

#: Statistics also reported for the volume difference (predicted − reference, mL).
SUMMARY_METRICS = (*METRIC_NAMES, "volume_diff_ml")


@dataclass(frozen=True)
class MetricStats:
    """Statistics of one metric over the cases where it is defined.

    Attributes:
        n: number of cases with a value.
        mean, median: ``None`` when ``n == 0``.
        std: sample standard deviation (``ddof=1``); ``None`` when ``n < 2``.
        ci_low, ci_high: bootstrap confidence interval of the mean; ``None`` when ``n == 0``.
    """

    n: int
    mean: float | None
    median: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class ClassSummary:
    """Summary of one class over a cohort.

    Attributes:
        label: label value.
        n_cases: cases evaluated for this class.
        n_both_empty, n_empty_reference, n_empty_prediction: cases with that status.
        stats: metric name (see :data:`SUMMARY_METRICS`) → :class:`MetricStats`.
    """

    label: int
    n_cases: int
    n_both_empty: int
    n_empty_reference: int
    n_empty_prediction: int
    stats: Mapping[str, MetricStats]


def summarize(
    results: Mapping[str, Sequence[ClassMetrics]],
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[ClassSummary]:
    """Summarise per-case results class by class.

    Args:
        results: case name → the case's :class:`ClassMetrics` (as from ``evaluate_case``).
        n_bootstrap: bootstrap resamples for the confidence interval.
        confidence: coverage of the interval (0.95 → 2.5th and 97.5th percentiles).
        seed: seed of the resampling generator.

    Returns:
        One :class:`ClassSummary` per label, sorted by label value.
    """
    by_label: dict[int, list[ClassMetrics]] = {}
    for case in results.values():
        for m in case:
            by_label.setdefault(m.label, []).append(m)
    return [_class_summary(label, ms, n_bootstrap, confidence, seed) for label, ms in sorted(by_label.items())]


def metric_stats(
    values: Sequence[float | None], *, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0
) -> MetricStats:
    """Statistics of the non-missing ``values`` (``None`` entries are skipped)."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return MetricStats(0, None, None, None, None, None)
    low, high = bootstrap_ci(x, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    return MetricStats(
        n=int(x.size),
        mean=float(x.mean()),
        median=float(np.median(x)),
        std=float(x.std(ddof=1)) if x.size > 1 else None,
        ci_low=low,
        ci_high=high,
    )


def bootstrap_ci(
    x: np.ndarray, *, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (1D, non-empty)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1; got {confidence}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_bootstrap, x.size))].mean(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def _class_summary(label: int, ms: list[ClassMetrics], n_bootstrap: int, confidence: float, seed: int) -> ClassSummary:
    statuses = [m.status for m in ms]
    rows = [{**asdict(m), "volume_diff_ml": m.volume_diff_ml} for m in ms]
    stats = {
        name: metric_stats([row[name] for row in rows], n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
        for name in SUMMARY_METRICS
    }
    return ClassSummary(
        label=label,
        n_cases=len(ms),
        n_both_empty=statuses.count("both_empty"),
        n_empty_reference=statuses.count("empty_reference"),
        n_empty_prediction=statuses.count("empty_prediction"),
        stats=stats,
    )

"""Cohort summary: hand-computed statistics, missing values, empty counts, bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.metrics import ClassMetrics, bootstrap_ci, summarize
from medseg.metrics.case import both_empty_metrics


def ok(label: int, dice: float, hd95: float) -> ClassMetrics:
    return ClassMetrics(label, dice, dice, 1.0, dice, hd95, hd95, hd95 / 2, 0.9, 10.0, 12.0, "ok")


def empty_prediction(label: int) -> ClassMetrics:
    return ClassMetrics(label, 0.0, 0.0, None, 0.0, None, None, None, 0.0, 10.0, 0.0, "empty_prediction")


def test_hand_computed_statistics_and_counts() -> None:
    results = {
        "a": [ok(1, 0.8, 2.0), ok(2, 0.5, 4.0)],
        "b": [ok(1, 0.6, 4.0), empty_prediction(2)],
        "c": [ok(1, 1.0, 9.0), both_empty_metrics(2)],
    }
    s1, s2 = summarize(results)
    assert (s1.label, s1.n_cases, s1.n_both_empty, s1.n_empty_reference, s1.n_empty_prediction) == (
        1,
        3,
        0,
        0,
        0,
    )
    dice = s1.stats["dice"]
    assert (dice.n, dice.mean, dice.median) == (3, pytest.approx(0.8), 0.8)
    assert dice.std == pytest.approx(0.2)  # sample standard deviation of 0.6, 0.8, 1.0
    assert s1.stats["hd95"].median == 4.0
    assert s1.stats["volume_diff_ml"].mean == pytest.approx(2.0)
    # class 2: the empty prediction has no distance (left out) but Dice 0 (kept); both-empty counts as perfect
    assert (s2.n_cases, s2.n_both_empty, s2.n_empty_prediction) == (3, 1, 1)
    assert s2.stats["dice"].n == 3 and s2.stats["dice"].mean == pytest.approx(0.5)
    assert s2.stats["hd95"].n == 2 and s2.stats["hd95"].mean == pytest.approx(2.0)
    assert s2.stats["precision"].n == 2


def test_single_value_has_no_std_and_a_point_interval() -> None:
    (s,) = summarize({"only": [ok(3, 0.7, 1.0)]})
    stats = s.stats["dice"]
    assert (stats.n, stats.mean, stats.std, stats.ci_low, stats.ci_high) == (1, 0.7, None, 0.7, 0.7)


def test_metric_missing_everywhere_has_empty_statistics() -> None:
    (s,) = summarize({"a": [empty_prediction(1)], "b": [empty_prediction(1)]})
    hd = s.stats["hd"]
    assert (hd.n, hd.mean, hd.median, hd.std, hd.ci_low, hd.ci_high) == (0, None, None, None, None, None)


def test_bootstrap_interval_is_reproducible_and_close_to_the_normal_interval() -> None:
    x = np.random.default_rng(3).normal(0.8, 0.1, size=400)
    low, high = bootstrap_ci(x, seed=0)
    assert (low, high) == bootstrap_ci(x, seed=0)
    assert (low, high) != bootstrap_ci(x, seed=1)
    half_width = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert low < x.mean() < high
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)

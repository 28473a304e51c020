"""Lesion-wise metrics on hand-built lesions."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.metrics import lesion_metrics


def test_hand_built_lesions() -> None:
    ref = np.zeros((20, 20, 20), bool)
    pred = np.zeros_like(ref)
    ref[1:4, 1:4, 1:4] = True  # lesion 1: 27 voxels, half-hit by one component
    pred[1:4, 1:4, 2:5] = True  # 27 voxels, 18 inside lesion 1
    ref[10:14, 10:12, 10:12] = True  # lesion 2: 16 voxels, hit by two separate components
    pred[10, 10:12, 10:12] = True  # 4 voxels inside lesion 2
    pred[13, 10:12, 10:12] = True  # 4 more, two planes away: a second component
    ref[16, 16, 16] = True  # lesion 3: missed
    pred[18:20, 0:2, 0:2] = True  # a false positive far away, 8 voxels
    m = lesion_metrics(pred, ref, spacing_mm=(2.0, 1.0, 1.0))
    assert (m.n_ref, m.n_pred) == (3, 4)
    assert (m.tp, m.fp, m.fn) == (2, 1, 1)
    assert m.sensitivity == pytest.approx(2 / 3)
    assert m.precision == pytest.approx(3 / 4)
    assert m.f1 == pytest.approx(4 / (4 + 1 + 1))
    l1, l2, l3 = m.lesions
    assert (l1.index, l1.volume_ref_ml, l1.volume_pred_ml) == (1, 0.054, 0.054)
    assert l1.dice == pytest.approx(2 * 18 / (27 + 27))
    assert l2.dice == pytest.approx(2 * 8 / (16 + 8))
    assert l2.volume_pred_ml == pytest.approx(0.016)
    assert (l3.detected, l3.dice, l3.volume_pred_ml) == (False, 0.0, 0.0)
    assert m.false_positive_volumes_ml == pytest.approx((0.016,))


def test_26_connectivity_joins_diagonal_voxels() -> None:
    ref = np.zeros((5, 5, 5), bool)
    ref[1, 1, 1] = ref[2, 2, 2] = True  # corner neighbours: one lesion under 26-connectivity
    m = lesion_metrics(ref, ref, spacing_mm=(1, 1, 1))
    assert (m.n_ref, m.tp, m.fp, m.fn, m.f1) == (1, 1, 0, 0, 1.0)
    assert m.lesions[0].dice == 1.0


def test_no_lesions_and_no_predictions() -> None:
    empty = np.zeros((4, 4, 4), bool)
    m = lesion_metrics(empty, empty, spacing_mm=(1, 1, 1))
    assert (m.n_ref, m.n_pred, m.tp, m.fp, m.fn) == (0, 0, 0, 0, 0)
    assert (m.sensitivity, m.precision, m.f1, m.lesions) == (None, None, 1.0, ())
    only_fp = empty.copy()
    only_fp[0, 0, 0] = True
    m = lesion_metrics(only_fp, empty, spacing_mm=(1, 1, 1))
    assert (m.fp, m.sensitivity, m.precision, m.f1) == (1, None, 0.0, 0.0)

"""Overlap metrics on hand-counted masks."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.metrics import Confusion, confusion, dice, iou, precision, recall


def test_monai_2x2_example_gives_dice_0_8() -> None:
    # tp = 2, fp = 1, fn = 0: Dice = 2·2 / (2·2 + 1) = 0.8.
    pred = np.array([[1, 1], [1, 0]])
    ref = np.array([[1, 1], [0, 0]])
    assert confusion(pred, ref) == Confusion(tp=2, fp=1, fn=0)
    assert dice(pred, ref) == pytest.approx(0.8)
    assert iou(pred, ref) == pytest.approx(2 / 3)
    assert precision(pred, ref) == pytest.approx(2 / 3)
    assert recall(pred, ref) == 1.0


def test_hand_counted_3d_masks() -> None:
    pred = np.zeros((4, 4, 4), bool)
    ref = np.zeros((4, 4, 4), bool)
    pred[0:2, 0:2, 0:2] = True  # 8 voxels
    ref[1:3, 0:2, 0:2] = True  # 8 voxels, 4 shared
    assert confusion(pred, ref) == Confusion(tp=4, fp=4, fn=4)
    assert dice(pred, ref) == 0.5
    assert iou(pred, ref) == pytest.approx(1 / 3)
    assert precision(pred, ref) == 0.5
    assert recall(pred, ref) == 0.5


@pytest.mark.parametrize(
    ("pred_sum", "ref_sum", "expected"),
    [
        pytest.param(0, 0, (1.0, 1.0, 1.0, 1.0), id="both-empty"),
        pytest.param(3, 0, (0.0, 0.0, 0.0, None), id="empty-reference"),
        pytest.param(0, 3, (0.0, 0.0, None, 0.0), id="empty-prediction"),
    ],
)
def test_empty_mask_convention(pred_sum: int, ref_sum: int, expected: tuple) -> None:
    pred = np.zeros(10, bool)
    ref = np.zeros(10, bool)
    pred[:pred_sum] = True
    ref[:ref_sum] = True
    assert (dice(pred, ref), iou(pred, ref), precision(pred, ref), recall(pred, ref)) == expected

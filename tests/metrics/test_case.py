"""evaluate_case: all classes in one pass, equal to the single-metric functions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medseg.errors import ConfigError, InvalidInputError
from medseg.metrics import (
    ClassMetrics,
    assd,
    dice,
    evaluate_case,
    hausdorff,
    hausdorff95,
    iou,
    nsd,
    precision,
    recall,
)


def two_class_maps() -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros((20, 16, 12), np.int16)
    pred = np.zeros_like(ref)
    ref[2:9, 3:10, 2:8] = 1
    pred[3:10, 3:10, 2:8] = 1  # class 1 shifted by one voxel along i
    ref[12:20, 0:6, 5:12] = 2  # class 2 touches three array borders
    pred[13:20, 0:5, 5:12] = 2
    pred[0, 15, 0] = 2  # a far-away false-positive voxel of class 2 in a corner
    return pred, ref


def test_each_class_equals_the_single_metric_functions() -> None:
    pred, ref = two_class_maps()
    spacing = (0.75, 1.5, 3.0)
    results = evaluate_case(pred, ref, spacing_mm=spacing, labels=[2, 1], nsd_tolerance_mm=1.5)
    assert [m.label for m in results] == [2, 1]
    for m in results:
        p, r = pred == m.label, ref == m.label
        assert m.dice == dice(p, r)
        assert m.iou == iou(p, r)
        assert m.precision == precision(p, r)
        assert m.recall == recall(p, r)
        assert m.hd == hausdorff(p, r, spacing_mm=spacing)
        assert m.hd95 == hausdorff95(p, r, spacing_mm=spacing)
        assert m.assd == assd(p, r, spacing_mm=spacing)
        assert m.nsd == nsd(p, r, spacing_mm=spacing, tolerance_mm=1.5)
        assert m.status == "ok"


def test_hand_computed_class_values() -> None:
    pred, ref = two_class_maps()
    spacing = (0.75, 1.5, 3.0)
    m1 = evaluate_case(pred, ref, spacing_mm=spacing, labels=[1])[0]
    # 7×7×6 cubes offset by one voxel along i: tp = 6·7·6, fp = fn = 7·6.
    assert m1.dice == pytest.approx(2 * 252 / (2 * 252 + 84))
    assert m1.hd == m1.hd95 == pytest.approx(0.75)
    voxel_ml = 0.75 * 1.5 * 3.0 / 1000
    assert m1.volume_ref_ml == pytest.approx(294 * voxel_ml)
    assert m1.volume_pred_ml == pytest.approx(294 * voxel_ml)
    assert m1.volume_diff_ml == pytest.approx(0.0)
    m2 = evaluate_case(pred, ref, spacing_mm=spacing, labels=[2])[0]
    # HD: the stray voxel [0, 15, 0] to the nearest reference voxel [12, 5, 5], (12·0.75, 10·1.5, 5·3) mm.
    assert m2.hd == pytest.approx(np.sqrt(9.0**2 + 15.0**2 + 15.0**2), abs=1e-5)


@pytest.mark.parametrize(
    ("in_pred", "in_ref", "status"),
    [
        pytest.param(False, False, "both_empty", id="both-empty"),
        pytest.param(True, False, "empty_reference", id="empty-reference"),
        pytest.param(False, True, "empty_prediction", id="empty-prediction"),
    ],
)
def test_empty_class_statuses(in_pred: bool, in_ref: bool, status: str) -> None:
    ref = np.zeros((6, 6, 6), np.uint8)
    pred = np.zeros_like(ref)
    pred[1:3, 1:3, 1:3] = 5 if in_pred else 0
    ref[2:4, 2:4, 2:4] = 5 if in_ref else 0
    m = evaluate_case(pred, ref, spacing_mm=(2, 2, 2), labels=[5])[0]
    assert m.status == status
    distances = (m.hd, m.hd95, m.assd)
    if status == "both_empty":
        assert (m.dice, m.iou, m.precision, m.recall, m.nsd) == (1.0, 1.0, 1.0, 1.0, 1.0)
        assert distances == (0.0, 0.0, 0.0)
    else:
        assert (m.dice, m.iou, m.nsd) == (0.0, 0.0, 0.0)
        assert distances == (None, None, None)
        assert (m.precision, m.recall) == ((0.0, None) if status == "empty_reference" else (None, 0.0))
    assert m.volume_ref_ml == (0.064 if in_ref else 0.0)
    assert m.volume_pred_ml == (0.064 if in_pred else 0.0)


def test_values_never_inf_or_nan() -> None:
    rng = np.random.default_rng(7)
    pred = rng.integers(0, 4, (9, 9, 9))
    ref = np.where(rng.random((9, 9, 9)) < 0.5, pred, 0)
    for m in evaluate_case(pred, ref, spacing_mm=(1, 2, 3), labels=[1, 2, 3, 4, 9]):
        for value in dataclasses.astuple(m)[1:-1]:
            assert value is None or np.isfinite(value)


def test_float_label_maps_holding_integers_are_accepted() -> None:
    pred, ref = two_class_maps()
    as_int = evaluate_case(pred, ref, spacing_mm=(1, 1, 1), labels=[1, 2])
    as_float = evaluate_case(pred.astype(np.float32), ref.astype(np.float64), spacing_mm=(1, 1, 1), labels=[1, 2])
    assert as_int == as_float


def test_other_values_count_as_background() -> None:
    ref = np.zeros((8, 8, 8), np.int32)
    ref[2:5, 2:5, 2:5] = 1
    pred = ref.copy()
    pred[5:7, 2:5, 2:5] = 2017  # a FreeSurfer-style value not asked for
    pred[0, 0, 0] = -1
    (m,) = evaluate_case(pred, ref, spacing_mm=(1, 1, 1), labels=[1])
    assert (m.dice, m.hd, m.status) == (1.0, 0.0, "ok")


def test_bad_inputs_raise_clear_errors() -> None:
    pred, ref = two_class_maps()
    with pytest.raises(InvalidInputError, match="differ in shape"):
        evaluate_case(pred[:-1], ref, spacing_mm=(1, 1, 1), labels=[1])
    with pytest.raises(InvalidInputError, match="non-integer"):
        evaluate_case(pred + 0.5, ref, spacing_mm=(1, 1, 1), labels=[1])
    with pytest.raises(ConfigError, match="≥ 1"):
        evaluate_case(pred, ref, spacing_mm=(1, 1, 1), labels=[0, 1])
    with pytest.raises(ConfigError, match="twice"):
        evaluate_case(pred, ref, spacing_mm=(1, 1, 1), labels=[1, 1])
    with pytest.raises(InvalidInputError, match="spacing_mm"):
        evaluate_case(pred, ref, spacing_mm=(1, 1), labels=[1])


def test_result_is_a_frozen_dataclass_with_the_agreed_fields() -> None:
    fields = [f.name for f in dataclasses.fields(ClassMetrics)]
    assert fields == [
        "label", "dice", "iou", "precision", "recall", "hd", "hd95", "assd", "nsd",
        "volume_ref_ml", "volume_pred_ml", "status",
    ]  # fmt: skip
    m = evaluate_case(*two_class_maps(), spacing_mm=(1, 1, 1), labels=[1])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.dice = 0.0  # type: ignore[misc]

"""Statistics: hand-computed volumes, intensities, boxes and centroids; JSON + CSV output."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from medseg.errors import GeometryError
from medseg.export import compute_statistics, write_statistics
from medseg.io import Volume
from medseg.labels import LabelSpec

AFFINE = np.array(
    [[0.5, 0, 0, 10.0], [0, 2.0, 0, -4.0], [0, 0, 3.0, 1.0], [0, 0, 0, 1.0]]
)  # 3 mm³ = 0.003 mL


@pytest.fixture
def case():
    labels = np.zeros((4, 3, 2), np.uint8)
    labels[0:2, 0, 0] = 1  # 2 voxels
    labels[3, 1:3, 0:2] = 2  # 4 voxels
    image = np.arange(24, dtype=np.int16).reshape(4, 3, 2)  # value = 6 i + 2 j + k
    return Volume(labels, AFFINE), Volume(image, AFFINE)


def test_hand_computed_rows(case, caplog):
    label, image = case
    spec = LabelSpec.from_mapping({"liver": 1, "spleen": 2, "pancreas": 3})
    with caplog.at_level(logging.WARNING):
        rows = compute_statistics(label, labels=spec, image=image)
    assert "3 (pancreas) are not in the label map" in caplog.text
    liver, spleen, pancreas = rows
    assert (liver.voxel_count, spleen.voxel_count, pancreas.voxel_count) == (2, 4, 0)
    assert liver.volume_ml == pytest.approx(2 * 0.003) and spleen.volume_ml == pytest.approx(4 * 0.003)
    # liver voxels (0,0,0)=0 and (1,0,0)=6; spleen (3,1,0)=20, (3,1,1)=21, (3,2,0)=22, (3,2,1)=23
    assert (liver.mean, liver.std, liver.min, liver.max) == (3.0, 3.0, 0.0, 6.0)
    assert spleen.mean == pytest.approx(21.5) and spleen.std == pytest.approx(np.sqrt(1.25))
    assert liver.bbox_voxel == (0, 1, 0, 0, 0, 0) and spleen.bbox_voxel == (3, 3, 1, 2, 0, 1)
    assert liver.centroid_ras_mm == pytest.approx((10.25, -4.0, 1.0))
    assert spleen.centroid_ras_mm == pytest.approx((11.5, -1.0, 2.5))
    assert pancreas.bbox_voxel is None and pancreas.mean is None and pancreas.volume_ml == 0.0


def test_without_image_and_without_names(case):
    label, _ = case
    rows = compute_statistics(label)
    assert [(r.name, r.voxel_count, r.mean) for r in rows] == [("label_1", 2, None), ("label_2", 4, None)]


def test_image_on_another_grid_is_refused(case):
    label, image = case
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.0
    moved = Volume(image.array, shifted)
    with pytest.raises(GeometryError, match="different grids \\(origin"):
        compute_statistics(label, image=moved)


def test_json_and_csv(case, tmp_path):
    label, image = case
    spec = LabelSpec.from_mapping({"liver": 1, "spleen": 2})
    json_path, csv_path = write_statistics(label, tmp_path / "ct_statistics.json", labels=spec, image=image)
    assert (json_path.name, csv_path.name) == ("ct_statistics.json", "ct_statistics.csv")
    doc = json.loads(json_path.read_text())
    assert doc["voxel_volume_ml"] == pytest.approx(0.003) and doc["structures"][1]["name"] == "spleen"
    assert doc["structures"][1]["bbox_voxel"] == [3, 3, 1, 2, 0, 1]
    table = list(csv.DictReader(csv_path.open()))
    assert [r["name"] for r in table] == ["liver", "spleen"]
    assert float(table[1]["volume_ml"]) == pytest.approx(0.012) and table[0]["bbox_i1"] == "1"

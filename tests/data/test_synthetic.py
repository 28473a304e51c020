"""The phantom dataset maker writes a valid, learnable, reproducible MSD-layout dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medseg.data.synthetic import BODY_INTENSITY, CLASS_STEP, NOISE_SD, make_phantom_dataset
from medseg.io import read_volume


def test_layout_geometry_and_class_intensities(phantom2ch_root: Path) -> None:
    meta = json.loads((phantom2ch_root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T2"}
    assert meta["labels"] == {"background": 0, "blob1": 1, "blob2": 2, "blob3": 3}
    assert meta["numTraining"] == 4 and meta["file_ending"] == ".nii.gz"
    for n in range(4):
        label = read_volume(phantom2ch_root / "labelsTr" / f"phantom_{n:03d}.nii.gz")
        assert label.array.dtype == np.uint8 and label.spacing == (1.0, 1.0, 2.5) and label.orientation == "RAS"
        assert set(np.unique(label.array)) == {0, 1, 2, 3}, "every class present in every case"
        for k in range(2):
            image = read_volume(phantom2ch_root / "imagesTr" / f"phantom_{n:03d}_{k:04d}.nii.gz")
            assert image.same_grid(label)
            for c in (1, 2, 3):
                expected = BODY_INTENSITY + CLASS_STEP * (((c - 1 + k) % 3) + 1)
                mean = float(image.array[label.array == c].mean())
                assert abs(mean - expected) < 4 * NOISE_SD, (n, k, c, mean, expected)


def test_same_seed_same_voxels_other_seed_other_blobs(tmp_path: Path) -> None:
    a = make_phantom_dataset(tmp_path / "a", n_cases=2, shape=(16, 16, 8), seed=7)
    b = make_phantom_dataset(tmp_path / "b", n_cases=2, shape=(16, 16, 8), seed=7)
    c = make_phantom_dataset(tmp_path / "c", n_cases=2, shape=(16, 16, 8), seed=8)
    for name in ("imagesTr/phantom_001_0000.nii.gz", "labelsTr/phantom_001.nii.gz"):
        np.testing.assert_array_equal(read_volume(a / name).array, read_volume(b / name).array)
    assert not np.array_equal(read_volume(a / "labelsTr/phantom_001.nii.gz").array,
                              read_volume(c / "labelsTr/phantom_001.nii.gz").array)

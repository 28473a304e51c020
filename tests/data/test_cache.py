"""The preprocessed cache: computed once, keyed by the plan, memory-mapped, invertible, refreshed when stale."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medseg.data.cache import LOCATIONS_PER_CLASS, PreprocessedCache, class_locations, preprocessing_key
from medseg.data.dataset import load_dataset
from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.transforms.preprocess import invert, preprocess_image, preprocess_label
from tests.data.conftest import copy_dataset

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 3, strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), filters=(8, 16, 32))


def make_plan(dataset, spacing=(1.0, 1.0, 2.5)) -> Plan:  # type: ignore[no-untyped-def]
    return Plan(target_spacing_mm=spacing, patch_size=(16, 16, 8), topology=TOPO, labels=dataset.labels,
                channels=tuple(ChannelNorm(n) for n in dataset.channel_names))


def test_cached_arrays_equal_preprocessing_and_invert_exactly(phantom2ch_root: Path, tmp_path: Path) -> None:
    ds = load_dataset(phantom2ch_root)
    plan = make_plan(ds)
    cache = PreprocessedCache(tmp_path / "cache", plan)
    assert cache.build(ds) == list(ds.case_ids)
    assert cache.case_ids() == list(ds.case_ids) and (cache.folder / "plan.yaml").is_file()
    image, label, info = cache.get("phantom_002")
    assert isinstance(image, np.memmap) and isinstance(label, np.memmap)
    assert image.dtype == np.float32 and label.dtype == np.uint8 and image.shape == (2, *info.shape)
    src_image, src_label = ds.load_case("phantom_002")
    expected, record = preprocess_image(src_image, plan)
    np.testing.assert_array_equal(image, expected.array)
    np.testing.assert_array_equal(label, preprocess_label(src_label, record, plan).array)
    assert info.record.bbox == record.bbox and info.record.resampled_shape == record.resampled_shape
    np.testing.assert_array_equal(info.record.original_affine, record.original_affine)
    np.testing.assert_array_equal(invert(np.asarray(label), info.record, kind="labels"), src_label.array)
    locations = info.class_locations()
    assert sorted(locations) == [1, 2, 3]
    for value, coords in locations.items():
        assert len(coords) == info.class_voxels[value] == np.count_nonzero(label == value)
        assert np.all(label[tuple(coords.T)] == value)


def test_key_depends_only_on_preprocessing_fields(phantom_root: Path) -> None:
    plan = make_plan(load_dataset(phantom_root))
    bigger_patch = replace(plan, patch_size=(32, 32, 16), fingerprint={"n_cases": 4})
    assert preprocessing_key(bigger_patch) == preprocessing_key(plan)
    for changed in (replace(plan, target_spacing_mm=(1.5, 1.5, 2.5)),
                    replace(plan, channels=(ChannelNorm("MR", "none"),)),
                    replace(plan, image_interpolation="linear"),
                    replace(plan, crop_to_nonzero=False)):
        assert preprocessing_key(changed) != preprocessing_key(plan)


def test_second_build_reuses_and_a_changed_source_is_recomputed(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    ds = load_dataset(root)
    cache = PreprocessedCache(tmp_path / "cache", make_plan(ds, spacing=(1.5, 1.5, 2.5)))
    assert len(cache.build(ds)) == 4
    assert cache.build(ds) == []
    label = root / "labelsTr" / "phantom_001.nii.gz"
    st = label.stat()
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache.build(ds) == ["phantom_001"]
    other = PreprocessedCache(tmp_path / "cache", make_plan(ds, spacing=(2.0, 2.0, 2.5)))
    assert other.folder != cache.folder and len(other.build(ds)) == 4
    assert other.get("phantom_000")[0].shape[1:] != cache.get("phantom_000")[0].shape[1:]


def test_parallel_build_matches_serial(phantom_root: Path, tmp_path: Path) -> None:
    ds = load_dataset(phantom_root)
    plan = make_plan(ds, spacing=(1.5, 1.5, 2.0))
    serial, parallel = PreprocessedCache(tmp_path / "a", plan), PreprocessedCache(tmp_path / "b", plan)
    serial.build(ds, case_ids=["phantom_000", "phantom_003"])
    parallel.build(ds, case_ids=["phantom_000", "phantom_003"], jobs=2)
    for cid in ("phantom_000", "phantom_003"):
        for a, b in zip(serial.get(cid)[:2], parallel.get(cid)[:2], strict=True):
            np.testing.assert_array_equal(a, b)


def test_missing_case_is_a_clear_error(phantom_root: Path, tmp_path: Path) -> None:
    cache = PreprocessedCache(tmp_path / "cache", make_plan(load_dataset(phantom_root)))
    with pytest.raises(Exception, match="not in the preprocessed cache"):
        cache.get("phantom_000")


def test_class_locations_are_subsampled_by_count_and_fraction() -> None:
    label = np.zeros((200, 100, 120), np.uint8)
    label[:, :, :100] = 1  # 2 000 000 voxels: 1 % = 20 000 kept
    label[0, 0, 110:115] = 2  # 5 voxels: all kept
    label[10:60, 10:60, 101:110] = 3  # 22 500 voxels: 10 000 kept
    locations, counts = class_locations(label, seed=1)
    assert {v: len(c) for v, c in locations.items()} == {1: 20_000, 2: 5, 3: LOCATIONS_PER_CLASS}
    assert counts == {0: 2_400_000 - 2_000_000 - 5 - 22_500, 1: 2_000_000, 2: 5, 3: 22_500}
    for v, coords in locations.items():
        assert np.all(label[tuple(coords.T)] == v) and len(np.unique(coords, axis=0)) == len(coords)

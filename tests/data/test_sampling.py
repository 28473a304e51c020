"""Acceptance 4: sampled patches hold foreground at least at the configured rate; every class is sampled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.data.cache import PreprocessedCache
from medseg.data.dataset import load_dataset
from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.data.sampling import PatchSampler, crop_padded
from medseg.io import Volume, write_volume

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 3, strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), filters=(8, 16, 32))


@pytest.fixture(scope="module")
def rare_cache(tmp_path_factory: pytest.TempPathFactory) -> PreprocessedCache:
    """3 cases of 64³ (1 mm): class 1 is a 4³ cube in every case, class 2 a 2³ cube in case 0 only.

    A random 12³ patch meets a given cube with probability ≈ (15/53)³ ≈ 2 %, so foreground in
    patches comes almost only from forced sampling.
    """
    root = tmp_path_factory.mktemp("rare") / "ds"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for n, corner in enumerate([(5, 40, 20), (30, 10, 50), (50, 50, 3)]):
        label = np.zeros((64, 64, 64), np.uint8)
        x, y, z = corner
        label[x:x + 4, y:y + 4, z:z + 4] = 1
        if n == 0:
            label[60:62, 2:4, 30:32] = 2
        image = (100 + rng.normal(0, 5, label.shape) + 50 * label).astype(np.float32)
        write_volume(Volume(image, np.eye(4)), root / "imagesTr" / f"rare_{n}_0000.nii.gz")
        write_volume(Volume(label, np.eye(4)), root / "labelsTr" / f"rare_{n}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}, "numTraining": 3,
                                                   "labels": {"background": 0, "big": 1, "tiny": 2}}))
    ds = load_dataset(root)
    plan = Plan(target_spacing_mm=(1.0, 1.0, 1.0), patch_size=(12, 12, 12), channels=(ChannelNorm("MR"),),
                labels=ds.labels, topology=TOPO)
    cache = PreprocessedCache(tmp_path_factory.mktemp("cache"), plan)
    cache.build(ds)
    return cache


@pytest.mark.parametrize("fraction", [pytest.param(0.33, id="nnunet-0.33"), pytest.param(0.5, id="half"),
                                      pytest.param(0.1, id="low")])
def test_foreground_rate_and_class_balance(rare_cache: PreprocessedCache, fraction: float) -> None:
    sampler = PatchSampler(rare_cache, rare_cache.case_ids(), patch_size=(12, 12, 12), foreground_fraction=fraction,
                           rng=np.random.default_rng(42))
    n = 600
    with_fg, forced, centred, seen = 0, 0, {1: 0, 2: 0}, {1: 0, 2: 0}
    for _ in range(n):
        loc = sampler.next_location()
        image, label = sampler.extract(loc.case_id, loc.start, sampler.patch_size)
        assert image.shape == (1, 12, 12, 12) and label.shape == (12, 12, 12)
        with_fg += bool(label.any())
        for v in seen:
            seen[v] += bool((label == v).any())
        if loc.forced:
            forced += 1
            centred[loc.centre_class] += 1  # type: ignore[index]
            assert (label == loc.centre_class).any(), "a forced patch contains the class it was placed on"
    assert forced == int(np.floor(n * fraction)), "the forced share is exact over any run of patches"
    assert with_fg / n >= fraction
    assert with_fg / n < fraction + 0.1, "random patches rarely meet the cubes: the rate comes from forcing"
    assert all(count > 0 for count in seen.values()), "every class is sampled"
    # class balance: the tiny class (8 voxels in one case of three) is centred on about as often as the big one
    assert 0.4 < centred[2] / forced < 0.6


def test_same_seed_same_patches(rare_cache: PreprocessedCache) -> None:
    a, b = (PatchSampler(rare_cache, rare_cache.case_ids(), patch_size=(12, 12, 12), rng=np.random.default_rng(7))
            for _ in range(2))
    for _ in range(20):
        (ia, la), (ib, lb) = a.sample(), b.sample()
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)


def test_case_smaller_than_patch_is_zero_padded(rare_cache: PreprocessedCache) -> None:
    sampler = PatchSampler(rare_cache, ["rare_0"], patch_size=(70, 64, 80), foreground_fraction=0.5,
                           rng=np.random.default_rng(1))
    full_image, full_label, _ = rare_cache.get("rare_0")
    for _ in range(6):
        loc = sampler.next_location()
        assert -6 <= loc.start[0] <= 0 and loc.start[1] == 0 and -16 <= loc.start[2] <= 0
        image, label = sampler.extract(loc.case_id, loc.start, sampler.patch_size)
        x0, z0 = -loc.start[0], -loc.start[2]
        np.testing.assert_array_equal(image[:, x0:x0 + 64, :, z0:z0 + 64], full_image)
        np.testing.assert_array_equal(label[x0:x0 + 64, :, z0:z0 + 64], full_label)
        assert np.count_nonzero(image) == full_image.size and np.count_nonzero(label) == np.count_nonzero(full_label)


def test_crop_padded_by_hand() -> None:
    a = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    out = crop_padded(a, (-1, 2, 3), (3, 3, 3))
    assert out.shape == (2, 3, 3, 3)
    expected = np.zeros((2, 3, 3, 3), a.dtype)
    expected[:, 1:3, 0:2, 0:2] = a[:, 0:2, 2:4, 3:5]
    np.testing.assert_array_equal(out, expected)
    assert not crop_padded(a, (5, 0, 0), (2, 2, 2)).any(), "a box outside the array is all padding"

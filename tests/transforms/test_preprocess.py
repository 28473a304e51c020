"""Preprocessing records what it did, and its inverse lands on the original grid exactly."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.io import Volume, read_volume
from medseg.labels import LabelSpec
from medseg.transforms.preprocess import invert, preprocess_image, preprocess_label
from tests.conftest import shared_path

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 3, strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), filters=(8, 16, 32))


def make_plan(spacing: tuple[float, float, float], *, crop: bool = True) -> Plan:
    return Plan(target_spacing_mm=spacing, patch_size=(16, 16, 16), channels=(ChannelNorm("img"),),
                labels=LabelSpec.from_values([1, 2]), topology=TOPO, crop_to_nonzero=crop)


def odd_affine(
    spacing: tuple[float, float, float], perm: tuple[int, int, int], flips: tuple[int, int, int]
) -> np.ndarray:
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = (rot @ np.eye(3)[:, list(perm)]) * np.asarray(flips) * np.asarray(spacing)
    a[:3, 3] = (12.5, -40.0, 7.25)
    return a


def phantom(shape: tuple[int, int, int]) -> np.ndarray:
    """Two boxes inside a zero border: labels 1 and 2."""
    lab = np.zeros(shape, np.uint8)
    lab[3:-3, 3:-3, 2:-2] = 1
    lab[5:9, 4:8, 3:5] = 2
    return lab


@pytest.mark.parametrize(
    ("perm", "flips", "spacing"),
    [
        pytest.param((0, 1, 2), (1, 1, 1), (1.0, 1.0, 1.0), id="ras-iso"),
        pytest.param((2, 0, 1), (-1, 1, -1), (0.7, 0.7, 5.0), id="permuted-flipped-anisotropic"),
        pytest.param((1, 2, 0), (1, -1, 1), (1.2, 0.9, 2.0), id="oblique-permuted"),
    ],
)
def test_unchanged_spacing_round_trip_is_exact(perm, flips, spacing) -> None:
    lab = phantom((20, 17, 11))
    affine = odd_affine(spacing, perm, flips)
    vol = Volume(lab, affine)
    image = vol.with_array(lab.astype(np.float32) * 3 + (lab > 0))
    target = tuple(float(np.linalg.norm(affine[:3, a])) for a in range(3))
    canonical = [0.0, 0.0, 0.0]
    ornt_axes = np.argmax(np.abs(affine[:3, :3]), axis=0)  # world axis of each voxel axis
    for vox, world in enumerate(ornt_axes):
        canonical[world] = target[vox]
    img_p, record = preprocess_image(image, make_plan(tuple(canonical)))  # type: ignore[arg-type]
    lab_p = preprocess_label(vol, record, make_plan(tuple(canonical)))  # type: ignore[arg-type]
    assert img_p.orientation == "RAS"
    back = invert(lab_p.array, record, kind="labels")
    np.testing.assert_array_equal(back, lab)
    # the network grid is a crop of the original: same world position for the same voxel content
    centre = np.argwhere(lab_p.array == 2).mean(axis=0)
    world_p = lab_p.voxel_to_world(centre)
    world_o = vol.voxel_to_world(np.argwhere(lab == 2).mean(axis=0))
    np.testing.assert_allclose(world_p, world_o, atol=1e-6)


def test_crop_records_the_box_and_inverse_fills_background() -> None:
    lab = phantom((20, 17, 11))
    vol = Volume(lab, np.diag([1.0, 1.0, 1.0, 1.0]))
    img_p, record = preprocess_image(vol.with_array(lab.astype(np.float32)), make_plan((1.0, 1.0, 1.0)))
    assert record.bbox == ((3, 17), (3, 14), (2, 9))
    assert img_p.shape == (14, 11, 7)
    back = invert(np.ones(img_p.shape, np.uint8), record, kind="labels")
    assert back.sum() == 14 * 11 * 7 and back[0, 0, 0] == 0


def test_resampled_grid_keeps_world_extent() -> None:
    vol = Volume(phantom((20, 16, 10)).astype(np.float32), np.diag([0.8, 0.8, 2.5, 1.0]))
    img_p, record = preprocess_image(vol, make_plan((1.6, 1.6, 1.25), crop=False))
    assert img_p.shape == (10, 8, 20)
    # first and last voxel edges coincide in world space
    lo_o = vol.voxel_to_world([-0.5, -0.5, -0.5])
    lo_p = img_p.voxel_to_world([-0.5, -0.5, -0.5])
    hi_o = vol.voxel_to_world(np.array(vol.shape) - 0.5)
    hi_p = img_p.voxel_to_world(np.array(img_p.shape) - 0.5)
    np.testing.assert_allclose(lo_p, lo_o, atol=1e-9)
    np.testing.assert_allclose(hi_p, hi_o, atol=1e-9)
    assert record.slow_axis == 2


def test_channel_count_mismatch_is_a_clear_error() -> None:
    vol = Volume(np.zeros((2, 8, 8, 8), np.float32), np.eye(4))
    with pytest.raises(Exception, match="expects 1 channel"):
        preprocess_image(vol, make_plan((1.0, 1.0, 1.0)))


def test_real_resample_round_trip_dice() -> None:
    """0.8×0.8×2.5-like anisotropic real label map → 1.5 mm → back: Dice ≥ 0.98 per class."""
    lab = read_volume(shared_path("totalsegmentator_example", "ct_full", "label_total_fast.nii.gz"))
    values = [v for v in np.unique(lab.array) if v]
    big = [v for v in values if (lab.array == v).sum() > 2000]
    plan = Plan(target_spacing_mm=(2.0, 2.0, 2.0), patch_size=(16, 16, 16), channels=(ChannelNorm("CT"),),
                labels=LabelSpec.from_values(values), topology=TOPO)
    _, record = preprocess_image(lab.with_array(lab.array.astype(np.float32) + 1), plan)
    back = invert(preprocess_label(lab, record, plan).array, record, kind="labels")
    for v in big:
        a, b = back == v, lab.array == v
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert dice >= 0.98, (v, dice)

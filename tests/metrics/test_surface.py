"""Boundary extraction and surface distances: hand-computed cases and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medseg.errors import InvalidInputError
from medseg.metrics import assd, hausdorff, hausdorff95, mask_edges, nsd, surface_distances


def cube(shape: tuple[int, int, int], start: tuple[int, int, int], side: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tuple(slice(s, s + side) for s in start)] = True
    return m


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["i", "j", "k"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_cubes_offset_by_k_voxels_give_hd_and_hd95_of_k_times_spacing(axis: int, k: int) -> None:
    spacing = (0.7, 1.3, 2.5)
    ref = cube((16, 16, 16), (3, 3, 3), 6)
    pred = np.roll(ref, k, axis=axis)
    expected = k * spacing[axis]
    assert hausdorff(pred, ref, spacing_mm=spacing) == pytest.approx(expected, abs=1e-6)
    assert hausdorff95(pred, ref, spacing_mm=spacing) == pytest.approx(expected, abs=1e-6)


def test_disjoint_2x2x2_cubes_hand_computed_assd_and_nsd() -> None:
    # Each voxel of a 2x2x2 cube is a boundary voxel. Shifted by 4 along i (spacing 1.5 mm),
    # half of each cube's 8 voxels lie 3 voxels (4.5 mm) from the other cube, half 4 voxels (6 mm).
    ref = cube((10, 4, 4), (1, 1, 1), 2)
    pred = cube((10, 4, 4), (5, 1, 1), 2)
    spacing = (1.5, 1.0, 1.0)
    d = surface_distances(pred, ref, spacing_mm=spacing)
    assert d is not None
    assert sorted(d.pred_to_ref.tolist()) == [4.5] * 4 + [6.0] * 4
    assert sorted(d.ref_to_pred.tolist()) == [4.5] * 4 + [6.0] * 4
    assert assd(pred, ref, spacing_mm=spacing) == pytest.approx(5.25)
    assert hausdorff(pred, ref, spacing_mm=spacing) == 6.0
    assert hausdorff95(pred, ref, spacing_mm=spacing) == 6.0
    assert nsd(pred, ref, spacing_mm=spacing, tolerance_mm=4.5) == 0.5
    assert nsd(pred, ref, spacing_mm=spacing, tolerance_mm=4.4) == 0.0


def test_sphere_against_itself_is_perfect() -> None:
    grid = np.indices((21, 21, 21)) - 10
    sphere = (grid**2).sum(axis=0) <= 8**2
    spacing = (0.8, 0.8, 3.0)
    assert hausdorff(sphere, sphere, spacing_mm=spacing) == 0.0
    assert hausdorff95(sphere, sphere, spacing_mm=spacing) == 0.0
    assert assd(sphere, sphere, spacing_mm=spacing) == 0.0
    assert nsd(sphere, sphere, spacing_mm=spacing, tolerance_mm=0.0) == 1.0


def test_mask_edges_is_mask_minus_its_6_connected_erosion(rng: np.random.Generator) -> None:
    for _ in range(10):
        mask = ndimage.binary_opening(rng.random((12, 9, 7)) > 0.4)
        assert np.array_equal(mask_edges(mask), mask ^ ndimage.binary_erosion(mask))


def test_mask_edges_2d_hand_case() -> None:
    mask = np.zeros((4, 5), bool)
    mask[:, 1:4] = True  # touches the top and bottom of the array: those rows are boundary
    expected = [[0, 1, 1, 1, 0], [0, 1, 0, 1, 0], [0, 1, 0, 1, 0], [0, 1, 1, 1, 0]]
    assert mask_edges(mask).astype(int).tolist() == expected


def test_distances_equal_brute_force_over_all_boundary_pairs(rng: np.random.Generator) -> None:
    spacing = np.array([0.6, 1.1, 2.7])
    for _ in range(10):
        pred = ndimage.binary_dilation(rng.random((10, 12, 8)) > 0.93)
        ref = ndimage.binary_dilation(rng.random((10, 12, 8)) > 0.93)
        d = surface_distances(pred, ref, spacing_mm=spacing)
        assert d is not None
        pts_p = np.argwhere(mask_edges(pred)) * spacing
        pts_r = np.argwhere(mask_edges(ref)) * spacing
        pairwise = np.linalg.norm(pts_p[:, None, :] - pts_r[None, :, :], axis=-1)
        np.testing.assert_array_equal(d.pred_to_ref, pairwise.min(axis=1).astype(np.float32))
        np.testing.assert_array_equal(d.ref_to_pred, pairwise.min(axis=0).astype(np.float32))


def test_nsd_counts_grid_ties_at_the_tolerance() -> None:
    # 3 × 0.4 mm is 1.2000000000000002 in float64; the boundary voxels 3 steps away must count
    # as within a 1.2 mm tolerance (as in MONAI, which stores distances as float32).
    ref = cube((12, 3, 3), (1, 1, 1), 1)
    pred = cube((12, 3, 3), (4, 1, 1), 1)
    assert nsd(pred, ref, spacing_mm=(0.4, 1.0, 1.0), tolerance_mm=1.2) == 1.0


@pytest.mark.parametrize(
    ("pred_empty", "ref_empty", "expected_distance", "expected_nsd"),
    [
        pytest.param(True, True, 0.0, 1.0, id="both-empty"),
        pytest.param(False, True, None, 0.0, id="empty-reference"),
        pytest.param(True, False, None, 0.0, id="empty-prediction"),
    ],
)
def test_empty_mask_convention(pred_empty: bool, ref_empty: bool, expected_distance, expected_nsd) -> None:
    full = cube((8, 8, 8), (2, 2, 2), 3)
    empty = np.zeros_like(full)
    pred, ref = (empty if pred_empty else full), (empty if ref_empty else full)
    for metric in (hausdorff, hausdorff95, assd):
        assert metric(pred, ref, spacing_mm=(1, 1, 1)) == expected_distance
    assert nsd(pred, ref, spacing_mm=(1, 1, 1), tolerance_mm=2.0) == expected_nsd
    assert (surface_distances(pred, ref, spacing_mm=(1, 1, 1)) is None) is (pred_empty or ref_empty)


@pytest.mark.parametrize(
    "spacing",
    [
        pytest.param((1.0, 1.0), id="too-few"),
        pytest.param((1.0, 0.0, 1.0), id="zero"),
        pytest.param((1.0, float("nan"), 1.0), id="nan"),
    ],
)
def test_bad_spacing_is_rejected(spacing: tuple[float, ...]) -> None:
    mask = cube((5, 5, 5), (1, 1, 1), 2)
    with pytest.raises(InvalidInputError, match="spacing_mm must be 3 positive finite"):
        hausdorff95(mask, mask, spacing_mm=spacing)


def test_shape_mismatch_and_negative_tolerance_are_rejected() -> None:
    a = cube((5, 5, 5), (1, 1, 1), 2)
    with pytest.raises(InvalidInputError, match="differ in shape"):
        assd(a, a[:4], spacing_mm=(1, 1, 1))
    with pytest.raises(InvalidInputError, match="tolerance"):
        nsd(a, a, spacing_mm=(1, 1, 1), tolerance_mm=-1.0)

"""The :class:`Volume` contract: geometry derived from the affine, exactly as nibabel defines it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medseg.errors import GeometryError
from medseg.io import Volume, grid_difference
from tests.io.synthetic import AFFINES


def test_properties_of_a_hand_written_lps_affine() -> None:
    # DICOM-like LPS grid: i → Left (RAS -x), j → Posterior (RAS -y), k → Superior; 0.5 × 0.8 × 3 mm
    affine = np.array([[-0.5, 0, 0, 100.0], [0, -0.8, 0, 50.0], [0, 0, 3.0, -20.0], [0, 0, 0, 1]])
    volume = Volume(np.zeros((2, 3, 4), np.float32), affine)
    assert volume.shape == (2, 3, 4)
    assert volume.n_channels == 1 and not volume.is_multichannel
    assert volume.spacing == (0.5, 0.8, 3.0)
    assert volume.origin == (100.0, 50.0, -20.0)
    np.testing.assert_array_equal(volume.direction, np.diag([-1.0, -1.0, 1.0]))
    assert volume.orientation == "LPS"
    assert not volume.is_oblique
    assert volume.voxel_volume_ml == pytest.approx(0.5 * 0.8 * 3.0 / 1000)
    # voxel (1, 2, 3) sits 0.5 mm left, 1.6 mm posterior, 9 mm superior of the origin
    np.testing.assert_allclose(volume.voxel_to_world([1, 2, 3]), [99.5, 48.4, -11.0])
    np.testing.assert_allclose(volume.world_to_voxel([99.5, 48.4, -11.0]), [1, 2, 3])


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in AFFINES])
def test_world_to_voxel_inverts_voxel_to_world(name: str, rng) -> None:
    volume = Volume(np.zeros((3, 3, 3)), AFFINES[name])
    ijk = rng.uniform(-5, 20, size=(50, 3))
    np.testing.assert_allclose(volume.world_to_voxel(volume.voxel_to_world(ijk)), ijk, atol=1e-9)
    # direction × spacing rebuilds the affine's 3×3 part
    np.testing.assert_allclose(volume.direction * volume.spacing, AFFINES[name][:3, :3], atol=1e-12)
    assert volume.is_oblique == name.startswith("oblique")


def test_channel_first_array() -> None:
    volume = Volume(np.zeros((2, 4, 5, 6), np.float32), np.eye(4))
    assert volume.shape == (4, 5, 6)
    assert volume.n_channels == 2 and volume.is_multichannel


@pytest.mark.parametrize(("array", "affine", "message"), [
    pytest.param(np.zeros((4, 4)), np.eye(4), "needs 3 spatial axes", id="2d-array"),
    pytest.param(np.zeros((1, 2, 3, 4, 5)), np.eye(4), "needs 3 spatial axes", id="5d-array"),
    pytest.param(np.zeros((2, 2, 2)), np.eye(3), r"affine shape must be \(4, 4\), not \(3, 3\)", id="3x3-affine"),
    pytest.param(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]), "zero-length voxel axis", id="zero-spacing"),
    pytest.param(np.zeros((2, 2, 2)), np.full((4, 4), np.nan), "NaN or infinite", id="nan-affine"),
])
def test_invalid_volumes_are_refused(array: np.ndarray, affine: np.ndarray, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        Volume(array, affine)


def test_volume_is_frozen_and_with_array_keeps_the_grid() -> None:
    volume = Volume(np.zeros((2, 3, 4), np.int16), AFFINES["oblique"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        volume.affine = np.eye(4)  # type: ignore[misc]
    labels = volume.with_array(np.ones((2, 3, 4), np.uint8))
    assert labels.same_grid(volume) and labels.array.dtype == np.uint8
    with pytest.raises(GeometryError, match=r"spatial shape \(3, 3, 4\), expected \(2, 3, 4\)"):
        volume.with_array(np.ones((3, 3, 4)))


def test_grid_difference_says_what_differs() -> None:
    a = Volume(np.zeros((2, 3, 4)), np.diag([0.8, 0.8, 2.5, 1.0]))
    assert grid_difference(a, a) is None
    thicker = Volume(np.zeros((2, 3, 4)), np.diag([0.8, 0.8, 5.0, 1.0]))
    assert grid_difference(a, thicker) == "spacing 0.8×0.8×2.5 vs 0.8×0.8×5 mm"
    moved = Volume(np.zeros((2, 3, 4)), a.affine + np.pad(np.array([[3.0], [4.0], [0.0]]), ((0, 1), (3, 0))))
    assert grid_difference(a, moved) == "origin 0×0×0 vs 3×4×0 mm (5 mm apart)"
    flipped = Volume(np.zeros((2, 3, 4)), np.diag([-0.8, 0.8, 2.5, 1.0]))
    assert grid_difference(a, flipped) == "direction RAS vs LAS (cosines differ)"
    assert grid_difference(a, Volume(np.zeros((2, 3, 5)), a.affine)) == "shape (2, 3, 4) vs (2, 3, 5)"

"""Eight voxel-axis orientations of one brain show the same content in world space (issue 2, acceptance 3).

``niivue_samples/orientation_permutations`` holds one low-resolution brain stored as RAS, LAS, LPS,
LPI, PIR, ASL, IPL and SRA. World points inside the head (taken from the RAS file) are mapped into
each file with :meth:`Volume.world_to_voxel` and sampled there; every file must give the RAS file's
values, by nearest neighbour (exactly) and by trilinear interpolation between voxels.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from medseg.io import Volume, read_volume
from tests.conftest import shared_path

ORIENTATIONS = ["RAS", "LAS", "LPS", "LPI", "PIR", "ASL", "IPL", "SRA"]
OTHERS = [pytest.param(code, id=code) for code in ORIENTATIONS if code != "RAS"]


def load(code: str) -> Volume:
    return read_volume(shared_path("niivue_samples", "orientation_permutations", f"{code}.nii.gz"))


@pytest.fixture(scope="module")
def reference() -> tuple[Volume, np.ndarray]:
    """The RAS file and world points (RAS mm) at every 5th voxel centre inside the head."""
    ras = load("RAS")
    inside = np.argwhere(ras.array > 20)[::5]  # about half the voxels are head; > 16,000 points
    assert len(inside) > 10_000
    return ras, ras.voxel_to_world(inside)


@pytest.mark.parametrize("code", OTHERS)
def test_file_is_stored_in_its_named_orientation(code: str) -> None:
    volume = load(code)
    assert volume.orientation == code
    ras = load("RAS")
    assert sorted(volume.spacing) == pytest.approx(sorted(ras.spacing), abs=1e-5)
    assert volume.voxel_volume_ml == pytest.approx(ras.voxel_volume_ml, rel=1e-6)


@pytest.mark.parametrize("code", OTHERS)
def test_nearest_samples_at_the_same_world_points_are_identical(code: str, reference) -> None:
    ras, points = reference
    volume = load(code)
    ijk = volume.world_to_voxel(points)
    nearest = np.rint(ijk)
    # the files are exact permutations: voxel centres land on voxel centres
    assert np.abs(ijk - nearest).max() < 1e-4
    ras_index = tuple(np.rint(ras.world_to_voxel(points)).astype(int).T)
    np.testing.assert_array_equal(volume.array[tuple(nearest.astype(int).T)], ras.array[ras_index])


@pytest.mark.parametrize("code", OTHERS)
def test_trilinear_samples_between_voxels_agree(code: str, reference) -> None:
    ras, points = reference
    shifted = points + np.array([0.9, -0.7, 1.3])  # off the voxel centres (spacing ≈ 2.4 mm)
    expected = map_coordinates(ras.array, ras.world_to_voxel(shifted).T, order=1, mode="nearest")
    volume = load(code)
    got = map_coordinates(volume.array, volume.world_to_voxel(shifted).T, order=1, mode="nearest")
    assert np.ptp(expected) > 50  # the points sample real anatomy, not a constant
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)

"""``describe_volume``: the numbers and warnings behind ``medseg info``."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.io import Volume, VolumeMeta, read_volume
from medseg.io.inspect import describe_volume
from tests.conftest import shared_path
from tests.io.synthetic import AFFINES

CT = VolumeMeta(modality="CT")


def test_report_of_a_hand_built_volume() -> None:
    array = np.zeros((4, 5, 6), np.int16)
    array[1, 2, 3] = 40
    array[0, 0, 0] = -10
    report = describe_volume(Volume(array, AFFINES["permuted"]))
    assert report.shape == (4, 5, 6)
    assert report.spacing_mm == pytest.approx((0.6, 0.9, 1.5))
    assert report.origin_mm == (12.0, -80.0, 33.0)
    assert report.direction == ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0))  # i → A, j → I, k → R
    assert report.orientation == "AIR"
    assert (report.intensity_min, report.intensity_max) == (-10.0, 40.0)
    assert report.intensity_mean == pytest.approx(30 / 120)
    assert report.n_unique == 3
    assert report.dtype == "int16"
    assert report.warnings == ()


def test_oblique_flair_is_flagged() -> None:
    report = describe_volume(read_volume(shared_path("niivue_samples", "flair_lesion", "FLAIR.nii.gz")))
    assert report.warnings == ("oblique grid (closest orientation RAS); medseg keeps it exact, other tools may not",)


def test_thick_slices_are_flagged_as_anisotropic() -> None:
    report = describe_volume(read_volume(shared_path("pyradiomics_testcases", "brain1_image.nrrd")))
    assert report.warnings == ("strongly anisotropic voxels (8.3:1, spacing 0.781×0.781×6.5 mm)",)


def test_anisotropy_of_exactly_3_is_not_flagged() -> None:
    assert describe_volume(Volume(np.zeros((2, 2, 2)), np.diag([1.0, 1.0, 3.0, 1.0]))).warnings == ()


def test_nan_and_inf_are_counted_and_left_out_of_the_range() -> None:
    array = np.linspace(-1, 1, 60, dtype=np.float32).reshape(3, 4, 5)
    array[0, 0, :3] = np.nan
    array[2, 3, 4] = np.inf
    array[1, 1, 1] = -np.inf
    report = describe_volume(Volume(array, np.eye(4)))
    assert report.warnings == ("5 voxels are NaN or infinite; fix or mask them before training or inference",)
    finite = array[np.isfinite(array)]
    assert (report.intensity_min, report.intensity_max) == (float(finite.min()), float(finite.max()))
    assert np.isfinite(report.intensity_mean)
    assert report.n_unique is None  # not counted for floating-point images


def test_real_ct_in_hounsfield_units_gives_no_warning() -> None:
    volume = read_volume(shared_path("dcmqi_segmentations", "ct-3slice", "dicom"))
    report = describe_volume(volume)
    assert report.modality == "CT"
    assert (report.intensity_min, report.intensity_max) == (-3024.0, 1381.0)  # -3024 = padding outside the FOV
    assert report.warnings == ()


def test_ct_without_rescale_intercept_is_flagged(rng) -> None:
    stored = rng.integers(0, 3000, size=(8, 8, 4)).astype(np.int16)  # stored values, intercept -1024 forgotten
    report = describe_volume(Volume(stored, np.eye(4), CT))
    assert report.warnings == (
        "CT values are all ≥ 0: looks like stored values without RescaleIntercept, not Hounsfield units",
    )


def test_ct_values_beyond_the_plausible_range_are_flagged() -> None:
    hu = np.full((10, 10, 10), 40, np.int16)
    hu[0, :, :] = -1024  # air
    hu[1, :2, :] = 30000  # 20 voxels of garbage (2 %)
    report = describe_volume(Volume(hu, np.eye(4), CT))
    assert report.warnings == ("20 CT voxels lie outside the plausible range -1100..4000 HU",)


def test_hu_check_only_applies_to_ct() -> None:
    mr = np.full((4, 4, 4), 3000, np.int16)
    assert describe_volume(Volume(mr, np.eye(4), VolumeMeta(modality="MR"))).warnings == ()

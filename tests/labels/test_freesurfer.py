"""FreeSurfer label numbers → the 16 brain classes, and the generator's lookup tables."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.errors import InvalidInputError
from medseg.io import read_volume
from medseg.labels.freesurfer import (
    BRAIN_CLASSES,
    FREESURFER_LUT_SIZE,
    TISSUE_CSF,
    TISSUE_DEEP,
    TISSUE_GM,
    TISSUE_NONE,
    TISSUE_WM,
    brain16_lut,
    brain_label_spec,
    freesurfer_to_brain16,
    intensity_group_lut,
    skull_strip_lut,
    tissue_lut,
)
from tests.conftest import shared_path

# The issue's table, written out independently of the module.
ISSUE_TABLE = {
    1: [2, 41], 2: [3, 42], 3: [4, 5, 43, 44], 4: [7, 46], 5: [8, 47], 6: [10, 49], 7: [11, 50],
    8: [12, 51], 9: [13, 52], 10: [14], 11: [15], 12: [16], 13: [17, 53], 14: [18, 54], 15: [26, 58],
    16: [28, 60],
}


def test_class_names_and_order() -> None:
    assert BRAIN_CLASSES == (
        "cerebral_white_matter", "cerebral_cortex", "lateral_ventricle", "cerebellum_white_matter",
        "cerebellum_cortex", "thalamus", "caudate", "putamen", "pallidum", "third_ventricle",
        "fourth_ventricle", "brainstem", "hippocampus", "amygdala", "accumbens", "ventral_dc",
    )
    spec = brain_label_spec()
    assert spec.names == dict(enumerate(BRAIN_CLASSES, start=1))
    assert spec.get(2).color == (205, 62, 78)  # FreeSurfer's cortex colour


def test_issue_table_values_map_to_their_class() -> None:
    for value, fs_labels in ISSUE_TABLE.items():
        assert freesurfer_to_brain16(np.array(fs_labels)).tolist() == [value] * len(fs_labels)


@pytest.mark.parametrize(
    ("fs_value", "expected"),
    [
        pytest.param(0, 0, id="unknown"),
        pytest.param(24, 0, id="csf"),
        pytest.param(31, 0, id="choroid-plexus"),
        pytest.param(85, 0, id="optic-chiasm"),
        pytest.param(507, 0, id="synthseg-extracerebral"),
        pytest.param(1000, 2, id="desikan-first"),
        pytest.param(1035, 2, id="desikan-lh-last"),
        pytest.param(1036, 0, id="after-desikan-lh"),
        pytest.param(2035, 2, id="desikan-rh-last"),
        pytest.param(11100, 2, id="destrieux-first"),
        pytest.param(11175, 2, id="destrieux-lh-last"),
        pytest.param(11176, 0, id="after-destrieux-lh"),
        pytest.param(12175, 2, id="destrieux-rh-last"),
        pytest.param(251, 1, id="corpus-callosum"),
        pytest.param(255, 1, id="corpus-callosum-anterior"),
        pytest.param(77, 1, id="wm-hypointensities"),
        pytest.param(FREESURFER_LUT_SIZE - 1, 0, id="last-table-entry"),
    ],
)
def test_other_values(fs_value: int, expected: int) -> None:
    assert int(freesurfer_to_brain16(np.array([fs_value]))[0]) == expected


def test_float_labels_and_shape_kept() -> None:
    out = freesurfer_to_brain16(np.array([[2.0, 42.0], [0.0, 12150.0]], dtype=np.float32))
    assert out.dtype == np.uint8
    assert out.tolist() == [[1, 2], [0, 2]]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param([2.5], "fractional", id="fractional"),
        pytest.param([-1], "-1..", id="negative"),
        pytest.param([FREESURFER_LUT_SIZE], "FreeSurfer label numbers", id="too-large"),
    ],
)
def test_bad_values_raise(values: list[float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        freesurfer_to_brain16(np.array(values), source="seg.nii.gz")
    assert "seg.nii.gz" in str(info.value)


def test_intensity_groups_merge_hemispheres_and_parcels() -> None:
    groups = intensity_group_lut()
    assert [int(groups[v]) for v in (2, 41, 3, 42, 1024, 2024, 11150, 12150, 252, 4, 43, 507, 24)] == [
        2, 2, 3, 3, 3, 3, 3, 3, 2, 4, 4, 507, 24,
    ]


def test_skull_strip_roles() -> None:
    roles = skull_strip_lut()
    brain = [2, 41, 3, 42, 4, 14, 16, 17, 25, 57, 136, 163, 251, 1001, 12170]
    outside = [0, 98, 118, 121, 130, 502, 507, 511, 515, 530]
    assert all(roles[v] == 1 for v in brain)
    assert all(roles[v] == 0 for v in outside)
    assert roles[24] == 2


def test_tissue_classes_of_both_hemispheres() -> None:
    lut = tissue_lut()
    expected = {
        TISSUE_WM: (2, 41, 7, 46, 251, 255),
        TISSUE_GM: (3, 42, 8, 47, 11, 50, 12, 51, 17, 53, 18, 54, 26, 58, 1035, 2035, 11101, 12175),
        TISSUE_CSF: (4, 43, 5, 44, 14, 15, 24),
        TISSUE_DEEP: (10, 49, 13, 52, 16, 28, 60),
        TISSUE_NONE: (0, 25, 57, 30, 62, 31, 63, 77, 136, 163, 507, 530),
    }
    for tissue, values in expected.items():
        assert [int(lut[v]) for v in values] == [tissue] * len(values), tissue
    # every value of the 16 classes has a tissue, except white-matter lesions (their own intensity)
    with_class = set(np.flatnonzero(brain16_lut()).tolist())
    assert with_class - set(np.flatnonzero(lut).tolist()) == {77, 78, 79}


def test_freesurfer_subject_maps_to_all_16_classes() -> None:
    """aparc.a2009s+aseg of the shared subject: every class present with an adult-sized volume."""
    volume = read_volume(shared_path("niivue_samples", "freesurfer_subject", "aparc.a2009s+aseg.mgz"))
    classes = freesurfer_to_brain16(volume.array)
    counts = np.bincount(classes.ravel(), minlength=17)
    ml = dict(zip(BRAIN_CLASSES, counts[1:] * volume.voxel_volume_ml, strict=True))
    # Plausible adult volumes (mL): wide ranges around published FreeSurfer norms.
    plausible = {
        "cerebral_white_matter": (350, 600), "cerebral_cortex": (350, 600), "lateral_ventricle": (5, 60),
        "cerebellum_white_matter": (15, 40), "cerebellum_cortex": (70, 130), "thalamus": (10, 20),
        "caudate": (5, 10), "putamen": (7, 13), "pallidum": (2.5, 5), "third_ventricle": (0.3, 3),
        "fourth_ventricle": (0.8, 3), "brainstem": (15, 28), "hippocampus": (6, 10), "amygdala": (2, 4.5),
        "accumbens": (0.6, 2), "ventral_dc": (6, 11),
    }
    in_range = {name: lo <= ml[name] <= hi for name, (lo, hi) in plausible.items()}
    assert in_range == dict.fromkeys(plausible, True), ml
    # Every voxel with a listed FreeSurfer value (or a parcel, CC, WM hypointensity) got its class.
    a = volume.array
    cortex = (a == 3) | (a == 42) | ((a >= 11100) & (a <= 11175)) | ((a >= 12100) & (a <= 12175))
    wm = np.isin(a, [2, 41, 77, 78, 79, 251, 252, 253, 254, 255])
    assert counts[2] == int(cortex.sum())
    assert counts[1] == int(wm.sum())
    assert counts[3] == int(np.isin(a, [4, 5, 43, 44]).sum())

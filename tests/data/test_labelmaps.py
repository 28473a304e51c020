"""Label maps prepared for synthesis: RAS, exact affine, cropped, majority-vote resampled, compact."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medseg.data.labelmaps import majority_resample, prepare_label_map, prepare_label_maps
from medseg.errors import InvalidInputError
from medseg.io import Volume, read_volume, write_volume
from medseg.labels.freesurfer import BRAIN_CLASSES, freesurfer_to_brain16
from tests.conftest import shared_path


def phantom_ras(shape: tuple[int, int, int] = (20, 24, 16)) -> np.ndarray:
    """FreeSurfer-valued blocks inside a zero border (RAS voxel order)."""
    lab = np.zeros(shape, np.int16)
    lab[3:17, 4:20, 2:14] = 507  # head
    lab[5:15, 6:18, 4:12] = 2  # white matter
    lab[5:8, 6:9, 4:6] = 17  # hippocampus, in a corner: orientation-sensitive
    lab[12:15, 15:18, 10:12] = 530
    return lab


def reoriented(lab: np.ndarray, affine: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray]:
    """The same world content stored with axis codes ``codes`` (e.g. "LIA")."""
    ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                           nib.orientations.axcodes2ornt(tuple(codes)))
    array = nib.orientations.apply_orientation(lab, ornt)
    return array, affine @ nib.orientations.inv_ornt_aff(ornt, lab.shape)


RAS_AFFINE = np.array([[1.0, 0, 0, -10.0], [0, 1.5, 0, 20.5], [0, 0, 2.0, -7.25], [0, 0, 0, 1]])


@pytest.mark.parametrize("codes", [
    pytest.param("RAS", id="ras"),
    pytest.param("LIA", id="lia-freesurfer"),
    pytest.param("LPS", id="lps"),
    pytest.param("SRP", id="permuted-flipped"),
])
def test_any_orientation_gives_the_same_ras_map(codes: str) -> None:
    array, affine = reoriented(phantom_ras(), RAS_AFFINE, codes)
    out = prepare_label_map(Volume(array, affine), spacing_mm=None, margin_mm=0.0)
    expected = phantom_ras()[3:17, 4:20, 2:14]
    shift = np.eye(4)
    shift[:3, 3] = [3, 4, 2]
    assert out.orientation == "RAS"
    np.testing.assert_array_equal(out.array, expected)
    np.testing.assert_allclose(out.affine, RAS_AFFINE @ shift, rtol=0, atol=1e-12)
    assert out.array.dtype == np.int16


def test_uncropped_matches_nibabel_closest_canonical() -> None:
    array, affine = reoriented(phantom_ras(), RAS_AFFINE, "LIA")
    out = prepare_label_map(Volume(array, affine), spacing_mm=None, margin_mm=100.0)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
    np.testing.assert_array_equal(out.array, np.asarray(canonical.dataobj))
    np.testing.assert_array_equal(out.affine, canonical.affine)


def test_margin_in_mm_rounds_up_to_voxels() -> None:
    lab = phantom_ras()
    out = prepare_label_map(Volume(lab, RAS_AFFINE), spacing_mm=None, margin_mm=3.0)
    # margins: ceil(3 / 1) = 3, ceil(3 / 1.5) = 2, ceil(3 / 2) = 2 voxels, clipped to the array
    np.testing.assert_array_equal(out.array, lab[0:20, 2:22, 0:16])
    first = RAS_AFFINE[:3, :3] @ [0, 2, 0] + RAS_AFFINE[:3, 3]
    np.testing.assert_allclose(out.voxel_to_world([0, 0, 0]), first)


def test_majority_vote_by_hand() -> None:
    lab = np.full((4, 2, 2), 9)
    lab[:2] = 3
    lab[0, 0, 0] = lab[0, 1, 0] = lab[1, 0, 0] = lab[1, 1, 1] = lab[0, 0, 1] = 7  # 5 of 8 in block 0
    assert majority_resample(lab, (2.0, 2.0, 2.0)).tolist() == [[[7]], [[9]]]


def test_majority_tie_goes_to_the_label_near_the_footprint() -> None:
    """4 vs 4 votes in both blocks; the tent term counts the neighbouring slab (label 6) once."""
    lab = np.zeros((4, 2, 2), np.int16)
    lab[0], lab[1], lab[2], lab[3] = 5, 6, 6, 8
    assert majority_resample(lab, (2.0, 2.0, 2.0))[:, 0, 0].tolist() == [6, 6]


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param([5, 6, 6], [5, 6], id="clear"),
    pytest.param([5, 6, 5], [5, 5], id="middle-shared"),
])
def test_majority_with_non_integer_factor(line: list[int], expected: list[int]) -> None:
    """f = 1.5: footprints [-0.5, 1.0] and [1.0, 2.5] share voxel 1 half-half."""
    lab = np.array(line).reshape(3, 1, 1)
    assert majority_resample(lab, (1.5, 1.0, 1.0))[:, 0, 0].tolist() == expected


def test_downsampled_geometry_is_exact() -> None:
    """Output voxel o is centred on input position (o + 0.5) f - 0.5 of the RAS input (f = 2)."""
    lab = np.zeros((12, 12, 12), np.uint8)
    lab[2:10, 2:10, 2:10] = 41
    affine = np.array([[-1.0, 0, 0, 50], [0, 0, 1, -30], [0, -1.0, 0, 40], [0, 0, 0, 1]])  # LIA at 1 mm
    out = prepare_label_map(Volume(lab, affine), spacing_mm=2.0, margin_mm=0.0)
    ras = Volume(*reversed(reoriented_inverse(lab, affine)))
    crop_start = np.array([2, 2, 2])
    for o in ([0, 0, 0], [3, 1, 2]):
        expected = ras.voxel_to_world(crop_start + (np.array(o) + 0.5) * 2 - 0.5)
        np.testing.assert_allclose(out.voxel_to_world(o), expected, atol=1e-12)
    assert out.spacing == (2.0, 2.0, 2.0)
    assert out.shape == (4, 4, 4)
    assert (out.array == 41).all()
    assert out.array.dtype == np.uint8


def reoriented_inverse(lab: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(affine, array) of the closest-canonical version, via nibabel."""
    img = nib.as_closest_canonical(nib.Nifti1Image(lab, affine))
    return img.affine, np.asarray(img.dataobj)


def test_files_round_trip_and_float_storage(tmp_path: Path) -> None:
    lab, affine = reoriented(phantom_ras(), RAS_AFFINE, "LIA")
    src = tmp_path / "seg_float.nii.gz"
    nib.save(nib.Nifti1Image(lab.astype(np.float32), affine), src)  # as some SynthSeg maps are stored
    [out] = prepare_label_maps([src], tmp_path / "prepared", spacing_mm=None, margin_mm=0.0)
    assert out == tmp_path / "prepared" / "seg_float.nii.gz"
    back = read_volume(out)
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, phantom_ras()[3:17, 4:20, 2:14])


def test_fractional_values_are_refused_with_the_file_named(tmp_path: Path) -> None:
    src = tmp_path / "blurred.nii.gz"
    write_volume(Volume(np.full((4, 4, 4), 2.5, np.float32), np.eye(4)), src)
    with pytest.raises(InvalidInputError, match="fractional") as info:
        prepare_label_maps([src], tmp_path / "out", spacing_mm=2.0)
    assert "blurred.nii.gz" in str(info.value)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        write_volume(Volume(phantom_ras(), RAS_AFFINE), tmp_path / d / "seg.nii.gz")
    with pytest.raises(InvalidInputError, match="same file name"):
        prepare_label_maps([tmp_path / "a" / "seg.nii.gz", tmp_path / "b" / "seg.nii.gz"], tmp_path / "out",
                           spacing_mm=None)


def test_real_training_map_at_2mm(tmp_path: Path) -> None:
    """A float32-stored SynthSeg map (LIA, 1 mm) → RAS 2 mm int16; class volumes within 10 % (the
    majority vote shrinks small structures by up to ~8 %), the brain's centroid in place."""
    src = shared_path("synthseg_labelmaps", "training_label_maps", "training_seg_01.nii.gz")
    [out] = prepare_label_maps([src], tmp_path, spacing_mm=2.0)
    original, prepared = read_volume(src), read_volume(out)
    assert prepared.orientation == "RAS"
    np.testing.assert_allclose(prepared.spacing, (2.0, 2.0, 2.0), rtol=0, atol=1e-9)
    assert prepared.array.dtype == np.int16
    assert set(np.unique(prepared.array)) <= set(np.unique(original.array).astype(int))
    ml_1mm, ml_2mm = (np.bincount(freesurfer_to_brain16(v.array).ravel(), minlength=17) * v.voxel_volume_ml
                      for v in (original, prepared))
    ratio = dict(zip(BRAIN_CLASSES, ml_2mm[1:] / ml_1mm[1:], strict=True))
    assert {k: bool(0.9 < r < 1.1) for k, r in ratio.items()} == dict.fromkeys(BRAIN_CLASSES, True), ratio

    def centroid(v: Volume) -> np.ndarray:
        return v.voxel_to_world(np.argwhere(freesurfer_to_brain16(v.array) > 0).mean(axis=0))

    assert np.linalg.norm(centroid(original) - centroid(prepared)) < 0.25  # mm; measured 0.16

"""read → write → read keeps voxels and geometry for every format (issue 2, acceptance 2).

Synthetic volumes cover oblique, left-handed, flipped, permuted and anisotropic grids; real files
from ``../shared/data`` cover what scanners and other tools actually write. NIfTI written by medseg
is checked with nibabel's header (sform == qform, code 1) and with SimpleITK (same geometry), NRRD
with pynrrd, so the expected geometry never comes only from medseg's own readers.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from medseg.io import Volume, read_volume, write_volume
from tests.conftest import shared_path
from tests.io.synthetic import AFFINES, RAS_FROM_LPS

EXTENSIONS = [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".mgz", ".mgh"]
EXT_PARAMS = [pytest.param(ext, id=ext.lstrip(".")) for ext in EXTENSIONS]
AFFINE_PARAMS = [pytest.param(name, id=name) for name in AFFINES]
ATOL_AFFINE = 1e-5  # mm: NIfTI and MGH store the affine as float32


def roundtrip(volume: Volume, path: Path) -> Volume:
    write_volume(volume, path)
    return read_volume(path)


def assert_same_volume(a: Volume, b: Volume, *, same_dtype: bool = True) -> None:
    assert b.array.shape == a.array.shape
    if same_dtype:
        assert b.array.dtype == a.array.dtype
    # np.array_equal: assert_array_equal takes a second on a 256³ FreeSurfer volume
    assert np.array_equal(b.array, a.array), f"{np.count_nonzero(b.array != a.array)} voxels differ"
    np.testing.assert_allclose(b.affine, a.affine, atol=ATOL_AFFINE, rtol=0)


# --- synthetic volumes ----------------------------------------------------------------------------
@pytest.mark.parametrize("ext", EXT_PARAMS)
@pytest.mark.parametrize("name", AFFINE_PARAMS)
def test_synthetic_roundtrip_keeps_array_and_affine(tmp_path: Path, ext: str, name: str, rng) -> None:
    volume = Volume(rng.normal(50, 20, (5, 6, 7)).astype(np.float32), AFFINES[name])
    back = roundtrip(volume, tmp_path / f"v{ext}")
    assert_same_volume(volume, back)
    assert back.orientation == volume.orientation
    assert back.array.dtype.isnative


# integer label maps: dtype kept where the format has it; otherwise the smallest integer type
LABEL_CASES = [
    pytest.param(np.uint8, 255, {}, id="uint8"),
    pytest.param(np.int16, -300, {}, id="int16-negative"),
    pytest.param(np.uint16, 40_000, {".mgz": np.int32, ".mgh": np.int32}, id="uint16"),
    pytest.param(np.int32, 70_000, {}, id="int32"),
    pytest.param(np.int64, 300, {"*": np.int16}, id="int64-to-int16"),
    pytest.param(np.bool_, 1, {"*": np.uint8}, id="bool-to-uint8"),
]


@pytest.mark.parametrize("ext", EXT_PARAMS)
@pytest.mark.parametrize(("dtype", "extreme", "expected"), LABEL_CASES)
def test_label_maps_keep_an_integer_dtype(tmp_path: Path, ext: str, dtype, extreme: int, expected: dict) -> None:
    labels = np.zeros((4, 5, 6), dtype=dtype)
    labels[1:3, 2:4, 1:5] = 1
    labels[0, 0, 0] = extreme
    back = roundtrip(Volume(labels, AFFINES["oblique"]), tmp_path / f"labels{ext}")
    want = np.dtype(expected.get(ext, expected.get("*", dtype)))
    assert back.array.dtype == want
    np.testing.assert_array_equal(back.array, labels.astype(want))


@pytest.mark.parametrize("ext", EXT_PARAMS)
def test_multichannel_roundtrip(tmp_path: Path, ext: str, rng) -> None:
    volume = Volume(rng.normal(size=(3, 4, 5, 6)).astype(np.float32), AFFINES["permuted"])
    back = roundtrip(volume, tmp_path / f"mc{ext}")
    assert back.n_channels == 3
    assert back.shape == (4, 5, 6)
    assert_same_volume(volume, back)


def test_big_endian_array_is_written_and_read_in_native_order(tmp_path: Path) -> None:
    """MGH is big-endian on disk: a volume read from .mgz must write to NRRD/MHA (SimpleITK
    refuses '>i4') and come back native."""
    labels = np.arange(120, dtype=">i4").reshape(4, 5, 6)
    mgz = roundtrip(Volume(labels, AFFINES["flipped"]), tmp_path / "labels.mgz")
    assert mgz.array.dtype == np.dtype("=i4")
    for ext in (".nrrd", ".mha", ".nii.gz"):
        back = roundtrip(mgz, tmp_path / f"labels{ext}")
        assert back.array.dtype == np.dtype("=i4")
        np.testing.assert_array_equal(back.array, labels)


# --- NIfTI header policy, checked with nibabel and SimpleITK ---------------------------------------
@pytest.mark.parametrize("name", AFFINE_PARAMS)
def test_nifti_sform_equals_qform_with_code_1(tmp_path: Path, name: str) -> None:
    path = write_volume(Volume(np.zeros((3, 4, 5), np.int16), AFFINES[name]), tmp_path / "v.nii.gz")
    header = nib.load(path).header
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    assert (int(scode), int(qcode)) == (1, 1)
    np.testing.assert_allclose(sform, AFFINES[name], atol=ATOL_AFFINE, rtol=0)
    np.testing.assert_allclose(qform, sform, atol=ATOL_AFFINE, rtol=0)
    assert header.get_xyzt_units()[0] == "mm"
    left_handed = np.linalg.det(AFFINES[name][:3, :3]) < 0
    assert header["pixdim"][0] == (-1 if left_handed else 1)  # qfac


@pytest.mark.parametrize("name", AFFINE_PARAMS)
def test_nifti_written_by_medseg_loads_in_simpleitk_with_the_same_geometry(tmp_path: Path, name: str, rng) -> None:
    volume = Volume(rng.integers(0, 1000, (3, 4, 5)).astype(np.int16), AFFINES[name])
    path = write_volume(volume, tmp_path / "v.nii.gz")
    image = sitk.ReadImage(str(path))
    # ITK is LPS with a row-major direction whose columns are the voxel axes; convert by hand
    direction_ras = RAS_FROM_LPS @ np.asarray(image.GetDirection()).reshape(3, 3)
    origin_ras = RAS_FROM_LPS @ np.asarray(image.GetOrigin())
    np.testing.assert_allclose(image.GetSpacing(), volume.spacing, atol=ATOL_AFFINE, rtol=0)
    np.testing.assert_allclose(origin_ras, volume.origin, atol=ATOL_AFFINE, rtol=0)
    np.testing.assert_allclose(direction_ras, volume.direction, atol=ATOL_AFFINE, rtol=0)
    np.testing.assert_array_equal(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)), volume.array)


@pytest.mark.parametrize("name", AFFINE_PARAMS)
def test_nrrd_written_by_medseg_has_lps_geometry_for_pynrrd(tmp_path: Path, name: str) -> None:
    volume = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), AFFINES[name])
    data, header = nrrd.read(str(write_volume(volume, tmp_path / "v.nrrd")))
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(RAS_FROM_LPS @ np.asarray(header["space directions"]).T, volume.affine[:3, :3],
                               atol=ATOL_AFFINE, rtol=0)
    np.testing.assert_allclose(RAS_FROM_LPS @ header["space origin"], volume.origin, atol=ATOL_AFFINE, rtol=0)
    np.testing.assert_array_equal(data, volume.array)


# --- real files -------------------------------------------------------------------------------------
REAL_FILES = [
    pytest.param(("pyradiomics_testcases", "brain1_image.nrrd"), id="pyradiomics-brain1-image"),
    pytest.param(("pyradiomics_testcases", "brain1_label.nrrd"), id="pyradiomics-brain1-label"),
    pytest.param(("totalsegmentator_example", "ct_sm", "image.nii.gz"), id="totalseg-ct"),
    pytest.param(("totalsegmentator_example", "ct_sm", "label_total.nii.gz"), id="totalseg-labels"),
    pytest.param(("niivue_samples", "flair_lesion", "FLAIR.nii.gz"), id="niivue-flair-oblique"),
]


@pytest.mark.parametrize("parts", REAL_FILES)
def test_real_file_roundtrips_through_every_format(tmp_path: Path, parts: tuple[str, ...]) -> None:
    original = read_volume(shared_path(*parts))
    for ext in EXTENSIONS:
        assert_same_volume(original, roundtrip(original, tmp_path / f"copy{ext}"))


def test_freesurfer_mgz_labels_roundtrip(tmp_path: Path) -> None:
    aparc = read_volume(shared_path("niivue_samples", "freesurfer_subject", "aparc.a2009s+aseg.mgz"))
    assert aparc.orientation == "LIA"
    assert aparc.array.dtype == np.int32
    assert np.count_nonzero(np.bincount(aparc.array.ravel())) == 189  # distinct labels (PROVENANCE.md)
    for ext in (".mgz", ".nii"):
        assert_same_volume(aparc, roundtrip(aparc, tmp_path / f"aparc{ext}"))


def test_pyradiomics_label_keeps_int32_and_the_image_grid() -> None:
    image = read_volume(shared_path("pyradiomics_testcases", "brain1_image.nrrd"))
    label = read_volume(shared_path("pyradiomics_testcases", "brain1_label.nrrd"))
    assert (image.array.dtype, label.array.dtype) == (np.int16, np.int32)
    assert image.same_grid(label)
    assert int(label.array.sum()) == 4137  # PROVENANCE.md: tumour ROI voxels
    # NRRD header: space LPS, directions diag(0.78125, -0.78125, 6.5) → RAS diag(-0.78125, 0.78125, 6.5)
    np.testing.assert_allclose(image.affine[:3, :3], np.diag([-0.78125, 0.78125, 6.5]), atol=1e-9)
    assert image.orientation == "LAS"


def test_flair_nifti_and_nrrd_give_the_same_array_and_affine() -> None:
    nii = read_volume(shared_path("niivue_samples", "flair_lesion", "FLAIR.nii.gz"))
    nrrd_volume = read_volume(shared_path("niivue_samples", "flair_lesion", "FLAIR.nrrd"))
    assert nii.is_oblique
    assert nii.array.dtype == nrrd_volume.array.dtype == np.uint8
    np.testing.assert_array_equal(nii.array, nrrd_volume.array)
    np.testing.assert_allclose(nii.affine, nrrd_volume.affine, atol=ATOL_AFFINE, rtol=0)

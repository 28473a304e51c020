"""DICOM series: geometry as SimpleITK's own series reader and dcm2niix see it, HU, several series,
zips, compressed transfer syntaxes, and the series medseg must refuse (issue 2, acceptance 4)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid

from medseg.errors import InvalidInputError
from medseg.io import read_volume
from tests.conftest import shared_path
from tests.io.synthetic import RAS_FROM_LPS, ras_affine_of_series, write_ct_series

CT_3SLICE = ("dcmqi_segmentations", "ct-3slice", "dicom")
T1_SAG = ("dcm_qa_decubitus", "HFS_t1_fl2d_sag")


def simpleitk_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Voxels ``[i, j, k]`` and voxel → RAS affine from SimpleITK's own series reader, converted by hand."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    affine = np.eye(4)
    affine[:3, :3] = RAS_FROM_LPS @ np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    affine[:3, 3] = RAS_FROM_LPS @ np.asarray(image.GetOrigin())
    return np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)), affine


# --- real series vs SimpleITK and dcm2niix ------------------------------------------------------------
@pytest.mark.parametrize("parts", [pytest.param(T1_SAG, id="mr-t1-sagittal"), pytest.param(CT_3SLICE, id="ct-3slice")])
def test_series_matches_simpleitk_series_reader(parts: tuple[str, ...]) -> None:
    folder = shared_path(*parts)
    volume = read_volume(folder)
    voxels, affine = simpleitk_series(folder)
    np.testing.assert_array_equal(volume.array, voxels)
    np.testing.assert_allclose(volume.affine, affine, atol=1e-5, rtol=0)


def test_sagittal_mr_matches_dcm2niix_sidecar() -> None:
    volume = read_volume(shared_path(*T1_SAG))
    sidecar_path = shared_path("dcm_qa_decubitus", "dcm2niix_sidecar_t1_fl2d_sag_20220407150138.json")
    sidecar = json.loads(sidecar_path.read_text())
    assert volume.shape == (256, 256, 35)
    assert volume.spacing[2] == pytest.approx(sidecar["SpacingBetweenSlices"], abs=1e-5)  # 4.8 mm
    assert volume.spacing[:2] == pytest.approx((1.015625, 1.015625), abs=1e-6)
    # ImageOrientationPatient = direction of i then j, in LPS
    iop = np.asarray(sidecar["ImageOrientationPatientDICOM"], dtype=float)
    lps_direction = RAS_FROM_LPS @ volume.direction
    np.testing.assert_allclose(lps_direction[:, 0], iop[:3], atol=1e-6)
    np.testing.assert_allclose(lps_direction[:, 1], iop[3:], atol=1e-6)
    assert volume.orientation == "PIR"
    assert volume.meta.modality == sidecar["Modality"]
    assert volume.meta.header["patient_position"] == sidecar["PatientPosition"]
    assert len(volume.meta.sop_instance_uids) == 35


def test_ct_is_in_hounsfield_units() -> None:
    folder = shared_path(*CT_3SLICE)
    volume = read_volume(folder)
    assert volume.meta.modality == "CT"
    assert volume.meta.study_uid and volume.meta.frame_of_reference_uid
    assert volume.array.dtype == np.int16
    assert (int(volume.array.min()), int(volume.array.max())) == (-3024, 1381)
    # RescaleIntercept -1024 applied to the stored values, slice by slice along k
    for k, uid in enumerate(volume.meta.sop_instance_uids):
        ds = next(d for d in map(pydicom.dcmread, sorted(folder.glob("*.dcm"))) if d.SOPInstanceUID == uid)
        assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
        np.testing.assert_array_equal(volume.array[:, :, k], ds.pixel_array.T.astype(np.int32) - 1024)
    liver = read_volume(shared_path("dcmqi_segmentations", "ct-3slice", "seg_nrrd", "liver_seg.nrrd"))
    assert volume.same_grid(liver)
    mean_liver_hu = float(volume.array[liver.array == 1].mean())
    assert 20 < mean_liver_hu < 80  # PROVENANCE.md: 37 HU, soft tissue


def test_single_dcm_file_reads_its_whole_series() -> None:
    folder = shared_path(*CT_3SLICE)
    whole = read_volume(folder)
    one = read_volume(folder / "02.dcm")
    np.testing.assert_array_equal(one.array, whole.array)
    np.testing.assert_array_equal(one.affine, whole.affine)


def test_enhanced_multiframe_mr_reads() -> None:
    path = shared_path("niivue_samples", "dicom_enhanced", "enh.dcm")
    volume = read_volume(path)
    ds = pydicom.dcmread(path)
    assert volume.shape == (64, 64, 6)
    np.testing.assert_array_equal(volume.array, np.transpose(ds.pixel_array, (2, 1, 0)))  # frames → k
    first = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient
    np.testing.assert_allclose(volume.origin, RAS_FROM_LPS @ np.asarray(first, dtype=float), atol=1e-4)
    assert volume.spacing == pytest.approx((3.375, 3.375, 2.4), abs=1e-6)


# --- synthetic series: hand-computed geometry, rescale, refusals -----------------------------------------
GEOMETRY = {
    "origin_lps": (-30.5, 12.25, 80.0),
    # oblique: rows along (cos 20°, sin 20°, 0), columns along z-tilted y
    "row_dir_lps": (np.cos(0.35), np.sin(0.35), 0.0),
    "col_dir_lps": (-np.sin(0.35) * np.cos(0.2), np.cos(0.35) * np.cos(0.2), -np.sin(0.2)),
    "pixel_spacing": (0.8, 0.6),  # row spacing (along j) ≠ column spacing (along i)
}


def slice_step(distance_mm: float) -> np.ndarray:
    return np.cross(GEOMETRY["row_dir_lps"], GEOMETRY["col_dir_lps"]) * distance_mm


@pytest.fixture
def stored(rng) -> np.ndarray:
    return rng.integers(0, 2000, size=(6, 5, 4)).astype(np.int16)  # [i, j, k], not square in-plane


def test_synthetic_oblique_series_has_the_hand_computed_affine(tmp_path: Path, stored: np.ndarray) -> None:
    write_ct_series(tmp_path, stored, slice_step_lps=slice_step(2.5), **GEOMETRY)
    volume = read_volume(tmp_path)
    expected = ras_affine_of_series(slice_step_lps=slice_step(2.5), **GEOMETRY)
    np.testing.assert_allclose(volume.affine, expected, atol=1e-5, rtol=0)
    assert volume.spacing == pytest.approx((0.6, 0.8, 2.5), abs=1e-6)
    np.testing.assert_array_equal(volume.array, stored.astype(np.int32) - 1024)
    assert volume.meta.modality == "CT"


def test_rescale_slope_and_intercept_are_applied(tmp_path: Path, stored: np.ndarray) -> None:
    write_ct_series(tmp_path, stored, slice_step_lps=slice_step(2.0), slope=0.5, intercept=-1000.25, **GEOMETRY)
    volume = read_volume(tmp_path)
    assert volume.array.dtype.kind == "f"  # fractional rescale keeps the precision
    np.testing.assert_allclose(volume.array, stored * 0.5 - 1000.25, atol=1e-4)


def test_slices_stacked_against_the_normal_are_sorted_by_position(tmp_path: Path, stored: np.ndarray) -> None:
    """Positions decreasing along the normal: k must follow the normal, data flipped accordingly."""
    step = slice_step(-3.0)
    write_ct_series(tmp_path, stored, slice_step_lps=step, **GEOMETRY)
    volume = read_volume(tmp_path)
    last = np.asarray(GEOMETRY["origin_lps"]) + 3 * step  # the most negative slice comes first
    expected = ras_affine_of_series(**{**GEOMETRY, "origin_lps": last}, slice_step_lps=-step)
    np.testing.assert_allclose(volume.affine, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(volume.array, stored[:, :, ::-1].astype(np.int32) - 1024)


def test_gantry_tilt_is_refused(tmp_path: Path, stored: np.ndarray) -> None:
    # each slice moves 2.5 mm along the normal and 1 mm along the column direction: a 21.8° tilt
    step = slice_step(2.5) + np.asarray(GEOMETRY["col_dir_lps"]) * 1.0
    write_ct_series(tmp_path, stored, slice_step_lps=step, **GEOMETRY)
    with pytest.raises(InvalidInputError, match=r"gantry tilt of 21\.80°") as info:
        read_volume(tmp_path)
    assert info.value.path == str(tmp_path)
    assert "dcm2niix" in str(info.value)


def test_missing_slice_is_refused(tmp_path: Path, rng) -> None:
    stored = rng.integers(0, 100, size=(4, 4, 8)).astype(np.int16)
    write_ct_series(tmp_path, stored, slice_step_lps=slice_step(2.0), skip=[5], **GEOMETRY)
    with pytest.raises(InvalidInputError, match=r"4 mm between slices .* 2 mm \(about 1 missing slice\(s\)\)"):
        read_volume(tmp_path)


def test_missing_slice_in_real_series_is_refused(tmp_path: Path) -> None:
    files = shared_path(*T1_SAG).glob("*.dcm")
    # sagittal slices: the normal is -x (LPS), so positions differ in x
    ordered = sorted(files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[0]))
    for f in ordered[:17] + ordered[18:]:
        shutil.copy(f, tmp_path / f.name)
    with pytest.raises(InvalidInputError, match=r"9\.6 mm between slices .* 4\.8 mm \(about 1 missing slice"):
        read_volume(tmp_path)


def test_repeated_slice_positions_are_refused(tmp_path: Path, stored: np.ndarray) -> None:
    write_ct_series(tmp_path / "echo1", stored, slice_step_lps=slice_step(2.0), series_uid="1.2.3.4", **GEOMETRY)
    write_ct_series(tmp_path / "echo2", stored, slice_step_lps=slice_step(2.0), series_uid="1.2.3.4", **GEOMETRY)
    with pytest.raises(InvalidInputError, match="slice positions occur more than once"):
        read_volume(tmp_path)


# --- several series in one folder -----------------------------------------------------------------------
@pytest.fixture
def two_series(tmp_path: Path) -> tuple[Path, str, str]:
    """The real CT series twice: the copy gets a new SeriesInstanceUID and description."""
    folder = tmp_path / "study"
    source = shared_path(*CT_3SLICE)
    original_uid = str(pydicom.dcmread(source / "01.dcm", stop_before_pixels=True).SeriesInstanceUID)
    copy_uid = generate_uid()
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for f in sorted(source.glob("*.dcm")):
        shutil.copy(f, folder / "a" / f.name)
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SeriesDescription = copy_uid, "copy for the test"
        ds.SOPInstanceUID = generate_uid()
        ds.PixelData = (ds.pixel_array + 7).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(folder / "b" / f.name)
    return folder, original_uid, copy_uid


def test_several_series_give_an_error_listing_each(two_series: tuple[Path, str, str]) -> None:
    folder, original_uid, copy_uid = two_series
    with pytest.raises(InvalidInputError) as info:
        read_volume(folder)
    message = str(info.value)
    assert "folder holds 2 DICOM series" in message
    assert "--series-uid" in message
    assert f"{original_uid} (CT, " in message and f"{copy_uid} (CT, 'copy for the test', 3 files)" in message


def test_series_uid_picks_one(two_series: tuple[Path, str, str]) -> None:
    folder, original_uid, copy_uid = two_series
    original = read_volume(folder, series_uid=original_uid)
    copy = read_volume(folder, series_uid=copy_uid)
    reference = read_volume(shared_path(*CT_3SLICE))
    assert original.meta.series_uid == original_uid and copy.meta.series_uid == copy_uid
    np.testing.assert_array_equal(original.array, reference.array)
    np.testing.assert_array_equal(copy.array, reference.array + 7)
    assert copy.same_grid(original)


def test_unknown_series_uid_lists_the_series(two_series: tuple[Path, str, str]) -> None:
    folder, original_uid, copy_uid = two_series
    with pytest.raises(InvalidInputError, match="no series with UID 9.9.9") as info:
        read_volume(folder, series_uid="9.9.9")
    assert original_uid in str(info.value) and copy_uid in str(info.value)


# --- zip archives ------------------------------------------------------------------------------------------
def test_zip_of_a_series_reads_identically(tmp_path: Path) -> None:
    folder = shared_path(*CT_3SLICE)
    archive = tmp_path / "ct.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.glob("*.dcm")):
            zf.write(f, f"export/series 1/{f.name}")
    from_zip, from_folder = read_volume(archive), read_volume(folder)
    np.testing.assert_array_equal(from_zip.array, from_folder.array)
    np.testing.assert_array_equal(from_zip.affine, from_folder.affine)
    assert from_zip.meta.source == str(archive)
    assert from_zip.meta.sop_instance_uids == from_folder.meta.sop_instance_uids


# --- compressed transfer syntaxes -------------------------------------------------------------------------------
def _compressed_copy(tmp_path: Path, syntax) -> Path:
    out = tmp_path / syntax.name.replace(" ", "_")
    out.mkdir()
    for f in sorted(shared_path(*CT_3SLICE).glob("*.dcm")):
        ds = pydicom.dcmread(f)
        try:
            ds.compress(syntax)
        except (RuntimeError, NotImplementedError) as exc:  # encoder plugin not installed
            pytest.skip(f"cannot encode {syntax.name} here: {exc}")
        ds.save_as(out / f.name)
    return out


@pytest.mark.parametrize("syntax", [
    pytest.param(RLELossless, id="rle-lossless"),
    pytest.param(JPEG2000Lossless, id="jpeg2000-lossless"),
    pytest.param(JPEGLSLossless, id="jpeg-ls-lossless"),
])
def test_compressed_series_decodes_to_the_same_pixels(tmp_path: Path, syntax) -> None:
    folder = _compressed_copy(tmp_path, syntax)
    assert pydicom.dcmread(folder / "01.dcm", stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    volume, reference = read_volume(folder), read_volume(shared_path(*CT_3SLICE))
    assert volume.meta.header["transfer_syntax"] == syntax
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_array_equal(volume.affine, reference.affine)


def test_undecodable_compressed_data_names_the_syntax(tmp_path: Path) -> None:
    folder = _compressed_copy(tmp_path, JPEG2000Lossless)
    for f in folder.glob("*.dcm"):  # cut every JPEG 2000 codestream short
        ds = pydicom.dcmread(f)
        frame = b"".join(next(pydicom.encaps.generate_fragmented_frames(ds.PixelData)))
        ds.PixelData = pydicom.encaps.encapsulate([frame[:200] + b"\0" * 56])
        ds.save_as(f)
    with pytest.raises(InvalidInputError, match=r"cannot decode the JPEG 2000 .*Lossless Only\) pixel data") as info:
        read_volume(folder)
    assert info.value.path == str(folder)
    assert "gdcmconv --raw" in str(info.value)


# --- what else sits in real DICOM folders ---------------------------------------------------------------------
def test_segmentation_object_beside_the_series_is_ignored(tmp_path: Path) -> None:
    for f in shared_path(*CT_3SLICE).glob("*.dcm"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(shared_path("dcmqi_segmentations", "ct-3slice", "dicom_seg", "liver.dcm"), tmp_path / "seg.dcm")
    volume = read_volume(tmp_path)
    assert volume.meta.modality == "CT"
    assert volume.shape == (512, 512, 3)


def test_segmentation_object_given_as_the_input_is_refused_clearly() -> None:
    path = shared_path("dcmqi_segmentations", "ct-3slice", "dicom_seg", "liver.dcm")
    with pytest.raises(InvalidInputError, match="this is a DICOM SEG object, not an image") as info:
        read_volume(path)
    assert info.value.path == str(path)


def test_dicom_file_named_by_its_uid_is_recognised(tmp_path: Path) -> None:
    """PACS exports often have no extension, or a UID whose last component looks like one."""
    for i, f in enumerate(sorted(shared_path(*CT_3SLICE).glob("*.dcm"))):
        shutil.copy(f, tmp_path / f"1.2.392.200103.{i + 17}")
    volume = read_volume(tmp_path / "1.2.392.200103.18")
    np.testing.assert_array_equal(volume.array, read_volume(shared_path(*CT_3SLICE)).array)


def test_non_perpendicular_image_orientation_is_refused(tmp_path: Path, stored: np.ndarray) -> None:
    skewed = {**GEOMETRY, "col_dir_lps": (0.3, float(np.sqrt(1 - 0.09)), 0.0), "row_dir_lps": (1.0, 0.0, 0.0)}
    write_ct_series(tmp_path, stored, slice_step_lps=(0, 0, 2.0), **skewed)
    with pytest.raises(InvalidInputError, match=r"is not two perpendicular unit vectors \(deviation 0\.3\)"):
        read_volume(tmp_path)


def test_slices_of_different_sizes_are_refused(tmp_path: Path, stored: np.ndarray) -> None:
    paths = write_ct_series(tmp_path, stored, slice_step_lps=slice_step(2.0), **GEOMETRY)
    ds = pydicom.dcmread(paths[1])
    ds.Rows, ds.Columns, ds.PixelData = 3, 2, np.zeros((3, 2), "<i2").tobytes()
    ds.save_as(paths[1])
    with pytest.raises(InvalidInputError, match=r"slices have different sizes \(2×3, 6×5 pixels\)"):
        read_volume(tmp_path)

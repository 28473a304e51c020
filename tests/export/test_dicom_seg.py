"""DICOM SEG: read back by highdicom, every frame references an existing source instance at the same
position, and the frames placed by their own geometry equal the label map voxel for voxel."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DSfloat

from medseg.errors import GeometryError, InvalidInputError
from medseg.export import export_labelmap
from medseg.export.dicom_seg import write_dicom_seg
from medseg.io import Volume, read_volume
from medseg.labels import LabelSpec
from tests.conftest import shared_path
from tests.export.helpers import LPS_TO_RAS, rotation

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # highdicom on the sources' patient names


def make_series(folder, *, n_slices=20, rows=24, columns=30, spacing=(0.7, 0.9), step=2.5, seed=0):
    """A CT series with oblique orientation, written in shuffled file order with shuffled instance numbers."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    direction = rotation("z", 20) @ rotation("x", 35)  # LPS columns: row dir, column dir, normal
    row_dir, col_dir = direction[:, 0], direction[:, 1]
    normal = np.cross(row_dir, col_dir)
    origin = np.array([-40.0, 25.5, 110.0])
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for n in rng.permutation(n_slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.Modality = CTImageStorage, "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Synthetic", "SYN1", "", "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = (
            "20260101",
            "120000",
            "",
            "",
            "1",
        )
        ds.SeriesNumber, ds.InstanceNumber = 3, int(rng.integers(1, 1000))
        ds.Rows, ds.Columns = rows, columns
        ds.PixelSpacing = [DSfloat(spacing[0], auto_format=True), DSfloat(spacing[1], auto_format=True)]
        ds.ImageOrientationPatient = [DSfloat(v, auto_format=True) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [DSfloat(v, auto_format=True) for v in origin + n * step * normal]
        ds.SliceThickness = DSfloat(step, auto_format=True)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = (rng.integers(-100, 100, (rows, columns)).astype(np.int16)).tobytes()
        ds.save_as(folder / f"img{n:03d}.dcm", enforce_file_format=True)
    return folder


def seg_content_check(seg_path, source_folder, label: Volume, spec: LabelSpec):
    """Independent of highdicom's own reconstruction: place each frame by its plane position/orientation."""
    seg = pydicom.dcmread(seg_path)
    sources = {
        ds.SOPInstanceUID: ds
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in source_folder.iterdir())
    }
    first = next(iter(sources.values()))
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert (seg.StudyInstanceUID, seg.FrameOfReferenceUID, seg.PatientID) == (
        first.StudyInstanceUID,
        first.FrameOfReferenceUID,
        first.PatientID,
    )
    numbers = {lab.value: n for n, lab in enumerate(spec, start=1)}
    descriptions = {d.SegmentNumber: d for d in seg.SegmentSequence}
    assert sorted(descriptions) == list(range(1, len(spec) + 1))
    for lab in spec:
        d = descriptions[numbers[lab.value]]
        assert d.SegmentLabel == lab.name
        assert d.SegmentAlgorithmType == "AUTOMATIC" and d.SegmentAlgorithmName == "medseg"
        assert len(d.RecommendedDisplayCIELabValue) == 3
    rebuilt = np.zeros(label.shape, np.int32)
    orientation = np.asarray(
        seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient, float
    )
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    for frame, fg in zip(pixels, seg.PerFrameFunctionalGroupsSequence, strict=True):
        uid = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert uid in sources, "every frame references an existing source instance"
        src = sources[uid]
        position = np.asarray(fg.PlanePositionSequence[0].ImagePositionPatient, float)
        np.testing.assert_allclose(position, np.asarray(src.ImagePositionPatient, float), atol=1e-3)
        np.testing.assert_allclose(orientation, np.asarray(src.ImageOrientationPatient, float), atol=1e-5)
        ijk = label.world_to_voxel(LPS_TO_RAS[:3, :3] @ position)
        assert np.allclose(ijk, np.round(ijk), atol=1e-3) and round(ijk[0]) == 0 and round(ijk[1]) == 0
        ident = fg if "SegmentIdentificationSequence" in fg else seg.SharedFunctionalGroupsSequence[0]
        number = ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        rebuilt[:, :, round(ijk[2])][frame.T > 0] = number
    expected = np.zeros(label.shape, np.int32)
    for value, number in numbers.items():
        expected[np.asarray(label.array) == value] = number
    assert np.array_equal(rebuilt, expected)
    return seg


def test_ct_3slice_liver_and_spine(tmp_path):
    dicom = shared_path("dcmqi_segmentations", "ct-3slice", "dicom")
    label = read_volume(
        shared_path("dcmqi_segmentations", "ct-3slice", "seg_nrrd", "liver_spine_gapped_seg.nrrd")
    )
    spec = LabelSpec.from_mapping({"liver": 1, "thoracic spine": 5, "heart": 3})  # heart: absent, kept
    path = write_dicom_seg(label, dicom, tmp_path / "seg.dcm", labels=spec, model_name="unit-test")
    seg = seg_content_check(path, dicom, label, spec)
    assert int(seg.NumberOfFrames) == 6  # 2 non-empty segments × 3 slices; the empty one has no frames
    liver = seg.SegmentSequence[0]
    assert (
        liver.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
        liver.SegmentedPropertyTypeCodeSequence[0].CodeValue,
    ) == ("123037004", "10200004")
    assert seg.SegmentSequence[2].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"  # unknown name
    algorithm = liver.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "medseg" and algorithm.AlgorithmParameters == "model=unit-test"
    assert "unit-test" in seg.SeriesDescription


def test_synthetic_oblique_shuffled_series(tmp_path):
    import highdicom as hd

    folder = make_series(tmp_path / "series")
    ref = read_volume(folder)
    assert ref.shape == (30, 24, 20) and ref.is_oblique
    labels = np.zeros(ref.shape, np.uint8)
    labels[3:20, 4:15, 2:9] = 2
    labels[15:28, 10:22, 8:17] = 3
    labels[0, 0, 19] = 3
    spec = LabelSpec.from_mapping({"kidney_left": 2, "kidney_right": 3})
    path = write_dicom_seg(Volume(labels, ref.affine), folder, tmp_path / "seg.dcm", labels=spec)
    seg = seg_content_check(path, folder, Volume(labels, ref.affine), spec)
    modifier = (
        seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence
    )
    assert modifier[0].CodeValue == "7771000"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = hd.seg.segread(path).get_volume(combine_segments=True)  # highdicom reads it back too
    assert int((volume.array == 1).sum()) == int((labels == 2).sum())


def test_export_labelmap_dispatches_dcm_and_needs_the_reference(tmp_path):
    folder = make_series(tmp_path / "series", n_slices=4, rows=6, columns=5)
    ref = read_volume(folder)
    label = Volume((np.asarray(ref.array) > 0).astype(np.uint8), ref.affine)
    spec = LabelSpec.from_mapping({"mass": 1})
    with pytest.raises(InvalidInputError, match="needs the source DICOM series"):
        export_labelmap(label, tmp_path / "x.dcm", labels=spec)
    path = export_labelmap(label, tmp_path / "x.dcm", labels=spec, reference_dicom=folder)
    seg_content_check(path, folder, label, spec)


@pytest.mark.parametrize("change", ["cropped", "shifted", "flipped"])
def test_grid_mismatch_is_a_clear_error(tmp_path, change):
    folder = make_series(tmp_path / "series", n_slices=5, rows=8, columns=7)
    ref = read_volume(folder)
    labels, affine = np.ones(ref.shape, np.uint8), ref.affine.copy()
    if change == "cropped":
        labels = labels[:, :, 1:]
    elif change == "shifted":
        affine[:3, 3] += 0.5
    else:
        affine[:3, 0] *= -1
    with pytest.raises(
        GeometryError, match="not on the grid of the DICOM series .*; a DICOM SEG must reference"
    ):
        write_dicom_seg(
            Volume(labels, affine), folder, tmp_path / "seg.dcm", labels=LabelSpec.from_values([1])
        )
    assert not (tmp_path / "seg.dcm").exists()


def test_dcmqi_reads_it_like_slicer(tmp_path):
    """Slicer's DICOM SEG plugin runs dcmqi's segimage2itkimage; compare its output in world space."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    tool = shutil.which("segimage2itkimage") or str(Path(sys.executable).parent / "segimage2itkimage")
    if not Path(tool).exists():
        pytest.skip("dcmqi (pip install dcmqi) not installed")
    folder = make_series(tmp_path / "series")
    ref = read_volume(folder)
    labels = np.zeros(ref.shape, np.uint8)
    labels[3:20, 4:15, 2:9] = 4
    spec = LabelSpec.from_mapping({"liver": 4})
    path = write_dicom_seg(Volume(labels, ref.affine), folder, tmp_path / "seg.dcm", labels=spec)
    out = tmp_path / "dcmqi"
    out.mkdir()
    subprocess.run(
        [tool, "--inputDICOM", str(path), "--outputDirectory", str(out), "-t", "nrrd", "--mergeSegments"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    merged = read_volume(next(out.glob("*.nrrd")))
    ijk = np.round(
        ref.world_to_voxel(merged.voxel_to_world(np.argwhere(np.asarray(merged.array) > 0)))
    ).astype(int)
    rebuilt = np.zeros(ref.shape, np.uint8)
    rebuilt[tuple(ijk.T)] = 1
    assert np.array_equal(rebuilt, labels > 0)

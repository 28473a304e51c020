"""Slicer .seg.nrrd: written per the spec, read by slicerio/ITK/medseg with names, colours, values and
every voxel at the same world position; read back as the identical label map."""

from __future__ import annotations

import json
import logging

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from medseg.errors import ConfigError, InvalidInputError
from medseg.export.slicer import read_seg_nrrd, read_seg_nrrd_with_labels, write_seg_nrrd
from medseg.io import Volume, read_volume, write_volume
from medseg.labels import LabelSpec
from tests.conftest import shared_path
from tests.export.helpers import GEOMETRIES, LPS_TO_RAS, check_slicer_rules, world_points

SPEC = LabelSpec.from_mapping({"liver": 1, "spleen": 2, "kidney_left": 7})


def blobs(shape=(20, 17, 9)) -> np.ndarray:
    a = np.zeros(shape, np.uint8)
    a[2:9, 3:12, 1:5] = 1
    a[12:18, 2:6, 4:8] = 2
    a[10:14, 10:16, 0:3] = 7
    a[0, 0, 8] = 7  # a far-away voxel: the extent must reach it
    return a


def assert_same_segments_in_world(
    path, source: np.ndarray, source_affine: np.ndarray, spec: LabelSpec
) -> None:
    """slicerio's view of the file equals the source label map, segment by segment, in world space."""
    seg = slicerio.read_segmentation(str(path))
    affine_ras = LPS_TO_RAS @ np.asarray(seg["ijkToLPS"])
    voxels = seg["voxels"] if seg["voxels"].ndim == 4 else seg["voxels"][np.newaxis]
    by_value = {s["labelValue"]: s for s in seg["segments"]}
    assert sorted(by_value) == list(spec.values)
    for lab in spec:
        s = by_value[lab.value]
        assert s["name"] == lab.name
        assert s["layer"] == 0
        np.testing.assert_allclose(s["color"], np.asarray(lab.color) / 255, atol=1e-6)
        got = world_points(voxels[s["layer"]], affine_ras, lab.value)
        want = world_points(source, source_affine, lab.value)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("geometry", list(GEOMETRIES), ids=list(GEOMETRIES))
def test_odd_geometries_round_trip_through_slicerio_itk_and_medseg(tmp_path, geometry):
    affine = GEOMETRIES[geometry]
    labels = blobs()
    path = write_seg_nrrd(Volume(labels, affine), tmp_path / "seg.seg.nrrd", labels=SPEC)
    header = check_slicer_rules(path)
    assert (
        header["Segment2_Tags"].startswith("TerminologyEntry:")
        and "SCT^7771000^Left" in header["Segment2_Tags"]
    )
    assert header["Segment2_Extent"] == "0 13 0 15 0 8"
    assert_same_segments_in_world(path, labels, affine, SPEC)
    image = sitk.ReadImage(str(path))  # ITK = Slicer's parser
    lps = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    np.testing.assert_allclose(LPS_TO_RAS[:3, :3] @ lps, affine[:3, :3], atol=1e-9)
    np.testing.assert_allclose(LPS_TO_RAS[:3, :3] @ np.asarray(image.GetOrigin()), affine[:3, 3], atol=1e-9)
    assert image.GetMetaData("Segment0_Name") == "liver"
    back, spec = read_seg_nrrd_with_labels(path)
    assert np.array_equal(back.array, labels) and back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.affine, affine)
    assert spec == SPEC


def test_write_volume_and_read_volume_dispatch_on_seg_nrrd(tmp_path):
    labels = blobs()
    path = write_volume(Volume(labels, GEOMETRIES["oblique"]), tmp_path / "x.seg.nrrd")
    header = check_slicer_rules(path)
    assert [header[f"Segment{n}_Name"] for n in range(3)] == ["label_1", "label_2", "label_7"]
    back = read_volume(path)
    assert np.array_equal(back.array, labels)


def test_totalsegmentator_61_classes(tmp_path):
    img = nib.load(shared_path("totalsegmentator_example", "ct_full", "label_total_fast.nii.gz"))
    names = json.loads(shared_path("totalsegmentator_example", "class_map.json").read_text())["total"]
    labels = np.asarray(img.dataobj)
    present = [int(v) for v in np.unique(labels) if v]
    assert len(present) == 61
    spec = LabelSpec.from_mapping({names[str(v)]: v for v in present})
    path = write_seg_nrrd(Volume(labels, img.affine), tmp_path / "total.seg.nrrd", labels=spec)
    header = check_slicer_rules(path)
    assert sum(1 for k in header if k.endswith("_ID")) == 61
    assert all("TerminologyEntry:" in header[f"Segment{n}_Tags"] for n in range(61))
    assert_same_segments_in_world(path, labels, img.affine, spec)
    assert np.array_equal(read_seg_nrrd(path).array, labels)


def test_dcmqi_ct_label_map(tmp_path):
    source = read_volume(
        shared_path("dcmqi_segmentations", "ct-3slice", "seg_nrrd", "liver_spine_gapped_seg.nrrd")
    )
    spec = LabelSpec.from_mapping({"liver": 1, "thoracic spine": 5})
    path = write_seg_nrrd(source, tmp_path / "ct.seg.nrrd", labels=spec)
    check_slicer_rules(path)
    assert_same_segments_in_world(path, np.asarray(source.array), source.affine, spec)
    back = read_seg_nrrd(path)
    assert np.array_equal(back.array, source.array) and back.same_grid(source)


def test_spinal_cord_psr_float_labels(tmp_path):
    """PSR orientation, labels stored as float64 {0, 2, 3, 4, 5}: integral floats are accepted and cast."""
    source = read_volume(shared_path("sct_spinalcord", "t2", "t2_seg-manual_labeled.nii.gz"))
    assert source.orientation == "PSR" and source.array.dtype == np.float64
    spec = LabelSpec.from_mapping({f"spinal_cord_level_{v}": v for v in (2, 3, 4, 5)})
    path = write_seg_nrrd(source, tmp_path / "cord.seg.nrrd", labels=spec)
    check_slicer_rules(path)
    assert_same_segments_in_world(path, np.asarray(source.array), source.affine, spec)
    assert np.array_equal(read_seg_nrrd(path).array, source.array)


# --- bad input ------------------------------------------------------------------------------------------
def test_label_absent_from_map_warns_and_keeps_an_empty_segment(tmp_path, caplog):
    spec = LabelSpec.from_mapping({"liver": 1, "spleen": 2, "kidney_left": 7, "pancreas": 9})
    with caplog.at_level(logging.WARNING):
        path = write_seg_nrrd(Volume(blobs(), GEOMETRIES["RAS"]), tmp_path / "s.seg.nrrd", labels=spec)
    assert "9 (pancreas) are not in the label map" in caplog.text
    header = check_slicer_rules(path)
    assert header["Segment3_Name"] == "pancreas" and header["Segment3_Extent"] == "0 -1 0 -1 0 -1"
    _, back = read_seg_nrrd_with_labels(path)
    assert back == spec


def test_value_missing_from_spec_gets_a_numbered_segment(tmp_path, caplog):
    spec = LabelSpec.from_mapping({"liver": 1, "spleen": 2})
    with caplog.at_level(logging.WARNING):
        path = write_seg_nrrd(Volume(blobs(), GEOMETRIES["RAS"]), tmp_path / "s.seg.nrrd", labels=spec)
    assert "value(s) 7" in caplog.text
    assert check_slicer_rules(path)["Segment2_Name"] == "label_7"


def test_duplicate_names_are_refused():
    with pytest.raises(ConfigError, match="label names used twice: \\['liver'\\]"):
        LabelSpec.from_mapping({"1": "liver", "2": "liver"})


def test_duplicate_names_in_a_slicer_file_are_refused_on_reading(tmp_path):
    path = write_seg_nrrd(Volume(blobs(), GEOMETRIES["RAS"]), tmp_path / "d.seg.nrrd", labels=SPEC)
    text = path.read_bytes().replace(b"Segment1_Name:=spleen", b"Segment1_Name:=liver")
    path.write_bytes(text)
    with pytest.raises(InvalidInputError, match="several segments are named 'liver'"):
        read_seg_nrrd_with_labels(path)


def test_non_ascii_names_are_kept(tmp_path, caplog):
    spec = LabelSpec.from_mapping({"Leber (hépatique) 肝": 1, "Milz": 2, "niere_links": 7})
    with caplog.at_level(logging.WARNING):
        path = write_seg_nrrd(Volume(blobs(), GEOMETRIES["LPS"]), tmp_path / "u.seg.nrrd", labels=spec)
    assert "not ASCII" in caplog.text
    assert sitk.ReadImage(str(path)).GetMetaData("Segment0_Name") == "Leber (hépatique) 肝"
    _, back = read_seg_nrrd_with_labels(path)
    assert back.names[1] == "Leber (hépatique) 肝"


def test_non_integral_float_label_map_is_refused(tmp_path):
    values = blobs().astype(np.float32)
    values[3, 3, 3] = 0.4
    with pytest.raises(InvalidInputError, match=r"non-integer values \(e\.g\. 0\.4 in 1 voxels\)"):
        write_seg_nrrd(Volume(values, GEOMETRIES["RAS"]), tmp_path / "f.seg.nrrd")
    assert not (tmp_path / "f.seg.nrrd").exists()


def test_multichannel_and_negative_maps_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="has 2 channels"):
        write_seg_nrrd(Volume(np.zeros((2, 3, 3, 3), np.uint8), np.eye(4)), tmp_path / "c.seg.nrrd")
    with pytest.raises(InvalidInputError, match="negative values"):
        write_seg_nrrd(Volume(-np.ones((3, 3, 3), np.int16), np.eye(4)), tmp_path / "n.seg.nrrd")


# --- reading files written by others ---------------------------------------------------------------
def layered_segmentation(tmp_path, *, overlap: bool, same_value: bool):
    """A 4D (two-layer) file written by slicerio, as Slicer writes overlapping segments."""
    layers = np.zeros((2, 6, 5, 4), np.uint8)
    layers[0, 1:4, 1:4, 1:3] = 1
    layers[1, (2 if overlap else 4) : 6, 0:2, 0:2] = 1 if same_value else 2
    segments = [
        {"id": "a", "name": "liver", "labelValue": 1, "layer": 0, "color": [0.2, 0.4, 0.6]},
        {
            "id": "b",
            "name": "tumour",
            "labelValue": 1 if same_value else 2,
            "layer": 1,
            "color": [0.9, 0.1, 0.1],
        },
    ]
    path = tmp_path / "layers.seg.nrrd"
    slicerio.write_segmentation(
        str(path), {"voxels": layers, "ijkToLPS": np.diag([-2.0, -2.0, 3.0, 1.0]), "segments": segments}
    )
    return path, layers


def test_layers_without_overlap_merge_into_one_label_map(tmp_path):
    path, layers = layered_segmentation(tmp_path, overlap=False, same_value=False)
    volume, spec = read_seg_nrrd_with_labels(path)
    assert np.array_equal(volume.array, layers[0] + layers[1])
    np.testing.assert_array_equal(volume.affine, np.diag([2.0, 2.0, 3.0, 1.0]))
    assert spec.names == {1: "liver", 2: "tumour"} and spec.get(2).color == (230, 26, 26)


def test_overlapping_segments_are_a_clear_error(tmp_path):
    path, _ = layered_segmentation(tmp_path, overlap=True, same_value=False)
    with pytest.raises(InvalidInputError, match="segments 'liver' and 'tumour' overlap in 2 voxels"):
        read_seg_nrrd(path)
    path, _ = layered_segmentation(tmp_path, overlap=False, same_value=True)
    with pytest.raises(InvalidInputError, match="both use label value 1"):
        read_seg_nrrd(path)


def test_extent_crops_like_slicer(tmp_path):
    path = write_seg_nrrd(Volume(blobs(), GEOMETRIES["RAS"]), tmp_path / "e.seg.nrrd", labels=SPEC)
    text = path.read_bytes()
    for n, extent in ((0, b"2 8 3 11 1 4"), (1, b"12 17 2 5 4 7"), (2, b"0 13 0 15 0 8")):
        assert f"Segment{n}_Extent:=".encode() + extent in text
    # a too-small extent deletes voxels in Slicer; medseg reads what Slicer would show
    path.write_bytes(text.replace(b"Segment2_Extent:=0 13 0 15 0 8", b"Segment2_Extent:=10 13 10 15 0 2"))
    back = read_seg_nrrd(path)
    assert back.array[0, 0, 8] == 0 and int((back.array == 7).sum()) == int((blobs() == 7).sum()) - 1


def test_file_without_segment_metadata_reads_as_plain_labels(tmp_path):
    import nrrd

    nrrd.write(
        str(tmp_path / "plain.seg.nrrd"),
        blobs(),
        {"space": "left-posterior-superior", "space directions": np.eye(3), "kinds": ["domain"] * 3},
    )
    volume, spec = read_seg_nrrd_with_labels(tmp_path / "plain.seg.nrrd")
    assert np.array_equal(volume.array, blobs()) and spec.names == {1: "label_1", 2: "label_2", 7: "label_7"}


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.seg.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: gzip\n\nnot gzip")
    with pytest.raises(InvalidInputError, match="bad.seg.nrrd: cannot read as NRRD"):
        read_seg_nrrd(bad)


def test_read_as_spec_renumbers_by_name_for_the_retrain_loop(tmp_path):
    from medseg.export.slicer import read_seg_nrrd_as

    slicer_numbering = LabelSpec.from_mapping({"kidney_left": 1, "liver": 2, "spleen": 7})
    path = write_seg_nrrd(
        Volume(blobs(), GEOMETRIES["RAS"]), tmp_path / "s.seg.nrrd", labels=slicer_numbering
    )
    model = LabelSpec.from_mapping({"liver": 1, "spleen": 2, "kidney_left": 3})
    back = read_seg_nrrd_as(path, model)
    expected = np.select([blobs() == 1, blobs() == 2, blobs() == 7], [3, 1, 2], 0)
    assert np.array_equal(back.array, expected)
    with pytest.raises(InvalidInputError, match="segment\\(s\\) 'kidney_left' are not in the label spec"):
        read_seg_nrrd_as(path, LabelSpec.from_mapping({"liver": 1, "spleen": 2}))

"""Dataset listing: MSD / nnU-Net folders, the original MSD layout, CSV manifests, root confinement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medseg.data.dataset import load_dataset
from medseg.errors import DatasetError, GeometryError
from medseg.io import Volume, read_volume, write_volume
from tests.data.conftest import copy_dataset


def test_msd_folder_lists_cases_channels_labels(phantom2ch_root: Path) -> None:
    ds = load_dataset(phantom2ch_root)
    assert ds.layout == "msd" and ds.channel_names == ("T1", "T2")
    assert ds.labels.names == {1: "blob1", 2: "blob2", 3: "blob3"}
    assert ds.case_ids == ("phantom_000", "phantom_001", "phantom_002", "phantom_003")
    case = ds.cases[1]
    assert [p.name for p in case.image_paths] == ["phantom_001_0000.nii.gz", "phantom_001_0001.nii.gz"]
    assert case.label_path == phantom2ch_root / "labelsTr" / "phantom_001.nii.gz"
    assert case.subject == "phantom_001" and case.split is None
    image, label = ds.load_case("phantom_001")
    assert image.array.shape == (2, 20, 20, 12) and label is not None and label.shape == (20, 20, 12)
    np.testing.assert_array_equal(image.array[1], read_volume(case.image_paths[1]).array)


def test_subjects_mapping_from_dataset_json(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    meta = json.loads((root / "dataset.json").read_text())
    meta["subjects"] = {"phantom_000": "patient_A", "phantom_001": "patient_A"}
    (root / "dataset.json").write_text(json.dumps(meta))
    ds = load_dataset(root)
    assert [c.subject for c in ds.cases] == ["patient_A", "patient_A", "phantom_002", "phantom_003"]


def test_original_msd_layout_with_4d_images(tmp_path: Path) -> None:
    root = tmp_path / "Task01"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    rng = np.random.default_rng(0)
    entries = []
    for n in range(2):
        image = rng.normal(size=(3, 6, 5, 4)).astype(np.float32)
        write_volume(Volume(image, affine), root / "imagesTr" / f"brats_{n}.nii.gz")
        write_volume(Volume(np.ones((6, 5, 4), np.uint8), affine), root / "labelsTr" / f"brats_{n}.nii.gz")
        entries.append({"image": f"./imagesTr/brats_{n}.nii.gz", "label": f"./labelsTr/brats_{n}.nii.gz"})
    (root / "dataset.json").write_text(json.dumps({
        "modality": {"0": "FLAIR", "1": "T1w", "2": "T2w"}, "labels": {"0": "background", "1": "tumour"},
        "numTraining": 2, "training": entries}))
    ds = load_dataset(root)
    assert ds.channel_names == ("FLAIR", "T1w", "T2w") and ds.labels.names == {1: "tumour"}
    image, _ = ds.load_case("brats_1")
    assert image.array.shape == (3, 6, 5, 4)


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_manifest_named_channels_subject_split(phantom2ch_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom2ch_root, tmp_path / "ds")
    (root / "labels.json").write_text(json.dumps({"blob1": 1, "blob2": 2, "blob3": 3}))
    (root / "dataset.json").unlink()
    manifest = write_csv(root / "cohort.csv", [
        "image_T1,image_T2,label,subject,split,age",
        "imagesTr/phantom_000_0000.nii.gz,imagesTr/phantom_000_0001.nii.gz,labelsTr/phantom_000.nii.gz,p1,train,60",
        "imagesTr/phantom_001_0000.nii.gz,imagesTr/phantom_001_0001.nii.gz,,p1,test,61",
    ])
    ds = load_dataset(manifest)
    assert ds.layout == "csv" and ds.root == root.resolve() and ds.channel_names == ("T1", "T2")
    assert [(c.case_id, c.subject, c.split) for c in ds.cases] == [("phantom_000", "p1", "train"),
                                                                   ("phantom_001", "p1", "test")]
    assert ds.cases[1].label_path is None
    image, label = ds.load_case(ds.cases[1])
    assert image.array.shape == (2, 20, 20, 12) and label is None


def test_csv_without_label_declaration_is_an_error(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    (root / "dataset.json").unlink()
    row = "imagesTr/phantom_000_0000.nii.gz,labelsTr/phantom_000.nii.gz"
    manifest = write_csv(root / "m.csv", ["image,label", row])
    with pytest.raises(DatasetError, match="labels.json"):
        load_dataset(manifest)


@pytest.mark.parametrize("path", [
    pytest.param("../outside.nii.gz", id="dot-dot"),
    pytest.param("imagesTr/../../outside.nii.gz", id="dot-dot-inside"),
    pytest.param("/etc/passwd", id="absolute"),
])
def test_manifest_paths_must_stay_inside_root(phantom_root: Path, tmp_path: Path, path: str) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    manifest = write_csv(root / "m.csv", ["image,label", f"{path},labelsTr/phantom_000.nii.gz"])
    with pytest.raises(DatasetError, match="outside the dataset root"):
        load_dataset(manifest)


def test_strict_listing_names_the_case_with_a_missing_label(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    (root / "labelsTr" / "phantom_002.nii.gz").unlink()
    with pytest.raises(DatasetError, match="phantom_002.*label map is missing"):
        load_dataset(root)
    ds = load_dataset(root, strict=False)
    assert [(i.kind, i.case_id) for i in ds.issues] == [("missing_file", "phantom_002")]


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset.json"):
        load_dataset(tmp_path)


def test_load_case_rejects_label_on_another_grid(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    path = root / "labelsTr" / "phantom_001.nii.gz"
    label = read_volume(path)
    shifted = label.affine.copy()
    shifted[2, 3] += 10.0
    write_volume(Volume(label.array, shifted), path)
    with pytest.raises(GeometryError, match="case phantom_001: label map and image differ in origin"):
        load_dataset(root).load_case("phantom_001")

"""`medseg dataset check` finds each planted problem and names its case; a clean dataset passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medseg.cli import main
from medseg.data.check import check_dataset
from medseg.data.dataset import load_dataset
from medseg.data.synthetic import make_phantom_dataset
from medseg.io import Volume, read_volume, write_volume
from tests.data.conftest import copy_dataset


def rewrite(path: Path, *, array: np.ndarray | None = None, affine: np.ndarray | None = None) -> None:
    v = read_volume(path)
    write_volume(Volume(v.array if array is None else array, v.affine if affine is None else affine), path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 two-channel cases; cases 0-5 each carry one planted problem, case 6 is clean."""
    root = make_phantom_dataset(tmp_path_factory.mktemp("planted") / "ds", n_cases=7, shape=(12, 12, 8),
                                channel_names=("T1", "T2"), seed=11)
    lab, img = root / "labelsTr", root / "imagesTr"
    v = read_volume(lab / "phantom_000.nii.gz")
    rewrite(lab / "phantom_000.nii.gz", affine=v.affine @ np.diag([1.0, 1.0, 1.2, 1.0]))  # spacing 2.5 -> 3.0 mm
    shifted = read_volume(lab / "phantom_001.nii.gz").affine.copy()
    shifted[0, 3] += 10.0
    rewrite(lab / "phantom_001.nii.gz", affine=shifted)
    seven = np.asarray(read_volume(lab / "phantom_002.nii.gz").array).copy()
    seven[0, 0, :3] = 7
    rewrite(lab / "phantom_002.nii.gz", array=seven)
    (lab / "phantom_003.nii.gz").unlink()
    (img / "phantom_004_0001.nii.gz").unlink()
    nan = np.asarray(read_volume(img / "phantom_005_0000.nii.gz").array).copy()
    nan[5, 5, 2:4] = np.nan
    rewrite(img / "phantom_005_0000.nii.gz", array=nan)
    return root


@pytest.mark.parametrize(("case", "kind", "words"), [
    pytest.param("phantom_000", "geometry",
                 "label map and image phantom_000_0000.nii.gz differ in spacing 1×1×3 vs 1×1×2.5", id="label-spacing"),
    pytest.param("phantom_001", "geometry", "differ in origin 4×-6×-30 vs -6×-6×-30 mm (10 mm apart)",
                 id="label-origin-10mm"),
    pytest.param("phantom_002", "undeclared_label", "label value(s) 7 (3 voxels) not declared", id="undeclared-7"),
    pytest.param("phantom_003", "missing_file", "phantom_003.nii.gz: label map is missing", id="missing-label"),
    pytest.param("phantom_004", "missing_file", "phantom_004_0001.nii.gz: channel 1 is missing", id="missing-channel"),
    pytest.param("phantom_005", "nonfinite", "2 NaN or infinite voxel(s)", id="nan-voxels"),
])
def test_each_planted_problem_is_found_and_named(planted: Path, case: str, kind: str, words: str) -> None:
    report = check_dataset(load_dataset(planted, strict=False))
    mine = [i for i in report.issues if i.case_id == case]
    assert [i.kind for i in mine] == [kind], mine
    assert words in mine[0].message


def test_the_clean_case_has_no_issue_and_the_report_fails(planted: Path) -> None:
    report = check_dataset(load_dataset(planted, strict=False))
    assert {i.case_id for i in report.issues} == {f"phantom_00{n}" for n in range(6)}
    assert len(report.errors) == 6 and not report.ok
    row = {r.case_id: r for r in report.rows}["phantom_006"]
    assert row.n_errors == 0 and row.shape == (12, 12, 8) and row.spacing_mm == (1.0, 1.0, 2.5)
    assert row.n_channels == 2 and row.label_values == (0, 1, 2) and row.orientation == "RAS"


def test_cli_exit_codes_and_json(planted: Path, phantom_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad:
        main(["dataset", "check", str(planted), "--json"])
    assert bad.value.code == 2
    data = json.loads(capsys.readouterr().out)
    assert data["n_errors"] == 6 and data["n_cases"] == 7 and not data["ok"]
    with pytest.raises(SystemExit) as good:
        main(["dataset", "check", str(phantom_root)])
    assert good.value.code == 0
    assert "OK: 4 cases, 0 error(s)" in capsys.readouterr().out


def test_empty_label_extra_file_and_case_count(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    path = root / "labelsTr" / "phantom_001.nii.gz"
    rewrite(path, array=np.zeros(read_volume(path).shape, np.uint8))
    (root / "imagesTr" / "notes.txt").write_text("x")
    meta = json.loads((root / "dataset.json").read_text())
    meta["numTraining"] = 5
    (root / "dataset.json").write_text(json.dumps(meta))
    ds = load_dataset(root, strict=False)
    kinds = sorted((i.kind, i.case_id or "-", i.severity) for i in check_dataset(ds).issues)
    assert kinds == [("case_count", "-", "error"), ("empty_label", "phantom_001", "error"),
                     ("extra_file", "-", "error")]
    relaxed = check_dataset(ds, allow_empty_labels=True)
    assert [i.severity for i in relaxed.issues if i.kind == "empty_label"] == ["warning"]


def test_duplicate_rows_in_a_manifest(phantom_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(phantom_root, tmp_path / "ds")
    rows = ["case,image,label", "a,imagesTr/phantom_000_0000.nii.gz,labelsTr/phantom_000.nii.gz",
            "a,imagesTr/phantom_001_0000.nii.gz,labelsTr/phantom_001.nii.gz",
            "b,imagesTr/phantom_000_0000.nii.gz,labelsTr/phantom_000.nii.gz"]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(root / "m.csv", strict=False)
    assert [(i.kind, i.case_id) for i in ds.issues] == [("duplicate_case", "a"), ("duplicate_case", "b")]
    assert "line 3" in ds.issues[0].message and "already used by case a" in ds.issues[1].message

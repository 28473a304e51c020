"""``medseg evaluate`` end to end on small synthetic NIfTI files (run as ``python -m medseg``)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medseg.io import read_volume
from medseg.metrics import evaluate_case

SPACING = (0.8, 1.0, 2.5)
COLUMNS = "case,label,name,dice,iou,precision,recall,hd,hd95,assd,nsd,volume_ref_ml,volume_pred_ml,status"


def oblique_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel → RAS: anisotropic, rotated 30° about z, arbitrary origin."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(SPACING)
    affine[:3, 3] = (-20.0, 13.5, 7.25)
    return affine


def make_case(seed: int, shape: tuple[int, int, int] = (24, 20, 12)) -> tuple[np.ndarray, np.ndarray]:
    """Reference with a liver (1), a kidney (2) and two tumours (3); a perturbed prediction."""
    ref = np.zeros(shape, np.uint8)
    ref[3:14, 3:15, 2:9] = 1
    ref[16:22, 4:10, 3:8] = 2
    ref[5:7, 5:7, 4:6] = 3
    ref[10:12, 11:13, 4:6] = 3
    pred = ref.copy()
    pred[3 : 3 + seed % 3, 3:15, 2:9] = 0  # liver under-segmented by 0-2 slices
    pred[16:22, 4 + seed % 2 : 10, 3:8] = 2  # kidney over-segmented by 0-1 rows
    pred[16:22, 3, 3:8] = 2 if seed % 2 else 0
    pred[10:12, 11:13, 4:6] = 1  # second tumour missed
    pred[20, 16, 9] = 3  # a false-positive tumour voxel
    return pred, ref


def save(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "medseg", "evaluate", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """pred/ and ref/ folders: cases a, b matched; c has no reference, d no prediction."""
    affine = oblique_affine((24, 20, 12))
    for i, name in enumerate(("a", "b", "c", "d")):
        pred, ref = make_case(i)
        if name != "d":
            save(tmp_path / "pred" / f"{name}.nii.gz", pred, affine)
        if name != "c":
            save(tmp_path / "ref" / f"{name}.nii.gz", ref, affine)
    (tmp_path / "pred" / "notes.txt").write_text("not a volume\n")
    labels = {"labels": {"background": 0, "liver": 1, "kidney": 2, "tumour": 3}}
    (tmp_path / "dataset.json").write_text(json.dumps(labels))
    return tmp_path


def test_two_folders_write_the_four_outputs(cohort: Path) -> None:
    result = run_cli(
        "--pred", "pred", "--ref", "ref", "--labels", "dataset.json", "-o", "out",
        "--lesion-wise", "tumour", "--jobs", "2", cwd=cohort,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 case(s) with no reference: c" in result.stderr
    assert "1 case(s) with no prediction: d" in result.stderr
    assert "liver" in result.stdout and "kidney" in result.stdout
    out = cohort / "out"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert (out / "metrics.csv").read_text().splitlines()[0] == COLUMNS
    assert [(r["case"], r["name"]) for r in rows] == [
        (case, name) for case in ("a", "b") for name in ("liver", "kidney", "tumour")
    ]
    pred, ref = make_case(1)
    spacing = read_volume(cohort / "ref" / "b.nii.gz").spacing  # SPACING after NIfTI's float32 affine
    expected = evaluate_case(pred, ref, spacing_mm=spacing, labels=[1, 2, 3])
    for row, m in zip(rows[3:], expected, strict=True):
        for key in ("dice", "hd95", "assd", "nsd", "volume_ref_ml"):
            assert float(row[key]) == pytest.approx(getattr(m, key), rel=1e-8), key
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 2
    assert (summary["missing_reference"], summary["missing_prediction"]) == (["c"], ["d"])
    liver = summary["classes"][0]
    assert liver["name"] == "liver"
    assert liver["metrics"]["dice"]["n"] == 2
    dices = [float(r["dice"]) for r in rows if r["name"] == "liver"]
    assert liver["metrics"]["dice"]["mean"] == pytest.approx(np.mean(dices))
    (tumour,) = summary["lesion_wise"]
    assert (tumour["n_ref"], tumour["tp"], tumour["fn"], tumour["fp"]) == (4, 2, 2, 2)
    md = (out / "summary.md").read_text()
    assert "| liver | 1 | 2 |" in md and "References without a prediction (1): d" in md
    assert (out / "boxplot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(csv.DictReader((out / "lesion_list.csv").open()))) == 6  # 4 lesions + 2 false positives


def test_grid_mismatch_is_one_clear_error_line(cohort: Path) -> None:
    pred, _ = make_case(0)
    shifted = oblique_affine(pred.shape)
    shifted[:3, 3] += (0.0, 0.0, 5.0)
    save(cohort / "pred" / "a.nii.gz", pred, shifted)
    result = run_cli("--pred", "pred", "--ref", "ref", "-o", "out", cwd=cohort)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("medseg: error: ") and "a.nii.gz" in lines[-1]
    assert "different grids" in lines[-1] and "--resample-pred" in lines[-1]
    assert "Traceback" not in result.stderr
    assert not (cohort / "out" / "metrics.csv").exists()


def test_resample_pred_puts_a_flipped_prediction_back_on_the_reference_grid(tmp_path: Path) -> None:
    pred, ref = make_case(5)
    affine = oblique_affine(ref.shape)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, ref.shape[0] - 1  # i' = n - 1 - i: the same world positions
    save(tmp_path / "ref.nii.gz", ref, affine)
    save(tmp_path / "pred.nii.gz", pred[::-1].copy(), affine @ flip)
    refused = run_cli("--pred", "pred.nii.gz", "--ref", "ref.nii.gz", cwd=tmp_path)
    assert refused.returncode == 2 and "different grids" in refused.stderr
    result = run_cli("--pred", "pred.nii.gz", "--ref", "ref.nii.gz", "--resample-pred", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    expected = evaluate_case(pred, ref, spacing_mm=read_volume(tmp_path / "ref.nii.gz").spacing, labels=[1, 2, 3])
    assert [r["name"] for r in rows] == ["label_1", "label_2", "label_3"]
    for row, m in zip(rows, expected, strict=True):
        assert (float(row["dice"]), float(row["hd95"])) == pytest.approx((m.dice, m.hd95), rel=1e-8)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["resampled_cases"] == ["ref"]


def test_numbered_labels_fill_classes_absent_from_a_case(tmp_path: Path) -> None:
    affine = np.diag([*SPACING, 1.0])
    pred, ref = make_case(2)
    save(tmp_path / "pred" / "x.nii.gz", pred, affine)
    save(tmp_path / "ref" / "x.nii.gz", ref, affine)
    save(tmp_path / "pred" / "y.nii.gz", np.where(pred == 2, 2, 0).astype(np.uint8), affine)
    save(tmp_path / "ref" / "y.nii.gz", np.where(ref == 2, 2, 0).astype(np.uint8), affine)
    result = run_cli("--pred", "pred", "--ref", "ref", "-o", "out", "--lesion-wise", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    y_rows = {r["label"]: r for r in rows if r["case"] == "y"}
    assert set(y_rows) == {"1", "2", "3"}
    assert (y_rows["1"]["status"], y_rows["1"]["dice"], y_rows["1"]["hd95"]) == ("both_empty", "1", "0")


def test_unknown_lesion_class_name_is_a_clear_error(cohort: Path) -> None:
    result = run_cli("--pred", "pred", "--ref", "ref", "--labels", "dataset.json", "--lesion-wise", "tumor", cwd=cohort)
    assert result.returncode == 2
    assert "unknown label name 'tumor'" in result.stderr and "tumour" in result.stderr

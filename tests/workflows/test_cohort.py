"""``workflows/cohort`` end to end on tiny phantoms: the steps, who predicts what, geometry, the report."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medseg.data.synthetic import make_phantom_dataset
from medseg.export.slicer import read_seg_nrrd_with_labels
from medseg.io import read_volume
from tests.workflows.cohort_run import N_CASES, CohortRun, run_workflow

CASES = [f"phantom_{n:03d}" for n in range(N_CASES)]
CLASSES = {1: "blob1", 2: "blob2"}


@pytest.fixture(scope="module")
def run(cohort_run: CohortRun) -> CohortRun:
    assert cohort_run.returncode == 0, cohort_run.stdout[-3000:] + cohort_run.stderr[-3000:]
    return cohort_run


def commands(run: CohortRun) -> list[list[str]]:
    lines = (run.out / "commands.sh").read_text(encoding="utf-8").splitlines()
    return [shlex.split(line) for line in lines if not line.startswith("#")]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def metrics_rows(run: CohortRun) -> list[dict[str, str]]:
    with (run.out / "evaluation" / "metrics.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_runs_every_step_in_order_and_prints_each_command(run: CohortRun) -> None:
    argvs = commands(run)
    steps = [" ".join(a[1:3]) if a[1] == "dataset" else a[1] for a in argvs]
    assert steps == ["dataset check", "plan", "train"] + ["infer"] * N_CASES + ["evaluate"] + ["export"] * N_CASES
    printed = [line.removeprefix("$ ") for line in run.stdout.splitlines() if line.startswith("$ medseg ")]
    assert printed == [shlex.join(a) for a in argvs]
    train = argvs[2]
    assert option(train, "--fold") == "all" and option(train, "--epochs") == "1"
    assert Path(option(train, "-c")).name == "tiny.yaml"
    assert option(train, "--plan") == str(run.out / "plan.yaml")
    assert run.stdout.rstrip().endswith(f"report: {run.out / 'index.md'}")


def test_each_case_is_segmented_by_the_fold_model_that_did_not_train_on_it(run: CohortRun) -> None:
    splits = json.loads((run.out / "train" / "splits.json").read_text())
    assert len(splits) == 3  # loop.folds of configs/tiny.yaml
    assert sorted(c for s in splits for c in s["val"]) == CASES
    infers = [a for a in commands(run) if a[1] == "infer"]
    predicted = {}
    for argv in infers:
        case = Path(option(argv, "-o")).name.removesuffix(".nii.gz")
        fold = int(re.fullmatch(r".*fold_(\d)/best\.pt", option(argv, "--model")).group(1))
        assert case in splits[fold]["val"] and case not in splits[fold]["train"]
        assert argv[2] == str(run.dataset / "imagesTr" / f"{case}_0000.nii.gz")
        predicted[case] = fold
    assert sorted(predicted) == CASES


def test_predictions_are_label_maps_on_the_input_grid(run: CohortRun) -> None:
    for case in CASES:
        image = read_volume(run.dataset / "imagesTr" / f"{case}_0000.nii.gz")
        pred_path = run.out / "predictions" / f"{case}.nii.gz"
        pred = read_volume(pred_path)
        assert pred.same_grid(image)
        np.testing.assert_array_equal(pred.affine, image.affine)
        assert np.asarray(nib.load(pred_path).dataobj).dtype == np.uint8
        assert set(np.unique(pred.array)) <= {0, 1, 2}


def test_evaluation_equals_the_training_runs_own_validation(run: CohortRun) -> None:
    """Two paths to the same numbers: training scores best.pt in memory (validation.json); the workflow
    runs medseg infer → file → medseg evaluate. They must agree on every case and class."""
    rows = metrics_rows(run)
    assert sorted((r["case"], int(r["label"])) for r in rows) == [(c, v) for c in CASES for v in CLASSES]
    dice = {(r["case"], int(r["label"])): float(r["dice"]) for r in rows}
    hd95 = {(r["case"], int(r["label"])): float(r["hd95"]) for r in rows}
    seen = 0
    for fold in range(3):
        for v in json.loads((run.out / "train" / f"fold_{fold}" / "validation.json").read_text()):
            assert dice[(v["case"], v["label"])] == pytest.approx(v["dice"], abs=1e-8)
            assert hd95[(v["case"], v["label"])] == pytest.approx(v["hd95"], abs=1e-4)
            seen += 1
    assert seen == len(rows)
    for label, name in CLASSES.items():
        values = [dice[(c, label)] for c in CASES]
        assert all(0.0 <= d <= 1.0 for d in values)
        assert np.mean(values) > 0.5, f"{name}: mean Dice {np.mean(values):.3f} after one epoch per fold"


def test_report_index_holds_the_metrics_table_box_plot_and_previews(run: CohortRun) -> None:
    index = (run.out / "index.md").read_text(encoding="utf-8")
    summary = json.loads((run.out / "evaluation" / "summary.json").read_text())
    assert summary["n_cases"] == N_CASES
    for c in summary["classes"]:
        dice = c["metrics"]["dice"]
        row = f"| {c['name']} | {c['label']} | {N_CASES} | {dice['mean']:.3f} ± {dice['std']:.3f} "
        assert row in index
    assert "![Dice and HD95 per class](evaluation/boxplot.png)" in index
    splits = json.loads((run.out / "train" / "splits.json").read_text())
    dice = {(r["case"], r["name"]): float(r["dice"]) for r in metrics_rows(run)}
    for case in CASES:
        fold = next(k for k, s in enumerate(splits) if case in s["val"])
        cells = " | ".join(f"{dice[(case, name)]:.3f}" for name in CLASSES.values())
        assert (f"| {case} | {fold} | {cells} | ![{case}](slicer/{case}_preview.png) "
                f"| [{case}.seg.nrrd](slicer/{case}.seg.nrrd) |") in index
    targets = re.findall(r"\]\(([^)]+)\)", index)
    assert len(targets) >= 2 * N_CASES + 10
    for target in targets:
        assert (run.out / target).is_file(), target
    for png in [run.out / "evaluation" / "boxplot.png", *(run.out / "slicer").glob("*_preview.png")]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slicer_files_hold_the_predictions_with_names(run: CohortRun) -> None:
    html = (run.out / "slicer" / "report.html").read_text(encoding="utf-8")
    for case in CASES:
        seg, spec = read_seg_nrrd_with_labels(run.out / "slicer" / f"{case}.seg.nrrd")
        pred = read_volume(run.out / "predictions" / f"{case}.nii.gz")
        assert seg.same_grid(pred)
        np.testing.assert_array_equal(seg.array, pred.array)
        assert {v: spec.names[v] for v in spec.values} == {
            v: n for v, n in CLASSES.items() if (pred.array == v).any()
        }
        assert f'src="{case}_preview.png"' in html


def test_a_dataset_that_fails_the_check_stops_before_planning(tmp_path: Path) -> None:
    data = make_phantom_dataset(tmp_path / "bad", n_cases=3, shape=(8, 8, 8))
    label = nib.load(data / "labelsTr" / "phantom_001.nii.gz")
    moved = label.affine.copy()
    moved[:3, 3] += 5.0  # the label no longer lies on its image
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj), moved), data / "labelsTr" / "phantom_001.nii.gz")
    result = run_workflow(data, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    assert f"stopped: `medseg dataset check {data}` exited with code 2" in result.stderr
    assert not (tmp_path / "out" / "plan.yaml").exists()


def test_multi_file_channels_are_refused_before_training(tmp_path: Path) -> None:
    data = make_phantom_dataset(tmp_path / "two", n_cases=3, shape=(8, 8, 8), channel_names=("T1", "T2"))
    result = run_workflow(data, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "case phantom_000 has 2 image files" in result.stderr and "one 4D file" in result.stderr
    assert not (tmp_path / "out" / "plan.yaml").exists()

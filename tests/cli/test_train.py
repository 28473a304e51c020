"""``medseg train`` through the CLI: accuracy on phantoms, cross-validation, resume/extend, bad input.

Issue 4 acceptance 1 (tiny.yaml reaches Dice ≥ 0.9), 4 (``--fold all``), 5 (crafted checkpoints
refused through ``train --resume`` and ``infer --model``) and 6 (bad configs → exit 2 with one line
naming the field). Commands run in this process (``medseg.cli.main``) to share one torch import.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from medseg.data.synthetic import make_phantom_dataset
from medseg.io import read_volume, write_volume
from medseg.models.checkpoint import load_checkpoint
from tests.training.helpers import TINY_CONFIG, cli, make_micro_dataset, make_micro_plan, one_thread, write_config


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="module")
def micro_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_dataset(tmp_path_factory.mktemp("micro") / "dataset")


@pytest.fixture(scope="module")
def micro_plan(micro_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_plan(micro_dataset, tmp_path_factory.mktemp("plan") / "plan.yaml")


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a failed command (asserting there is exactly one and no stdout)."""
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith("medseg: error: ")
    return lines[0]


# --- acceptance 1 ------------------------------------------------------------------------------
def test_tiny_config_reaches_dice_09_on_phantoms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """6 phantoms of 48³ at 1 x 1 x 2.5 mm with two classes, configs/tiny.yaml on CPU, fold 0 of 3."""
    data = make_phantom_dataset(tmp_path / "phantoms", n_cases=6, shape=(48, 48, 48), spacing_mm=(1.0, 1.0, 2.5))
    run = tmp_path / "run"
    assert cli("train", data, "--config", TINY_CONFIG, "--output", run, "--quiet") == 0
    rows = json.loads((run / "fold_0" / "validation.json").read_text())
    splits = json.loads((run / "splits.json").read_text())
    assert sorted({r["case"] for r in rows}) == splits[0]["val"] and len(splits[0]["val"]) == 2
    for name in ("blob1", "blob2"):
        dice = [r["dice"] for r in rows if r["name"] == name]
        assert len(dice) == 2 and np.mean(dice) >= 0.9, (name, dice)
    history = load_checkpoint(run / "fold_0" / "best.pt").training["history"]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    with (run / "fold_0" / "metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, len(history) + 1))


# --- acceptance 4 ------------------------------------------------------------------------------
def test_fold_all_keeps_subjects_together_and_writes_a_cv_summary(micro_plan: Path, tmp_path: Path) -> None:
    data = make_micro_dataset(tmp_path / "data", n_cases=7, seed=3)
    subjects = ["p0", "p0", "p1", "p1", "p2", "p3", "p3"]
    with (data / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case", "image", "label", "subject"])
        for n, subject in enumerate(subjects):
            writer.writerow([f"c{n}", f"imagesTr/phantom_{n:03d}_0000.nii.gz", f"labelsTr/phantom_{n:03d}.nii.gz",
                             subject])
    config = write_config(tmp_path / "cv.yaml", loop={"folds": 3, "epochs": 1, "iterations_per_epoch": 2})
    run = tmp_path / "run"
    code = cli("train", data / "manifest.csv", "--config", config, "--output", run, "--plan", micro_plan,
               "--fold", "all", "--quiet")
    assert code == 0
    splits = json.loads((run / "splits.json").read_text())
    subject_of = {f"c{n}": s for n, s in enumerate(subjects)}
    assert sorted(c for s in splits for c in s["val"]) == sorted(subject_of)
    folds_of_subject = {s: {k for k, split in enumerate(splits) for c in split["val"] if subject_of[c] == s}
                        for s in set(subjects)}
    assert all(len(folds) == 1 for folds in folds_of_subject.values()), folds_of_subject
    for k, split in enumerate(splits):
        fold = run / f"fold_{k}"
        assert {p.name for p in fold.iterdir()} >= {"last.pt", "metrics.csv", "progress.png", "tensorboard",
                                                    "validation.json"}
        assert sorted({r["case"] for r in json.loads((fold / "validation.json").read_text())}) == split["val"]
        assert not {subject_of[c] for c in split["train"]} & {subject_of[c] for c in split["val"]}
    summary = json.loads((run / "cv_summary.json").read_text())
    assert summary["folds"] == 3 and set(summary["classes"]) == {"blob1", "blob2"}
    assert all(c["n"] == 7 and 0 <= c["dice_mean"] <= 1 for c in summary["classes"].values())
    assert (run / "cv_summary.md").read_text().startswith("| class | n | mean Dice |")


# --- resume and extend -------------------------------------------------------------------------
def test_resume_extend_and_refusing_to_overwrite(micro_dataset: Path, micro_plan: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", loop={"epochs": 2, "val_every": 2})
    run = tmp_path / "run"
    args = ("train", micro_dataset, "--config", config, "--output", run, "--plan", micro_plan, "--quiet")
    assert cli(*args, "--resume") == 0  # --resume on a run that does not exist yet starts it
    fold = run / "fold_0"
    first = load_checkpoint(fold / "last.pt").training
    assert first["epoch"] == 2 and [r["epoch"] for r in first["history"]] == [1, 2]
    capsys.readouterr()

    first_bytes = (fold / "last.pt").read_bytes()
    assert cli(*args) == 2  # a new run over a trained fold is refused, nothing touched
    assert "pass --resume to continue it" in error_line(capsys)
    assert (fold / "last.pt").read_bytes() == first_bytes

    assert cli(*args, "--resume", "--epochs", "4") == 0  # extend the finished run
    extended = load_checkpoint(fold / "last.pt").training
    assert [r["epoch"] for r in extended["history"]] == [1, 2, 3, 4]
    assert extended["history"][:2] == first["history"]
    assert extended["history"][3]["val_dice_mean"] >= 0  # validation ran on the new last epoch
    with (fold / "metrics.csv").open() as f:
        assert [float(r["train_loss"]) for r in csv.DictReader(f)] == [r["train_loss"] for r in extended["history"]]

    before = (fold / "last.pt").read_bytes()
    assert cli(*args, "--resume") == 0  # the config says 2 epochs; the run's own 4 are kept
    assert (fold / "last.pt").read_bytes() == before
    assert "epochs: 4" in (run / "config.yaml").read_text()


def test_set_overrides_reach_the_run_and_its_saved_config(micro_dataset: Path, micro_plan: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", loop={"epochs": 3})
    run = tmp_path / "run"
    args = ("train", micro_dataset, "--config", config, "--output", run, "--plan", micro_plan, "--quiet")
    assert cli(*args, "--set", "optim.lrr=0.001") == 2
    assert "unknown key 'lrr' in optim; did you mean 'lr'?" in error_line(capsys)
    assert not run.exists()

    assert cli(*args, "--set", "loop.epochs=1", "--set", "optim.lr=1e-3") == 0
    history = load_checkpoint(run / "fold_0" / "last.pt").training["history"]
    assert [r["epoch"] for r in history] == [1]
    assert history[0]["lr"] == pytest.approx(1e-3)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 1e-3 and saved["loop"]["epochs"] == 1


# --- acceptance 5 ------------------------------------------------------------------------------
class Exploit:
    """Unpickling this creates a file: a stand-in for arbitrary code in a crafted checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_crafted_checkpoint_is_refused_by_train_resume(micro_dataset: Path, micro_plan: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    (run / "fold_0").mkdir(parents=True)
    torch.save({"format": "medseg-checkpoint", "training": Exploit(marker)}, run / "fold_0" / "last.pt")
    code = cli("train", micro_dataset, "--config", write_config(tmp_path / "c.yaml"), "--output", run,
               "--plan", micro_plan, "--resume", "--quiet")
    assert code == 2
    line = error_line(capsys)
    assert "last.pt" in line and "refused" in line
    assert not marker.exists()


def test_crafted_checkpoint_is_refused_by_infer(micro_dataset: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    torch.save({"format": "medseg-checkpoint", "state_dict": Exploit(marker)}, tmp_path / "model.pt")
    code = cli("infer", micro_dataset / "imagesTr" / "phantom_000_0000.nii.gz", "--model", tmp_path / "model.pt",
               "--output", tmp_path / "seg.nii.gz", "--quiet")
    assert code == 2
    line = error_line(capsys)
    assert "model.pt" in line and "refused" in line
    assert not marker.exists() and not (tmp_path / "seg.nii.gz").exists()


# --- acceptance 6 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        pytest.param({"loop": {"epoch": 3}}, "unknown key 'epoch' in loop; did you mean 'epochs'?", id="unknown-key"),
        pytest.param({"model": {"name": "unett"}}, "unknown model.name 'unett'", id="unknown-model"),
        pytest.param({"model": {"name": "unetr", "hidden_size": 96, "mlp_dim": 192, "num_heads": 4}},
                     "needs a patch size divisible by 16 along every axis; plan.patch_size is [16, 16, 8]",
                     id="unetr-patch"),
        pytest.param({"loop": {"amp": "fp16"}}, "loop.amp: fp16 needs a CUDA GPU", id="fp16-on-cpu"),
        pytest.param({"loop": {"folds": 9}}, "9 folds need at least 9 subjects", id="too-many-folds"),
    ],
)
def test_bad_config_exits_2_naming_the_field(sections: dict, expected: str, micro_dataset: Path, micro_plan: Path,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "bad.yaml", **sections)
    code = cli("train", micro_dataset, "--config", config, "--output", tmp_path / "run", "--plan", micro_plan,
               "--device", "cpu", "--quiet")
    assert code == 2
    assert expected in error_line(capsys)
    assert not list((tmp_path / "run").glob("fold_*/*.pt"))


def test_dataset_declaring_more_classes_than_the_plan_exits_2(micro_dataset: Path, micro_plan: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(micro_dataset, data)
    meta = json.loads((data / "dataset.json").read_text())
    meta["labels"]["blob3"] = 3
    (data / "dataset.json").write_text(json.dumps(meta))
    code = cli("train", data, "--config", write_config(tmp_path / "c.yaml"), "--output", tmp_path / "run",
               "--plan", micro_plan, "--quiet")
    assert code == 2
    assert "plan.labels lacks label value(s) [3] that the dataset declares" in error_line(capsys)


def test_label_map_with_an_undeclared_class_exits_2(micro_dataset: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(micro_dataset, data)
    path = data / "labelsTr" / "phantom_002.nii.gz"
    label = read_volume(path)
    write_volume(label.with_array(np.where(label.array == 2, 3, label.array).astype(np.uint8)), path)
    code = cli("train", data, "--config", write_config(tmp_path / "c.yaml"), "--output", tmp_path / "run", "--quiet")
    assert code == 2
    line = error_line(capsys)
    assert "phantom_002.nii.gz: labels: the label map holds value(s) [3] but the plan's labels are only [1, 2]" in line


def test_plan_file_wins_over_the_config_plan_section_with_a_warning(
        micro_dataset: Path, micro_plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", loop={"epochs": 1, "val_every": 1}, plan={"patch_size": [64, 64, 64]})
    run = tmp_path / "run"
    assert cli("train", micro_dataset, "--config", config, "--output", run, "--plan", micro_plan, "--quiet") == 0
    assert "the config's plan section (patch_size: [64, 64, 64]) is ignored" in capsys.readouterr().err
    assert (run / "plan.yaml").read_text() == micro_plan.read_text()

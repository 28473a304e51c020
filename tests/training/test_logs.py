"""Run logs: metrics.csv, TensorBoard event files and progress.png, also across a resume."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import pytest

from medseg.training.logs import RunLog

NAMES = {1: "liver", 2: "tumour"}


def row(epoch: int, *, val: bool) -> dict[str, float]:
    out = {"epoch": epoch, "train_loss": 1.0 / epoch, "lr": 0.01 * (10 - epoch) / 10, "seconds": 2.5}
    if val:
        out |= {"val_dice_liver": 0.5 + epoch / 100, "val_hd95_liver": 10.0 / epoch, "val_dice_tumour": 0.25,
                "val_dice_mean": (0.75 + epoch / 100) / 2}
    return out


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_metrics_csv_tensorboard_and_plot(tmp_path: Path) -> None:
    log = RunLog(tmp_path, class_names=NAMES)
    for epoch in (1, 2, 3):
        log.add(row(epoch, val=epoch % 2 == 0))
    log.close()
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[1]["val_dice_liver"]) == pytest.approx(0.52) and rows[0]["val_dice_liver"] == ""
    events = scalars(tmp_path / "tensorboard")
    assert events["train_loss"] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert events["val_dice/liver"] == [(2, pytest.approx(0.52))] and events["val_hd95/liver"] == [(2, 5.0)]
    assert set(events) == {"train_loss", "lr", "seconds", "val_dice/liver", "val_hd95/liver", "val_dice/tumour",
                           "val_dice/mean"}
    image = matplotlib.image.imread(tmp_path / "progress.png")
    assert image.shape[:2] == (320, 1200)  # 15 x 4 inches at 80 dpi
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_resumed_log_replaces_rows_after_the_checkpoint(tmp_path: Path) -> None:
    first = RunLog(tmp_path, class_names=NAMES)
    for epoch in (1, 2, 3):
        first.add(row(epoch, val=False))
    first.close()
    # killed during epoch 3 after metrics.csv got its row but the checkpoint said epoch 2: the resumed
    # run starts from the checkpoint's history and writes epoch 3 again
    resumed = RunLog(tmp_path, history=[row(1, val=False), row(2, val=False)], class_names=NAMES)
    resumed.add(row(3, val=True))
    resumed.add(row(4, val=False))
    resumed.close()
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"] and rows[2]["val_dice_tumour"] == "0.25"
    events = scalars(tmp_path / "tensorboard")
    assert [step for step, _ in events["train_loss"]] == [1, 2, 3, 4]  # the first run's epoch 3 is purged
    assert events["val_dice/tumour"] == [(3, 0.25)]

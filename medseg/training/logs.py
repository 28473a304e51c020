"""Run logs: ``metrics.csv`` (one row per epoch), TensorBoard events and ``progress.png``."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseg.io.atomic import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


class RunLog:
    """Epoch history of one training run (rank 0 only), persisted after every epoch.

    Args:
        run_dir: the fold's folder; files are written there.
        history: rows restored from a checkpoint when resuming.
        class_names: value → name, for the per-class columns.
    """

    def __init__(self, run_dir: Path, *, history: Sequence[Mapping[str, Any]] = (),
                 class_names: Mapping[int, str]) -> None:
        self.run_dir = run_dir
        self.rows: list[dict[str, Any]] = [dict(r) for r in history]
        self.class_names = dict(class_names)
        self._tb: Any = None
        # TensorBoard hides events of epochs after the checkpoint (written before a crash) on resume
        self._purge_step = max((int(r["epoch"]) for r in self.rows), default=0) + 1 if self.rows else None

    def add(self, row: Mapping[str, Any]) -> None:
        """Record one epoch (keys: epoch, train_loss, lr, seconds, and optionally val_* entries)."""
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [dict(row)]
        self._write_csv()
        self._write_tensorboard(row)
        self._write_plot()

    def _write_csv(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.run_dir / "metrics.csv", buf.getvalue())

    def _write_tensorboard(self, row: Mapping[str, Any]) -> None:
        try:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=self._purge_step)
        except ImportError:  # tensorboard is a declared dependency; tolerate a broken install
            log.warning("tensorboard is not importable; skipping event files")
            return
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and value == value:
                self._tb.add_scalar(key.replace("val_dice_", "val_dice/").replace("val_hd95_", "val_hd95/"),
                                    value, row["epoch"])
        self._tb.flush()

    def _write_plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in self.rows]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        axes[0].plot(epochs, [r["train_loss"] for r in self.rows], label="train loss")
        axes[0].set_title("training loss")
        for name in self.class_names.values():
            key = f"val_dice_{name}"
            pts = [(r["epoch"], r[key]) for r in self.rows if r.get(key) not in (None, "")]
            if pts:
                axes[1].plot(*zip(*pts, strict=True), marker=".", label=name)
        mean_pts = [(r["epoch"], r["val_dice_mean"]) for r in self.rows if r.get("val_dice_mean") not in (None, "")]
        if mean_pts:
            axes[1].plot(*zip(*mean_pts, strict=True), "k-", linewidth=2, label="mean")
        axes[1].set_title("validation Dice")
        axes[1].set_ylim(0, 1)
        if len(self.class_names) <= 20 and axes[1].get_legend_handles_labels()[0]:
            axes[1].legend(fontsize=6, ncol=2)
        axes[2].plot(epochs, [r["lr"] for r in self.rows])
        axes[2].set_title("learning rate")
        for ax in axes:
            ax.set_xlabel("epoch")
        fig.tight_layout()
        with atomic_path(self.run_dir / "progress.png") as tmp:
            fig.savefig(tmp, dpi=80, format="png")
        plt.close(fig)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

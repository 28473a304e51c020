"""The cross-validation summary: per-class mean Dice and HD95 over every fold's validation cases."""

from __future__ import annotations

import json
from pathlib import Path

from medseg.training.run import write_cv_summary


def fold(run_dir: Path, k: int, rows: list[tuple[str, int, str, float | None, float | None]]) -> None:
    (run_dir / f"fold_{k}").mkdir(parents=True)
    (run_dir / f"fold_{k}" / "validation.json").write_text(json.dumps(
        [{"case": c, "label": v, "name": n, "dice": d, "hd95": h, "status": "ok"} for c, v, n, d, h in rows]))


def test_summary_means_over_all_validation_cases(tmp_path: Path) -> None:
    fold(tmp_path, 0, [("a", 1, "liver", 0.9, 2.0), ("a", 2, "tumour", 0.5, 8.0)])
    fold(tmp_path, 1, [("b", 1, "liver", 0.8, 4.0), ("b", 2, "tumour", 0.0, None),
                       ("c", 1, "liver", 0.7, 3.0), ("c", 2, "tumour", 0.7, 4.0)])
    fold(tmp_path, 2, [("d", 1, "liver", 1.0, 0.0), ("d", 2, "tumour", None, None)])
    summary = json.loads(write_cv_summary(tmp_path).read_text())
    assert summary["folds"] == 3
    liver, tumour = summary["classes"]["liver"], summary["classes"]["tumour"]
    assert (liver["n"], round(liver["dice_mean"], 12), liver["hd95_mean"]) == (4, 0.85, 2.25)
    assert (tumour["n"], round(tumour["dice_mean"], 12), tumour["hd95_mean"]) == (3, 0.4, 6.0)
    table = (tmp_path / "cv_summary.md").read_text().splitlines()
    assert liver["dice_per_fold"] == {"fold_0": 0.9, "fold_1": 0.75, "fold_2": 1.0}
    assert tumour["dice_per_fold"] == {"fold_0": 0.5, "fold_1": 0.35, "fold_2": None}
    assert table[2:] == ["| liver | 4 | 0.8500 | 2.2500 | 0.9000 / 0.7500 / 1.0000 |",
                         "| tumour | 3 | 0.4000 | 6.0000 | 0.5000 / 0.3500 / - |"]

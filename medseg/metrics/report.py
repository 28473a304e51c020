"""Evaluation reports: ``metrics.csv``, ``summary.json``, ``summary.md`` and a box plot PNG.

Every file is written atomically. The Markdown table is rendered from the same dictionary that
becomes ``summary.json``, so the two never disagree. matplotlib is imported only to draw the plot.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from medseg.io.atomic import atomic_path, atomic_write_text
from medseg.metrics.case import METRIC_NAMES
from medseg.metrics.cohort import CaseMatch, CaseResult
from medseg.metrics.summary import SUMMARY_METRICS, MetricStats, metric_stats, summarize

#: Columns of ``metrics.csv``, in order.
CSV_COLUMNS = ("case", "label", "name", *METRIC_NAMES, "status")
LESION_COLUMNS = (
    "case",
    "label",
    "name",
    "n_ref",
    "n_pred",
    "tp",
    "fp",
    "fn",
    "sensitivity",
    "precision",
    "f1",
)
LESION_LIST_COLUMNS = ("case", "label", "name", "kind", "lesion", "volume_ref_ml", "volume_pred_ml", "dice")

#: Metrics in the Markdown table: key, header.
_MD_COLUMNS = (
    ("dice", "Dice"),
    ("iou", "IoU"),
    ("hd95", "HD95 (mm)"),
    ("hd", "HD (mm)"),
    ("assd", "ASSD (mm)"),
    ("nsd", "NSD"),
    ("volume_ref_ml", "Vol. ref (mL)"),
    ("volume_diff_ml", "Vol. pred − ref (mL)"),
)


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`write_report`; the lesion files only with lesion-wise metrics."""

    metrics_csv: Path
    summary_json: Path
    summary_md: Path
    boxplot_png: Path
    lesions_csv: Path | None = None
    lesion_list_csv: Path | None = None


def write_report(
    out_dir: str | Path,
    results: Sequence[CaseResult],
    *,
    names: Mapping[int, str],
    summary: Mapping[str, Any],
) -> ReportFiles:
    """Write the evaluation of ``results`` into ``out_dir`` (created if missing).

    Args:
        out_dir: output folder.
        results: per-case results (see :func:`medseg.metrics.cohort.evaluate_cases`).
        names: label value → class name (values missing here are called ``label_<value>``).
        summary: the cohort summary of ``results`` from :func:`summary_dict`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out / "metrics.csv", out / "summary.json", out / "summary.md", out / "boxplot.png")
    atomic_write_text(files.metrics_csv, metrics_csv_text(results, names))
    atomic_write_text(files.summary_json, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(files.summary_md, summary_markdown(summary))
    write_boxplot(files.boxplot_png, results, names)
    if any(r.lesions for r in results):
        lesions_csv, lesion_list_csv = out / "lesions.csv", out / "lesion_list.csv"
        atomic_write_text(lesions_csv, lesions_csv_text(results, names))
        atomic_write_text(lesion_list_csv, lesion_list_csv_text(results, names))
        files = replace(files, lesions_csv=lesions_csv, lesion_list_csv=lesion_list_csv)
    return files


def metrics_csv_text(results: Sequence[CaseResult], names: Mapping[int, str]) -> str:
    """``metrics.csv``: one row per case and class; missing values are empty cells."""
    rows = []
    for r in results:
        for m in r.metrics:
            row = {**asdict(m), "case": r.name, "name": _name(names, m.label)}
            rows.append([_cell(row[c]) for c in CSV_COLUMNS])
    return _csv(CSV_COLUMNS, rows)


def lesions_csv_text(results: Sequence[CaseResult], names: Mapping[int, str]) -> str:
    """``lesions.csv``: lesion-wise counts and rates per case and class."""
    rows = []
    for r in results:
        for label, lm in sorted(r.lesions.items()):
            row = {**asdict(lm), "case": r.name, "label": label, "name": _name(names, label)}
            rows.append([_cell(row[c]) for c in LESION_COLUMNS])
    return _csv(LESION_COLUMNS, rows)


def lesion_list_csv_text(results: Sequence[CaseResult], names: Mapping[int, str]) -> str:
    """``lesion_list.csv``: a row per reference lesion (kind ``tp``/``fn``) and false-positive component."""
    rows = []
    for r in results:
        for label, lm in sorted(r.lesions.items()):
            head = [r.name, str(label), _name(names, label)]
            for lesion in lm.lesions:
                kind = "tp" if lesion.detected else "fn"
                values = (lesion.index, lesion.volume_ref_ml, lesion.volume_pred_ml, lesion.dice)
                rows.append(head + [kind, *map(_cell, values)])
            for i, volume in enumerate(lm.false_positive_volumes_ml, start=1):
                rows.append(head + ["fp", str(i), _cell(0.0), _cell(volume), _cell(0.0)])
    return _csv(LESION_LIST_COLUMNS, rows)


def summary_dict(
    results: Sequence[CaseResult],
    *,
    names: Mapping[int, str],
    match: CaseMatch,
    nsd_tolerance_mm: float,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The content of ``summary.json`` (JSON types only; missing statistics are ``None``)."""
    summaries = summarize({r.name: r.metrics for r in results}, n_bootstrap=n_bootstrap, seed=seed)
    classes = [
        {
            "label": s.label,
            "name": _name(names, s.label),
            "n_cases": s.n_cases,
            "n_both_empty": s.n_both_empty,
            "n_empty_reference": s.n_empty_reference,
            "n_empty_prediction": s.n_empty_prediction,
            "metrics": {key: _stats_dict(s.stats[key]) for key in SUMMARY_METRICS},
        }
        for s in summaries
    ]
    return {
        "n_cases": len(results),
        "cases": [r.name for r in results],
        "resampled_cases": [r.name for r in results if r.resampled],
        "missing_reference": list(match.missing_reference),
        "missing_prediction": list(match.missing_prediction),
        "nsd_tolerance_mm": nsd_tolerance_mm,
        "confidence_interval": {
            "level": 0.95,
            "method": "percentile bootstrap of the mean",
            "n_bootstrap": n_bootstrap,
            "seed": seed,
        },
        "classes": classes,
        "lesion_wise": _lesion_summary(results, names, n_bootstrap, seed),
    }


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """``summary.md``: the per-class table (mean ± std [95% CI]) and the unmatched cases."""
    lines = [
        "# Evaluation summary",
        "",
        f"{summary['n_cases']} cases; NSD tolerance {summary['nsd_tolerance_mm']:g} mm. "
        "Each cell: mean ± std [95% bootstrap CI of the mean]. Distances in mm, over the cases where "
        "both masks are non-empty; empty columns count cases with an empty reference / prediction / both.",
        "",
        "| Class | Label | n | " + " | ".join(h for _, h in _MD_COLUMNS) + " | Empty ref / pred / both |",
        "|" + "---|" * (len(_MD_COLUMNS) + 4),
    ]
    for c in summary["classes"]:
        cells = [_md_stats(c["metrics"][key]) for key, _ in _MD_COLUMNS]
        empty = f"{c['n_empty_reference']} / {c['n_empty_prediction']} / {c['n_both_empty']}"
        lines.append(f"| {c['name']} | {c['label']} | {c['n_cases']} | " + " | ".join(cells) + f" | {empty} |")
    if summary["lesion_wise"]:
        lines += [
            "",
            "## Lesion-wise",
            "",
            "| Class | Lesions | TP | FP | FN | Sensitivity | Precision | F1 | Lesion Dice |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in summary["lesion_wise"]:
            rates = " | ".join(_fmt(c[k]) for k in ("sensitivity", "precision", "f1"))
            lines.append(
                f"| {c['name']} | {c['n_ref']} | {c['tp']} | {c['fp']} | {c['fn']} | {rates} | "
                f"{_md_stats(c['lesion_dice'])} |"
            )
    for key, title in (
        ("missing_reference", "Predictions without a reference"),
        ("missing_prediction", "References without a prediction"),
        ("resampled_cases", "Predictions resampled onto the reference grid"),
    ):
        if summary[key]:
            lines += ["", f"{title} ({len(summary[key])}): " + ", ".join(summary[key])]
    return "\n".join(lines) + "\n"


def write_boxplot(path: Path, results: Sequence[CaseResult], names: Mapping[int, str]) -> None:
    """Box plots of Dice and HD95 per class (PNG, drawn with matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = sorted({m.label for r in results for m in r.metrics})
    per_class = {v: [m for r in results for m in r.metrics if m.label == v] for v in labels}
    fig = Figure(figsize=(max(6.0, 0.6 * len(labels) + 2), 7.0), layout="constrained")
    FigureCanvasAgg(fig)
    panels = (("Dice", lambda m: m.dice), ("HD95 (mm)", lambda m: m.hd95))
    for ax, (title, value_of) in zip(fig.subplots(2, 1, sharex=True), panels, strict=True):
        data = [[v for m in per_class[label] if (v := value_of(m)) is not None] for label in labels]
        ax.boxplot(data, showmeans=True)
        ax.set_ylabel(title)
        ax.grid(axis="y", alpha=0.3)
    ax.set_xticks(range(1, len(labels) + 1), [_name(names, v) for v in labels], rotation=45, ha="right")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _lesion_summary(
    results: Sequence[CaseResult], names: Mapping[int, str], n_bootstrap: int, seed: int
) -> list[dict[str, Any]]:
    out = []
    for label in sorted({label for r in results for label in r.lesions}):
        per_case = [r.lesions[label] for r in results if label in r.lesions]
        tp, fp, fn = (
            sum(lm.tp for lm in per_case),
            sum(lm.fp for lm in per_case),
            sum(lm.fn for lm in per_case),
        )
        n_ref, n_pred = sum(lm.n_ref for lm in per_case), sum(lm.n_pred for lm in per_case)
        dices = [lesion.dice for lm in per_case for lesion in lm.lesions]
        out.append(
            {
                "label": label,
                "name": _name(names, label),
                "n_cases": len(per_case),
                "n_ref": n_ref,
                "n_pred": n_pred,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "sensitivity": tp / n_ref if n_ref else None,
                "precision": (n_pred - fp) / n_pred if n_pred else None,
                "f1": 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0,
                "lesion_dice": _stats_dict(metric_stats(dices, n_bootstrap=n_bootstrap, seed=seed)),
                "f1_per_case": _stats_dict(
                    metric_stats([lm.f1 for lm in per_case], n_bootstrap=n_bootstrap, seed=seed)
                ),
            }
        )
    return out


def _stats_dict(s: MetricStats) -> dict[str, Any]:
    return {"n": s.n, "mean": s.mean, "median": s.median, "std": s.std, "ci95": [s.ci_low, s.ci_high]}


def _md_stats(s: Mapping[str, Any]) -> str:
    if not s["n"]:
        return "–"
    std = f" ± {_fmt(s['std'])}" if s["std"] is not None else ""
    return f"{_fmt(s['mean'])}{std} [{_fmt(s['ci95'][0])}, {_fmt(s['ci95'][1])}]"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".9g")
    return str(value)


def _name(names: Mapping[int, str], label: int) -> str:
    return names.get(label, f"label_{label}")


def _csv(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()

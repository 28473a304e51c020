"""``medseg evaluate``: per-class Dice, HD95, ASSD, NSD... of predictions against references."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from medseg.labels import LabelSpec
    from medseg.metrics.cohort import CasePair, CaseResult


def evaluate(
    pred: Path = typer.Option(..., "--pred", help="Predicted label map, or a folder of them."),
    ref: Path = typer.Option(
        ..., "--ref", help="Reference label map, or a folder (cases matched by file name)."
    ),
    labels: Path = typer.Option(
        None, "--labels", help="dataset.json or a JSON/YAML mapping name → value; default: numbered labels."
    ),
    output: Path = typer.Option(Path("evaluation"), "--output", "-o", help="Folder for the reports."),
    nsd_tolerance_mm: float = typer.Option(2.0, "--nsd-tolerance-mm", min=0.0, help="NSD tolerance in mm."),
    lesion_wise: list[str] = typer.Option(
        None,
        "--lesion-wise",
        help="Class (name or value) that also gets lesion-wise metrics; repeat for more.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Cases evaluated in parallel (processes)."),
    resample_pred: bool = typer.Option(
        False, "--resample-pred", help="Resample predictions onto the reference grid (nearest neighbour)."
    ),
) -> None:
    """Compare predictions with references; write metrics.csv, summary.json, summary.md, boxplot.png."""
    from medseg.errors import InvalidInputError
    from medseg.labels import load_label_spec
    from medseg.metrics.cohort import match_cases
    from medseg.metrics.report import summary_dict, write_report

    match = match_cases(pred, ref)
    for missing, what in (
        (match.missing_reference, "no reference"),
        (match.missing_prediction, "no prediction"),
    ):
        if missing:
            typer.echo(f"medseg: warning: {len(missing)} case(s) with {what}: {', '.join(missing)}", err=True)
    if not match.pairs:
        raise InvalidInputError(
            "no case has both a prediction and a reference; check the file names", path=pred
        )
    spec = load_label_spec(labels) if labels is not None else None
    lesion_values = [_label_value(name, spec) for name in lesion_wise or []]
    results = _evaluate_with_progress(
        match.pairs,
        labels=spec.values if spec is not None else None,
        nsd_tolerance_mm=nsd_tolerance_mm,
        lesion_labels=lesion_values,
        resample_pred=resample_pred,
        jobs=jobs,
    )
    names = spec.names if spec is not None else {}
    summary = summary_dict(results, names=names, match=match, nsd_tolerance_mm=nsd_tolerance_mm)
    files = write_report(output, results, names=names, summary=summary)
    _print_table(summary)
    written = [files.metrics_csv, files.summary_json, files.summary_md, files.boxplot_png]
    written += [p for p in (files.lesions_csv, files.lesion_list_csv) if p is not None]
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def _evaluate_with_progress(pairs: Sequence[CasePair], **options: Any) -> list[CaseResult]:
    from rich.progress import Progress

    from medseg.metrics.cohort import evaluate_cases

    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=len(pairs))
        return evaluate_cases(pairs, on_case_done=lambda _: progress.advance(task), **options)


def _label_value(name: str, spec: LabelSpec | None) -> int:
    """Label value of a class given by name or number (``label_3`` works without a label file)."""
    from medseg.errors import ConfigError

    if spec is not None and name in spec.names.values():
        return spec.value_of(name)
    text = name.removeprefix("label_")
    if text.isdigit() and int(text) >= 1:
        return int(text)
    if spec is not None:
        spec.value_of(name)  # raises, listing the known names
    raise ConfigError(f"--lesion-wise {name!r}: give a label value (e.g. 2), or class names with --labels")


def _print_table(summary: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    tau = summary["nsd_tolerance_mm"]
    table = Table(
        title=f"{summary['n_cases']} cases, mean ± std", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False
    )
    for header in ("class (label)", "Dice", "HD95 mm", "ASSD mm", f"NSD {tau:g}mm", "empty r/p/b"):
        table.add_column(header, justify="left" if header.startswith("class") else "right", no_wrap=True)
    for c in summary["classes"]:
        m = c["metrics"]
        cells = [_mean_std(m[key]) for key in ("dice", "hd95", "assd", "nsd")]
        empty = f"{c['n_empty_reference']}/{c['n_empty_prediction']}/{c['n_both_empty']}"
        table.add_row(f"{c['name']} ({c['label']})", *cells, empty)
    Console(highlight=False).print(table)
    for c in summary["lesion_wise"]:
        typer.echo(
            f"lesion-wise {c['name']}: {c['n_ref']} lesions, TP {c['tp']}, FP {c['fp']}, FN {c['fn']}, "
            f"F1 {c['f1']:.3f}"
        )


def _mean_std(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "–"
    std = f"±{stats['std']:.3g}" if stats["std"] is not None else ""
    return f"{stats['mean']:.3g}{std}"

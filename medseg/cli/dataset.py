"""``medseg dataset check DIR``: validate a dataset folder or CSV manifest before training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="Work with datasets (MSD / nnU-Net folders, CSV manifests).", no_args_is_help=True)


@app.command("check")
def check(
    path: Path = typer.Argument(..., help="Dataset folder (with dataset.json) or .csv manifest."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes reading cases."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Label maps without foreground are warnings."),
) -> None:
    """Check every case: files, channels, geometry, label values, NaN/Inf. Exit code 2 on any error."""
    from medseg.data.check import check_dataset
    from medseg.data.dataset import load_dataset

    dataset = load_dataset(path, strict=False)
    report = check_dataset(dataset, jobs=jobs, allow_empty_labels=allow_empty)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 2)


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"dataset {report.root}", title_justify="left")
    table.add_column("case", no_wrap=True)
    for col in ("shape", "spacing (mm)", "orient.", "ch", "label values", "intensity", "errors"):
        table.add_column(col, overflow="fold")
    for r in report.rows:
        table.add_row(
            r.case_id,
            "×".join(map(str, r.shape)) if r.shape else "-",
            "×".join(f"{s:.3g}" for s in r.spacing_mm) if r.spacing_mm else "-",
            r.orientation or "-",
            str(r.n_channels) if r.n_channels is not None else "-",
            _values(r.label_values),
            "; ".join(f"{lo:.4g}..{hi:.4g}" for lo, hi in r.intensity_range) if r.intensity_range else "-",
            "[red]" + str(r.n_errors) + "[/red]" if r.n_errors else "0",
        )
    console.print(table)
    for issue in report.issues:
        colour = "red" if issue.severity == "error" else "yellow"
        console.print(f"[{colour}]{issue.severity}[/{colour}] [{issue.kind}] {issue}", soft_wrap=True)
    status = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
    console.print(f"{status}: {len(report.rows)} cases, {len(report.errors)} error(s), "
                  f"{len(report.warnings)} warning(s)")


def _values(values: tuple[int, ...] | None) -> str:
    if values is None:
        return "-"
    shown = ",".join(map(str, values[:8]))
    return shown + (f",… ({len(values)})" if len(values) > 8 else "")

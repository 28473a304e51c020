"""``medseg info PATH``: geometry, intensities and warnings of a volume or DICOM series."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def info(
    path: Path = typer.Argument(..., help="Volume file, DICOM folder, .dcm file or .zip of a series."),
    series_uid: str = typer.Option(None, "--series-uid", help="DICOM series to read when a folder holds several."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show shape, spacing, orientation, origin, direction, dtype, intensity range and warnings."""
    from medseg.io import read_volume
    from medseg.io.inspect import describe_volume

    report = describe_volume(read_volume(path, series_uid=series_uid))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report)


def _print_report(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from medseg.io.inspect import VolumeReport

    assert isinstance(report, VolumeReport)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    fmt = lambda values: " × ".join(f"{v:.4g}" for v in values)  # noqa: E731
    rows = [
        ("file", report.path or "-"),
        ("shape", " × ".join(map(str, report.shape)) + (f"  ({report.n_channels} channels)" * (report.n_channels > 1))),
        ("spacing (mm)", fmt(report.spacing_mm)),
        ("orientation", report.orientation),
        ("origin (RAS mm)", ", ".join(f"{v:.3f}" for v in report.origin_mm)),
        ("direction (RAS)", "  ".join("[" + ", ".join(f"{x:.4f}" for x in col) + "]" for col in report.direction)),
        ("dtype", report.dtype),
        ("modality", report.modality or "-"),
        ("intensity", f"{report.intensity_min:.6g} .. {report.intensity_max:.6g} (mean {report.intensity_mean:.6g})"),
    ]
    if report.n_unique is not None:
        rows.append(("distinct values", str(report.n_unique)))
    for key, value in rows:
        table.add_row(key, value)
    console = Console(highlight=False)
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")

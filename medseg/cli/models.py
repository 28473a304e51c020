"""``medseg models list``: bundled and user models."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medseg.cli.common import models_dir_option, resolve_models_dir

app = typer.Typer(help="Bundled and user models.", no_args_is_help=True)


@app.command("list")
def list_(
    models_dir: Path = models_dir_option(),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List models: name, source, classes, intended input, and which one is the default."""
    from medseg.models.zoo import list_models

    models = list_models(resolve_models_dir(models_dir))
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in models], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="medseg models")
    for col in ("name", "source", "default", "classes", "description"):
        table.add_column(col)
    for m in models:
        classes = ", ".join(m.classes.values())
        table.add_row(m.name, m.source, "yes" if m.default else "", classes[:80] + ("…" if len(classes) > 80 else ""),
                      m.description)
    Console().print(table)
    if not models:
        typer.echo("no models found (bundled or in the user models folder)")

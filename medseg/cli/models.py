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


@app.command("pack")
def pack(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by `medseg train` (e.g. run/fold_0/best.pt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the inference-only checkpoint."),
    full_precision: bool = typer.Option(False, "--full-precision", help="Keep float32 weights (default: float16)."),
    name: str = typer.Option(None, help="Model name for the model card."),
    description: str = typer.Option(None, help="Intended input and use, for the model card."),
) -> None:
    """Strip training state (and halve the size) so a checkpoint can be shared or put in a models folder."""
    from medseg.models.checkpoint import file_sha256, pack_checkpoint

    card = {k: v for k, v in {"name": name, "description": description}.items() if v is not None}
    out = pack_checkpoint(checkpoint, output, half=not full_precision, card=card)
    typer.echo(f"{out}  sha256 {file_sha256(out)}  ({out.stat().st_size / 1e6:.1f} MB)")

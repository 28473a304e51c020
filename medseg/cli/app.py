"""The typer application: global options and the list of commands."""

from __future__ import annotations

import logging

import typer

from medseg import __version__
from medseg.cli import (
    dataset,
    evaluate,
    example,
    export,
    infer,
    info,
    models,
    plan,
    train,
)

app = typer.Typer(
    name="medseg",
    help="3D medical image segmentation: inspect, plan, train, infer, evaluate and export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medseg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (INFO level)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and DEBUG logs."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """medseg: 3D medical image segmentation that is exact about geometry."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    # libraries (matplotlib, PIL, highdicom...) stay at WARNING: --debug shows medseg's own DEBUG logs
    logging.basicConfig(level=logging.WARNING, format="medseg: %(levelname)s: %(message)s", force=True)
    logging.getLogger("medseg").setLevel(level)


app.command("info")(info.info)
app.command("example")(example.example)
app.add_typer(dataset.app, name="dataset")
app.command("plan")(plan.plan)
app.command("infer")(infer.infer)
app.add_typer(models.app, name="models")
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("export")(export.export)

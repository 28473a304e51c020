"""``medseg example NAME``: copy a bundled example scan into the working folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer


def example(
    name: str = typer.Argument("brain_flair", help="Example to copy (see --list)."),
    output: Path = typer.Option(None, "--output", "-o", help="Target file; default: <name>.nii.gz here."),
    list_: bool = typer.Option(False, "--list", help="List the bundled examples and exit."),
) -> None:
    """Copy a bundled example scan here (so outputs land beside it, not in the package)."""
    from medseg.examples import EXAMPLES, get_example
    from medseg.io import atomic_path

    if list_:
        for ex in EXAMPLES.values():
            typer.echo(f"{ex.name}: {ex.description}. Source: {ex.source}")
        return
    ex = get_example(name)
    target = output or Path(ex.filename)
    with atomic_path(target) as tmp:
        shutil.copyfile(ex.path, tmp)
    typer.echo(str(target))

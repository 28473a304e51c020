"""Options shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

DEFAULT_MODELS_DIR = Path("~/.medseg/models")


def default_models_dir() -> Path:
    """``$MEDSEG_MODELS_DIR`` if set, else ``~/.medseg/models`` (read here, in the CLI layer only)."""
    return Path(os.environ.get("MEDSEG_MODELS_DIR", str(DEFAULT_MODELS_DIR))).expanduser()


def models_dir_option() -> Path:
    return typer.Option(
        None, "--models-dir",
        help="Folder of user model checkpoints (*.pt). Default: $MEDSEG_MODELS_DIR or ~/.medseg/models.",
    )


def resolve_models_dir(value: Path | None) -> Path:
    return value if value is not None else default_models_dir()

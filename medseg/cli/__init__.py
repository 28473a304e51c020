"""The ``medseg`` command line: a thin typer layer over the library.

Only this package prints and sets exit codes. A :class:`~medseg.errors.MedsegError` becomes one
line on stderr (``medseg: error: <file>: <problem>; <fix>``) and exit code 2; ``--debug`` adds
the traceback. Heavy modules (torch, MONAI) are imported inside the commands that need them, so
``medseg --help`` and ``medseg --version`` stay instant.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence

import typer

from medseg.cli.app import app
from medseg.errors import MedsegError

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``medseg`` console script and ``python -m medseg``."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # standalone mode: typer/click print usage errors and --help and exit themselves (code 2
        # for usage errors), whichever click (installed or vendored by typer) is in use
        app(args=args, prog_name="medseg")
    except MedsegError as exc:
        if debug:
            traceback.print_exc()
        _error_line(str(exc))
        sys.exit(EXIT_USER_ERROR)
    finally:
        logging.shutdown()


def _error_line(message: str) -> None:
    one_line = " ".join(message.split())
    sys.stderr.write(f"medseg: error: {one_line}\n")
    sys.stderr.flush()


__all__ = ["main", "typer"]

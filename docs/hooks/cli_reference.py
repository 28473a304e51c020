"""MkDocs hook: the CLI reference page (``cli.md``), generated at build time from the CLI itself.

Every command and sub-command is found by walking the typer application; its section is exactly what
``medseg COMMAND --help`` prints (run as a subprocess, 80 columns). ``tests/docs/test_docs_build.py``
checks the built page against ``medseg --help`` for every command, so the reference cannot go stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

from mkdocs.structure.files import File, Files

PAGE = "cli.md"
#: Help is formatted for this terminal width, whatever terminal builds the site.
HELP_ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}

INTRO = """# CLI reference

Every `medseg` command and option, exactly as `medseg COMMAND --help` prints it. This page is generated
from the command line each time the site is built (`docs/hooks/cli_reference.py`), and a test checks it
against `medseg --help` for every command, so it cannot fall behind the code.

Errors you can fix (a missing file, a bad header, an unknown option value) end with one line on stderr,
`medseg: error: <file>: <problem>; <fix>`, and exit code 2; `medseg --debug COMMAND ...` adds the
traceback. `medseg --verbose COMMAND ...` logs progress details.

| command | what it does |
|---|---|
"""


def command_paths() -> Iterator[tuple[str, ...]]:
    """``()`` for ``medseg`` itself, then every command and sub-command in registration order."""
    import typer

    from medseg.cli.app import app

    def walk(command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


def short_help(path: tuple[str, ...]) -> str:
    """The one-line summary that ``medseg --help`` lists for a command."""
    import typer

    from medseg.cli.app import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command.get_short_help_str(limit=200)


def help_text(path: tuple[str, ...]) -> str:
    """What ``medseg *path --help`` prints."""
    env = {**os.environ, **HELP_ENV}
    result = subprocess.run([sys.executable, "-m", "medseg", *path, "--help"], capture_output=True, text=True,
                            env=env, check=True)
    return result.stdout


def reference_markdown() -> str:
    paths = list(command_paths())
    rows = [f"| [`{_title(p)}`](#{_anchor(p)}) | {short_help(p)} |" for p in paths if p]
    sections = [f"## `{_title(p)}` {{#{_anchor(p)}}}\n\n```text\n{help_text(p).rstrip()}\n```\n" for p in paths]
    return INTRO + "\n".join(rows) + "\n\n" + "\n".join(sections)


def _title(path: tuple[str, ...]) -> str:
    return " ".join(("medseg", *path))


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(("medseg", *path))


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, PAGE, content=reference_markdown()))
    return files

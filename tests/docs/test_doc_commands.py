"""Nothing in README.md or docs/ names a command, option, module or file that does not exist.

Every ``medseg ...`` command in a shell block or in inline code must be a real (sub)command, and every
option it uses must be one of that command's options; every inline ``--option`` must belong to some
medseg command or to ``workflows/cohort``; every ``medseg.x.y`` name must import, and every repository
path must exist. Runnable examples are run by ``test_doc_examples.py``.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from medseg.cli.app import app
from tests.docs.pages import REPO, SHELL_LANGS, all_pages, inline_code, parse_page, shell_commands

PAGES = [pytest.param(p, id=str(p.relative_to(REPO))) for p in all_pages()]
ROOT = typer.main.get_command(app)


def test_every_page_is_found() -> None:
    names = {str(p.relative_to(REPO)) for p in all_pages()}
    assert {"README.md", "docs/quickstart.md", "docs/tutorials/segment-a-scan.md", "docs/architecture.md"} <= names


# --- medseg commands ------------------------------------------------------------------------------
def _options(command: Any) -> dict[str, Any]:
    out = {"--help": None}
    for param in command.params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                out[name] = param
    return out


def _takes_value(param: Any) -> bool:
    return param is not None and not param.is_flag and not param.count


def medseg_problems(words: list[str]) -> list[str]:
    """What is wrong with ``medseg WORDS...`` (empty if it is a valid command line)."""
    command, path, problems = ROOT, ["medseg"], []
    i = 1
    while i < len(words):
        word = words[i]
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            options = _options(command)
            if name not in options:
                problems.append(f"`{' '.join(path)}` has no option {name}")
            elif _takes_value(options[name]) and "=" not in word:
                i += 1
        elif hasattr(command, "commands"):
            if word.isupper() or word in ("...", "…"):  # a placeholder such as COMMAND
                return problems
            if word not in command.commands:
                problems.append(f"`{' '.join(path)}` has no command {word!r}")
                return problems
            command = command.commands[word]
            path.append(word)
        i += 1
    return problems


def _commands_in(page: Path) -> Iterator[tuple[str, list[str]]]:
    parsed = parse_page(page)
    for block in parsed.blocks:
        if block.lang in SHELL_LANGS:
            for words in shell_commands(block.code):
                yield block.where, words
        elif block.lang in ("", "text"):  # commands shown beside their output or in a sketch
            for line in block.code.splitlines():
                if line.startswith(("medseg ", "workflows/cohort ")):
                    yield block.where, shell_commands(line)[0]
    for span in inline_code(parsed.text):
        if span.startswith(("medseg ", "workflows/cohort ")):
            yield f"{page.relative_to(REPO)} (inline `{span}`)", span.split()


@pytest.mark.parametrize("page", PAGES)
def test_medseg_commands_and_options_exist(page: Path) -> None:
    problems = []
    for where, words in _commands_in(page):
        if words[0] == "medseg":
            problems += [f"{where}: {p}" for p in medseg_problems(words)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_stale_commands() -> None:
    assert medseg_problems(shlex.split("medseg infer scan.nii.gz --model m.pt -o out.nii.gz --tta")) == []
    assert medseg_problems(shlex.split("medseg --debug dataset check data --json")) == []
    assert medseg_problems(shlex.split("medseg COMMAND --help")) == []
    assert medseg_problems(shlex.split("medseg infer scan.nii.gz --fast")) == ["`medseg infer` has no option --fast"]
    assert medseg_problems(shlex.split("medseg dataset validate x")) == ["`medseg dataset` has no command 'validate'"]
    # an option's value is not mistaken for a command or an option
    assert medseg_problems(shlex.split("medseg evaluate --pred a --ref b --lesion-wise tumour")) == []


# --- workflows/cohort ---------------------------------------------------------------------------------
def _workflow_options() -> set[str]:
    out = subprocess.run([sys.executable, str(REPO / "workflows" / "cohort"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", out))


@pytest.mark.parametrize("page", PAGES)
def test_workflow_options_exist(page: Path) -> None:
    known = _workflow_options()
    problems = [f"{where}: workflows/cohort has no option {w}"
                for where, words in _commands_in(page) if words[0] == "workflows/cohort"
                for w in words[1:] if w.startswith("-") and w.split("=")[0] not in known]
    assert not problems, "\n".join(problems)


# --- inline options, module names, paths ---------------------------------------------------------------
def _all_medseg_options() -> set[str]:
    def walk(command: Any) -> Iterator[str]:
        yield from _options(command)
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    return set(walk(ROOT))


@pytest.mark.parametrize("page", PAGES)
def test_inline_options_belong_to_a_command(page: Path) -> None:
    """Spans that start with an option (``--tta``, ``--device cpu``), as in the tutorials' option tables."""
    known = _all_medseg_options() | _workflow_options()
    flags = [span.split()[0] for span in inline_code(page.read_text(encoding="utf-8"))
             if re.match(r"--[a-z]", span)]
    unknown = sorted({f.split("=")[0].rstrip(",") for f in flags} - known)
    assert not unknown, f"{page.relative_to(REPO)}: options that no command has: {unknown}"


def resolve(dotted: str) -> object:
    """Import the longest importable prefix of ``dotted`` and get the rest as attributes."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for attr in parts[n:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("page", PAGES)
def test_named_modules_functions_and_paths_exist(page: Path) -> None:
    problems = []
    for span in inline_code(page.read_text(encoding="utf-8")):
        name = re.match(r"medseg(\.\w+)+", span)
        if name:
            try:
                resolve(name.group(0))
            except (ImportError, AttributeError) as exc:
                problems.append(f"`{name.group(0)}`: {exc}")
        path = re.fullmatch(r"((?:medseg|workflows|configs|tests|benchmarks|docs)/[\w./-]*)", span)
        if path and not (REPO / path.group(1)).exists():
            problems.append(f"`{path.group(1)}`: no such file or folder")
    assert not problems, f"{page.relative_to(REPO)}:\n" + "\n".join(problems)

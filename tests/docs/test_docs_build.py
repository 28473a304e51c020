"""The documentation site builds with ``mkdocs build --strict``, and its CLI reference is ``medseg --help``.

``--strict`` turns every warning into an error: a page missing from the nav, a broken link or anchor,
a nav entry without its page.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from medseg.cli.app import app
from tests.docs.pages import REPO

HELP_ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


def command_paths() -> list[tuple[str, ...]]:
    """``()`` for ``medseg`` and every command and sub-command, found from the typer app."""
    def walk(command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        return [path, *(p for name, sub in getattr(command, "commands", {}).items() for p in walk(sub, (*path, name)))]

    return walk(typer.main.get_command(app), ())


def medseg_help(path: tuple[str, ...]) -> str:
    """What the installed ``medseg`` console script prints for ``medseg *path --help``."""
    exe = Path(sys.executable).parent / "medseg"
    result = subprocess.run([str(exe), *path, "--help"], capture_output=True, text=True, check=True,
                            env={**os.environ, **HELP_ENV})
    return result.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(out)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out


def test_site_builds_strict_with_every_page(site: Path) -> None:
    pages = {p.relative_to(REPO / "docs").with_suffix("") for p in (REPO / "docs").rglob("*.md")}
    for page in pages:
        target = site / ("index.html" if page.name == "index" and page.parent == Path(".") else
                         page.parent / ("" if page.name == "index" else page.name) / "index.html")
        assert target.is_file(), f"{page}.md was not built"
    assert (site / "cli" / "index.html").is_file()


def code_after_heading(page_html: str, anchor: str) -> str:
    """The text of the first code block (``<pre>``) after the heading with id ``anchor``."""
    start = page_html.index(f'id="{anchor}"')
    m = re.compile(r"<pre[^>]*>.*?<code>(.*?)</code>", re.S).search(page_html, start)
    assert m is not None, anchor
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))


def test_cli_reference_is_the_help_of_every_command(site: Path) -> None:
    page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    paths = command_paths()
    assert ("infer",) in paths and ("dataset", "check") in paths and ("models", "list") in paths
    sections = set(re.findall(r'<h2 id="(medseg[\w-]*)"', page))
    assert sections == {"-".join(("medseg", *p)) for p in paths}
    for path in paths:
        anchor = "-".join(("medseg", *path))
        assert code_after_heading(page, anchor).rstrip() == medseg_help(path).rstrip(), " ".join(path)


def test_cli_reference_lists_every_command_with_a_link(site: Path) -> None:
    page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for path in command_paths()[1:]:
        assert f'href="#{"-".join(("medseg", *path))}"' in page

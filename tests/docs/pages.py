"""Read the documentation's Markdown: fenced blocks with their ``doctest`` markers, inline code, commands.

Markers are HTML comments (invisible on the site and on GitHub):

* ``<!-- doctest: setup NAME ... -->`` anywhere in a page: fixtures its examples need (see
  ``test_doc_examples.SETUPS``);
* ``<!-- doctest: run -->`` on the line(s) before a fenced block: run it (bash, or python);
* ``<!-- doctest: run-if-default-model -->``: run it once a default model is bundled;
* ``<!-- doctest: skip (REASON) -->``: do not run it, and say why.

README.md's ``<!-- ci:install -->`` and ``<!-- ci:test -->`` blocks count as skipped: CI runs them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

MARKER = re.compile(r"<!--\s*doctest:\s*(.*?)\s*-->", re.S)
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w.+-]*)")
SHELL_LANGS = ("bash", "sh", "shell", "console")
RUNNABLE_LANGS = (*SHELL_LANGS, "python")


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it is, its language, its code and its marker (``None`` if unmarked)."""

    page: Path
    line: int
    lang: str
    code: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


@dataclass(frozen=True)
class Page:
    path: Path
    setups: tuple[str, ...]
    blocks: tuple[Block, ...]
    text: str


def all_pages() -> list[Path]:
    """README.md and every Markdown file of the docs site."""
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def parse_page(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    setups: list[str] = []
    for m in MARKER.finditer(text):
        if m.group(1).startswith("setup "):
            setups += m.group(1).split()[1:]
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", _marker_before(lines, start)))
    return Page(path, tuple(setups), tuple(blocks), text)


def _marker_before(lines: list[str], fence_line: int) -> str | None:
    """The ``doctest`` marker on the last non-blank line(s) before a fence, if any."""
    j = fence_line - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or not lines[j].strip().endswith("-->"):
        return None
    k = j
    while k >= 0 and "<!--" not in lines[k]:
        k -= 1
    comment = "\n".join(lines[k:j + 1])
    if re.fullmatch(r"\s*<!-- ci:(install|test) -->\s*", comment):
        return "skip (README.md's CI block: .ci/run runs it verbatim)"
    m = MARKER.search(comment)
    if m is None or m.group(1).startswith("setup "):
        return None
    return m.group(1)


def inline_code(text: str) -> list[str]:
    """Inline code spans outside fenced blocks."""
    outside = re.sub(r"^(\s*)(`{3,}).*?^\s*\2\s*$", "", text, flags=re.S | re.M)
    return re.findall(r"(?<!`)`([^`\n]+)`(?!`)", outside)


def shell_commands(code: str) -> list[list[str]]:
    """Simple commands of a shell block: continuations joined, comments dropped, split at ``&&``,
    ``||``, ``;`` and ``|``; each as its words."""
    joined = re.sub(r"\\\n", " ", code)
    out: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        if not line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in lexer:
            if token and set(token) <= set(";&|"):
                out.append(words)
                words = []
            else:
                words.append(token)
        out.append(words)
    return [w for w in out if w]

"""Cohort QC report: one self-contained HTML page, one row per case (thumbnail, volume per structure,
warnings), so a reader can scan a few hundred predictions for failures in minutes.

Thumbnails are linked by relative path (keep the PNGs beside the report); volumes are in millilitres.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medseg.export.statistics import StructureStatistics
from medseg.io import atomic_write_text

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: right; vertical-align: middle; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.case, td.warn { text-align: left; }
td.warn { color: #a40000; max-width: 28em; }
td.empty { color: #a40000; font-weight: bold; }
img { height: 120px; }
"""


@dataclass(frozen=True)
class CaseSummary:
    """One row of the report.

    Attributes:
        case: case name (e.g. the image file name).
        statistics: per-structure rows from :func:`~medseg.export.compute_statistics`.
        preview: the case's preview PNG, if one was written.
        warnings: problems found for this case (shown in red).
    """

    case: str
    statistics: Sequence[StructureStatistics]
    preview: Path | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def write_report(
    cases: Sequence[CaseSummary], path: str | os.PathLike[str], *, title: str = "medseg segmentation report"
) -> Path:
    """Write the cohort report as HTML (atomically).

    Structures are the columns, in label-value order over all cases; a structure with no voxels in a
    case is shown as a red ``0``.

    Returns:
        The path written.
    """
    p = Path(path)
    columns = _columns(cases)
    head = "".join(f"<th>{html.escape(name)}<br>(mL)</th>" for _, name in columns)
    rows = "\n".join(_row(case, columns, p.parent) for case in cases)
    n_warn = sum(1 for c in cases if c.warnings)
    text = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{len(cases)} case(s), {n_warn} with warnings.</p>\n"
        f"<table>\n<tr><th>case</th><th>preview</th>{head}<th>warnings</th></tr>\n{rows}\n</table>\n"
        "</body></html>\n"
    )
    atomic_write_text(p, text)
    return p


def _columns(cases: Sequence[CaseSummary]) -> list[tuple[int, str]]:
    seen: dict[tuple[int, str], None] = {}
    for case in cases:
        for row in case.statistics:
            seen.setdefault((row.value, row.name), None)
    return sorted(seen)


def _row(case: CaseSummary, columns: list[tuple[int, str]], folder: Path) -> str:
    volumes = {(r.value, r.name): r for r in case.statistics}
    cells = []
    for key in columns:
        stat = volumes.get(key)
        if stat is None:
            cells.append("<td></td>")
        elif stat.voxel_count == 0:
            cells.append('<td class="empty">0</td>')
        else:
            cells.append(f"<td>{stat.volume_ml:.2f}</td>")
    thumb = ""
    if case.preview is not None:
        src = html.escape(Path(os.path.relpath(case.preview, folder)).as_posix(), quote=True)
        thumb = f'<a href="{src}"><img src="{src}" alt="preview"></a>'
    warnings = "<br>".join(html.escape(w) for w in case.warnings)
    return (
        f'<tr><td class="case">{html.escape(case.case)}</td><td>{thumb}</td>{"".join(cells)}'
        f'<td class="warn">{warnings}</td></tr>'
    )

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

from medseg.errors import MedsegError
from medseg.export.statistics import StructureStatistics, compute_statistics
from medseg.io import Volume, atomic_write_text, read_volume
from medseg.io.formats import extension_of
from medseg.io.volume import LPS_TO_RAS
from medseg.labels import LabelSpec

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


def write_cohort_report(
    outputs: Sequence[str | os.PathLike[str]],
    path: str | os.PathLike[str],
    *,
    labels: LabelSpec,
    title: str = "medseg segmentation report",
) -> Path:
    """Report on exported label maps (what ``medseg infer`` wrote): one row per file.

    Volumes are computed from each file (``.nii.gz``, ``.seg.nrrd``, ... or DICOM SEG ``.dcm``); the
    preview is ``<stem>_preview.png`` beside it when present. Structures with no voxels are listed as
    warnings; a file that cannot be read becomes a row with that error.

    Returns:
        The path written.
    """
    cases = [_summarise(Path(out), labels) for out in outputs]
    return write_report(cases, path, title=title)


def _summarise(output: Path, labels: LabelSpec) -> CaseSummary:
    stem = output.name[: len(output.name) - len(extension_of(output))] if extension_of(output) else output.stem
    preview = output.with_name(stem + "_preview.png")
    try:
        label = _read_labels(output, labels)
    except (MedsegError, OSError, ValueError) as exc:
        return CaseSummary(stem, (), warnings=(f"cannot read {output.name}: {exc}",))
    rows = compute_statistics(label, labels=labels)
    empty = [r.name for r in rows if r.voxel_count == 0]
    warnings = (f"no voxels: {', '.join(empty)}",) if empty else ()
    return CaseSummary(stem, rows, preview=preview if preview.exists() else None, warnings=warnings)


def _read_labels(output: Path, labels: LabelSpec) -> Volume:
    if output.suffix.lower() != ".dcm":
        return read_volume(output)
    import highdicom as hd
    import numpy as np

    seg = hd.seg.segread(output)
    volume = seg.get_volume(combine_segments=True)
    lut = np.zeros(max(seg.get_segment_numbers(), default=0) + 1, dtype=np.int32)
    for number in seg.get_segment_numbers():
        name = str(seg.get_segment_description(number).SegmentLabel)
        lut[number] = labels.value_of(name) if name in labels.names.values() else 0
    return Volume(lut[np.asarray(volume.array)], LPS_TO_RAS @ volume.affine)

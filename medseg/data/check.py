"""Dataset validation for ``medseg dataset check``: one row per case and every problem found.

Checks (each :class:`~medseg.data.dataset.Issue` names its case and file): missing or extra files,
duplicate cases and a wrong ``numTraining`` (from the listing), unreadable files, channel count
mismatch, channels or label on different grids (shape, spacing, origin, direction beyond
``GRID_ATOL_MM`` / ``GRID_ATOL_DIR``), label values not declared, non-integer labels, NaN/Inf
voxels and label maps without foreground.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medseg.data.dataset import GRID_ATOL_DIR, GRID_ATOL_MM, Case, Dataset, Issue
from medseg.errors import MedsegError
from medseg.io import Volume, grid_difference, read_volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseRow:
    """What ``medseg dataset check`` shows for one case (``None`` where a file could not be read).

    Attributes:
        case_id: the case.
        shape: spatial shape of the first channel, file axis order (voxels).
        spacing_mm: voxel size along the file axes, millimetres.
        orientation: axis code such as ``"RAS"`` or ``"LPS"``.
        n_channels: channels found in the image files.
        label_values: distinct values in the label map, background included.
        intensity_range: ``(min, max)`` of the finite voxels of each channel.
        n_errors: number of errors for this case.
    """

    case_id: str
    shape: tuple[int, int, int] | None
    spacing_mm: tuple[float, float, float] | None
    orientation: str | None
    n_channels: int | None
    label_values: tuple[int, ...] | None
    intensity_range: tuple[tuple[float, float], ...] | None
    n_errors: int


@dataclass(frozen=True)
class CheckReport:
    """The outcome of :func:`check_dataset`.

    Attributes:
        root: the dataset folder.
        rows: one row per case, in dataset order.
        issues: every problem, dataset-wide ones first.
    """

    root: str
    rows: tuple[CaseRow, ...]
    issues: tuple[Issue, ...]

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def ok(self) -> bool:
        """True if there is no error (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "ok": self.ok,
            "n_cases": len(self.rows),
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "cases": [asdict(r) for r in self.rows],
            "issues": [asdict(i) for i in self.issues],
        }


def check_dataset(
    dataset: Dataset,
    *,
    jobs: int = 1,
    allow_empty_labels: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check every case of ``dataset`` (load it with ``strict=False`` to see listing problems too).

    Args:
        dataset: the listed dataset.
        jobs: worker processes reading cases in parallel.
        allow_empty_labels: report label maps without foreground as warnings instead of errors
            (datasets where some cases legitimately have no lesion).
        progress: called with ``(done, total)`` after each case.
    """
    total = len(dataset.cases)
    args = [(dataset, case, allow_empty_labels) for case in dataset.cases]
    results: list[tuple[CaseRow, list[Issue]]] = []
    if jobs > 1 and total > 1:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for n, result in enumerate(pool.map(_check_case_args, args), start=1):
                results.append(result)
                if progress:
                    progress(n, total)
    else:
        for n, a in enumerate(args, start=1):
            results.append(_check_case_args(a))
            if progress:
                progress(n, total)
    issues = list(dataset.issues) + [i for _, case_issues in results for i in case_issues]
    return CheckReport(str(dataset.root), tuple(r for r, _ in results), tuple(issues))


def _check_case_args(args: tuple[Dataset, Case, bool]) -> tuple[CaseRow, list[Issue]]:
    return check_case(args[0], args[1], allow_empty_labels=args[2])


def check_case(dataset: Dataset, case: Case, *, allow_empty_labels: bool = False) -> tuple[CaseRow, list[Issue]]:
    """Check one case; returns its table row and its issues (listing issues excluded)."""
    cid = case.case_id
    issues: list[Issue] = []
    present = [p for p in case.image_paths if p.is_file()]
    volumes = _read_all(cid, present, issues)
    if not volumes or len(present) < len(case.image_paths):
        return _row(cid, volumes[0] if volumes else None, None, None, issues), issues
    first_path, first = present[0], volumes[0]
    for p, v in zip(present[1:], volumes[1:], strict=True):
        _compare_grid(cid, f"channel file {p.name}", v, first, first_path.name, issues, path=str(p))
    n_channels = sum(v.n_channels for v in volumes)
    if n_channels != dataset.n_channels:
        issues.append(Issue("channel_count", cid, f"{first_path}: {n_channels} channel(s) found but the dataset "
                            f"declares {dataset.n_channels} ({', '.join(dataset.channel_names)})"))
    ranges = tuple(r for v, p in zip(volumes, present, strict=True) for r in _channel_ranges(cid, v, p, issues))
    values = None
    if case.label_path is not None and case.label_path.is_file():
        labels = _read_all(cid, [case.label_path], issues)
        if labels:
            _compare_grid(cid, "label map", labels[0], first, first_path.name, issues, path=str(case.label_path))
            values = _check_label_values(dataset, case, labels[0], issues, allow_empty=allow_empty_labels)
    return _row(cid, first, ranges, values, issues, n_channels=n_channels), issues


def _read_all(cid: str, paths: Sequence[Any], issues: list[Issue]) -> list[Volume]:
    out = []
    for p in paths:
        try:
            out.append(read_volume(p))
        except MedsegError as exc:
            issues.append(Issue("unreadable", cid, f"{exc}"))
    return out


def _compare_grid(cid: str, what: str, vol: Volume, ref: Volume, ref_name: str, issues: list[Issue], *,
                  path: str) -> None:
    problem = grid_difference(vol, ref, atol_mm=GRID_ATOL_MM, atol_dir=GRID_ATOL_DIR)
    if problem:
        issues.append(Issue("geometry", cid, f"{path}: {what} and image {ref_name} differ in {problem}; "
                            "resample it onto the image grid or fix its header"))


def _channel_ranges(cid: str, vol: Volume, path: Any, issues: list[Issue]) -> list[tuple[float, float]]:
    out = []
    for c, a in enumerate(vol.array if vol.is_multichannel else vol.array[None]):
        finite = np.isfinite(a) if a.dtype.kind == "f" else None
        if finite is not None and not finite.all():
            bad = int(a.size - np.count_nonzero(finite))
            where = f" (channel {c} of the file)" if vol.is_multichannel else ""
            issues.append(Issue("nonfinite", cid, f"{path}: {bad} NaN or infinite voxel(s){where}; "
                                "replace them (e.g. by the background value) before training"))
            a = a[finite]
        out.append((float(a.min()), float(a.max())) if a.size else (float("nan"), float("nan")))
    return out


def _check_label_values(dataset: Dataset, case: Case, label: Volume, issues: list[Issue], *,
                        allow_empty: bool) -> tuple[int, ...]:
    a = np.asarray(label.array)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all() or not np.array_equal(a[finite], np.round(a[finite])):
            issues.append(Issue("undeclared_label", case.case_id, f"{case.label_path}: label map holds non-integer "
                                "or NaN values; store integer class values"))
            a = np.round(np.where(finite, a, 0))
    values = tuple(int(v) for v in np.unique(a))
    undeclared = sorted(set(values) - {0} - set(dataset.labels.values))
    if undeclared:
        counts = ", ".join(f"{v} ({int(np.count_nonzero(a == v))} voxels)" for v in undeclared)
        issues.append(Issue("undeclared_label", case.case_id, f"{case.label_path}: label value(s) {counts} not "
                            f"declared (declared: {list(dataset.labels.values)}); relabel them or add them to "
                            "the labels"))
    if values == (0,) or not values:
        issues.append(Issue("empty_label", case.case_id, f"{case.label_path}: label map has no foreground voxel; "
                            "check the file (or pass --allow-empty if cases without findings are expected)",
                            severity="warning" if allow_empty else "error"))
    return values


def _row(cid: str, vol: Volume | None, ranges: tuple[tuple[float, float], ...] | None,
         values: tuple[int, ...] | None, issues: list[Issue], *, n_channels: int | None = None) -> CaseRow:
    return CaseRow(
        case_id=cid,
        shape=vol.shape if vol is not None else None,
        spacing_mm=vol.spacing if vol is not None else None,
        orientation=vol.orientation if vol is not None else None,
        n_channels=n_channels,
        label_values=values,
        intensity_range=ranges,
        n_errors=sum(1 for i in issues if i.severity == "error"),
    )

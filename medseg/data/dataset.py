"""Datasets: an MSD / nnU-Net folder or a CSV manifest, listed as :class:`Case` objects.

Two layouts are understood (see ``docs/data.md``): an MSD / nnU-Net folder
(:mod:`medseg.data.msd`) and a CSV manifest (:mod:`medseg.data.manifest`).

Every path taken from a data file must stay inside the dataset root (:class:`DatasetError`
otherwise). Problems with the file listing (missing or extra files, duplicates) are collected as
:class:`Issue` objects; :func:`load_dataset` raises on them unless ``strict=False`` (what
``medseg dataset check`` uses to report them all).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from medseg.errors import DatasetError, GeometryError
from medseg.io import Volume, grid_difference, read_volume
from medseg.labels import LabelSpec

log = logging.getLogger(__name__)

#: Geometry tolerance between the channels and the label map of one case (the same as preprocessing).
GRID_ATOL_MM = 1e-2
GRID_ATOL_DIR = 1e-3

IssueKind = Literal[
    "missing_file", "extra_file", "duplicate_case", "channel_count", "geometry", "undeclared_label",
    "nonfinite", "empty_label", "unreadable", "case_count",
]


@dataclass(frozen=True)
class Issue:
    """One problem found in a dataset.

    Attributes:
        kind: what kind of problem (``"missing_file"``, ``"geometry"``...).
        case_id: the case concerned, or ``None`` for dataset-wide problems.
        message: what is wrong and what to do, naming the file where there is one.
        severity: ``"error"`` (the dataset cannot be used as is) or ``"warning"``.
    """

    kind: IssueKind
    case_id: str | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.case_id}: {self.message}" if self.case_id else self.message


@dataclass(frozen=True)
class Case:
    """One training case.

    Attributes:
        case_id: unique name (``"liver_012"``).
        image_paths: image files in channel order (one per channel; an original-MSD 4D file holds
            several channels). Paths may not exist when the dataset was loaded with ``strict=False``.
        label_path: the label map, or ``None`` for an unlabelled case.
        subject: the patient the case belongs to (defaults to ``case_id``); cross-validation keeps
            a subject's cases in one fold.
        split: an optional split name from the manifest (``"train"``, ``"test"``...).
    """

    case_id: str
    image_paths: tuple[Path, ...]
    label_path: Path | None = None
    subject: str = ""
    split: str | None = None

    def __post_init__(self) -> None:
        if not self.subject:
            object.__setattr__(self, "subject", self.case_id)


@dataclass(frozen=True)
class Dataset:
    """A listed dataset.

    Attributes:
        root: the dataset folder (for a CSV manifest, the manifest's folder).
        cases: the cases, sorted by ``case_id`` for folders, in manifest order for CSV.
        channel_names: input channel names in channel order (``("CT",)``, ``("T1", "T2", "FLAIR")``).
        labels: the declared foreground labels.
        layout: ``"msd"`` or ``"csv"``.
        source: the ``dataset.json`` or manifest file the listing came from.
        issues: problems with the file listing (only when loaded with ``strict=False``).
    """

    root: Path
    cases: tuple[Case, ...]
    channel_names: tuple[str, ...]
    labels: LabelSpec
    layout: Literal["msd", "csv"]
    source: Path
    issues: tuple[Issue, ...] = field(default=())

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(c.case_id for c in self.cases)

    def case(self, case_id: str) -> Case:
        """The case called ``case_id`` (``DatasetError`` naming a close match if unknown)."""
        for c in self.cases:
            if c.case_id == case_id:
                return c
        from difflib import get_close_matches

        close = get_close_matches(case_id, self.case_ids, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"no case {case_id!r} in the dataset{hint}", path=self.source)

    def load_case(self, case: Case | str) -> tuple[Volume, Volume | None]:
        """Read a case's image (channel-first ``[c, i, j, k]`` if several channels) and label map.

        Channels must share one grid and the label map must lie on it (within
        ``GRID_ATOL_MM`` / ``GRID_ATOL_DIR``). Labels stored as floats are converted to integers.

        Raises:
            GeometryError: channels or label on different grids (the message names the case).
            DatasetError: wrong number of channels or non-integer label values.
            InvalidInputError: a file cannot be read.
        """
        case = self.case(case) if isinstance(case, str) else case
        image = _read_channels(case, self.n_channels)
        label = None
        if case.label_path is not None:
            label = read_volume(case.label_path)
            problem = grid_difference(label, image, atol_mm=GRID_ATOL_MM, atol_dir=GRID_ATOL_DIR)
            if problem:
                raise GeometryError(
                    f"case {case.case_id}: label map and image differ in {problem}; resample the label "
                    "onto the image grid or fix the header", path=case.label_path)
            label = label.with_array(integer_labels(label.array, case))
        return image, label


def load_dataset(path: str | Path, *, strict: bool = True, labels: LabelSpec | None = None) -> Dataset:
    """List a dataset folder (MSD / nnU-Net) or a CSV manifest.

    Args:
        path: a folder holding ``dataset.json``, that ``dataset.json`` itself, or a ``.csv`` manifest.
        strict: raise :class:`DatasetError` on any listing problem (missing or extra files,
            duplicate cases); with ``False`` they are returned in ``Dataset.issues``.
        labels: the label spec for a CSV manifest without a ``dataset.json`` or ``labels.json``
            beside it (ignored for folders, whose ``dataset.json`` declares the labels).

    Raises:
        DatasetError: not a dataset, malformed ``dataset.json`` or manifest, a path outside the
            root, or (``strict``) a listing problem.
    """
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".csv":
        from medseg.data.manifest import load_manifest

        dataset = load_manifest(p, labels=labels)
    elif p.is_dir() or p.name == "dataset.json":
        from medseg.data.msd import load_msd_folder

        dataset = load_msd_folder(p if p.is_dir() else p.parent)
    else:
        raise DatasetError("not a dataset: give a folder with dataset.json (MSD / nnU-Net layout) "
                           "or a .csv manifest", path=p)
    if strict and dataset.issues:
        shown = "; ".join(str(i) for i in dataset.issues[:3])
        more = f" (and {len(dataset.issues) - 3} more)" if len(dataset.issues) > 3 else ""
        raise DatasetError(f"{shown}{more}; run `medseg dataset check {dataset.root}` for the full report",
                           path=dataset.source)
    return dataset


# --- shared helpers -----------------------------------------------------------------------------
def resolve_inside(root: Path, raw: str, *, source: Path) -> Path:
    """``raw`` (relative to ``root`` or absolute) as an absolute path that must lie inside ``root``.

    The check is lexical (``..`` is collapsed, symbolic links inside the root are allowed).

    Raises:
        DatasetError: the path points outside the dataset root.
    """
    base = Path(os.path.abspath(root))
    candidate = Path(raw)
    full = Path(os.path.normpath(candidate if candidate.is_absolute() else base / candidate))
    if not full.is_relative_to(base):
        raise DatasetError(f"path {raw!r} points outside the dataset root {base}; keep every file inside it",
                           path=source)
    return full


def missing_files(case_id: str, images: Sequence[Path], label: Path | None) -> list[Issue]:
    out = [Issue("missing_file", case_id, f"{p}: image file is missing") for p in images if not p.is_file()]
    if label is not None and not label.is_file():
        out.append(Issue("missing_file", case_id, f"{label}: label map is missing"))
    return out


def _read_channels(case: Case, n_channels: int) -> Volume:
    volumes = [read_volume(p) for p in case.image_paths]
    first = volumes[0]
    for p, v in zip(case.image_paths[1:], volumes[1:], strict=True):
        problem = grid_difference(v, first, atol_mm=GRID_ATOL_MM, atol_dir=GRID_ATOL_DIR)
        if problem:
            raise GeometryError(f"case {case.case_id}: channel grids differ in {problem} "
                                f"(vs {case.image_paths[0].name}); resample the channels onto one grid", path=p)
    arrays = [c for v in volumes for c in (v.array if v.is_multichannel else v.array[None])]
    if len(arrays) != n_channels:
        raise DatasetError(f"case {case.case_id}: {len(arrays)} channel(s) found, {n_channels} declared",
                           path=case.image_paths[0])
    array = arrays[0] if n_channels == 1 else np.stack(arrays)
    return Volume(array, first.affine, first.meta)


def integer_labels(array: npt.NDArray[Any], case: Case) -> npt.NDArray[np.integer[Any]]:
    """Label values as the smallest fitting integer dtype (uint8, int16 or int32).

    Raises:
        DatasetError: the label map holds non-integer or non-finite values.
    """
    a = np.asarray(array)
    if a.dtype.kind == "f" and not (np.all(np.isfinite(a)) and np.array_equal(a, np.round(a))):
        raise DatasetError(f"case {case.case_id}: label map holds non-integer or NaN values; "
                           "store integer class values", path=case.label_path)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for t in (np.uint8, np.int16, np.int32):
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return a.astype(t, copy=False)
    raise DatasetError(f"case {case.case_id}: label values {lo}..{hi} do not fit int32", path=case.label_path)



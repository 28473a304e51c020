"""The MSD / nnU-Net v2 dataset folder layout.

``dataset.json`` (``channel_names``, ``labels`` as name → value, ``numTraining``, ``file_ending``,
optional ``subjects`` mapping case → subject), ``imagesTr/<case>_<XXXX><ending>`` (one file per
channel) and ``labelsTr/<case><ending>``. The original MSD layout, a ``training`` list of
``{"image", "label"}`` paths with 4D multi-channel images, is read too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medseg.data.dataset import Case, Dataset, Issue, missing_files, resolve_inside
from medseg.errors import DatasetError, MedsegError
from medseg.io.formats import strip_extension
from medseg.labels import LabelSpec

CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")

def load_msd_folder(root: Path) -> Dataset:
    """List an MSD / nnU-Net folder (``root/dataset.json``); listing problems go to ``Dataset.issues``."""
    root = Path(os.path.abspath(root))  # absolute, symbolic links kept
    source = root / "dataset.json"
    meta = read_json(source)
    channel_names = read_channel_names(meta, source)
    labels = labels_from_meta(meta, source)
    ending = str(meta.get("file_ending", ".nii.gz"))
    subjects = meta.get("subjects") or {}
    if not isinstance(subjects, Mapping):
        raise DatasetError("'subjects' must map case id → subject id", path=source)
    if isinstance(meta.get("training"), list) and not _has_channel_files(root / "imagesTr", ending):
        cases, issues = _list_msd_training(root, meta["training"], source)
    else:
        cases, issues = _list_nnunet(root, ending, len(channel_names))
    cases = [Case(c.case_id, c.image_paths, c.label_path, subject=str(subjects.get(c.case_id, ""))) for c in cases]
    n_declared = meta.get("numTraining")
    if isinstance(n_declared, int) and n_declared != len(cases):
        issues.append(Issue("case_count", None, f"dataset.json declares numTraining = {n_declared} but "
                            f"{len(cases)} cases were found; fix numTraining or add the missing cases"))
    return Dataset(root, tuple(cases), channel_names, labels, "msd", source, tuple(issues))


def read_json(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise DatasetError("no dataset.json: not an MSD / nnU-Net dataset folder; add a dataset.json "
                           "with channel_names, labels, numTraining and file_ending, or use a CSV manifest",
                           path=path.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"not valid JSON: {exc}", path=path) from exc
    if not isinstance(data, Mapping):
        raise DatasetError("dataset.json must hold a JSON object", path=path)
    return data


def read_channel_names(meta: Mapping[str, Any], source: Path) -> tuple[str, ...]:
    names = meta.get("channel_names", meta.get("modality"))
    if not isinstance(names, Mapping) or not names:
        raise DatasetError("dataset.json needs 'channel_names' ({\"0\": \"CT\"} or {\"0\": \"T1\", \"1\": \"T2\"})",
                           path=source)
    try:
        order = sorted(names, key=int)
    except ValueError as exc:
        raise DatasetError(f"channel_names keys must be channel numbers \"0\", \"1\"...; got {list(names)}",
                           path=source) from exc
    if [int(k) for k in order] != list(range(len(order))):
        raise DatasetError(f"channel_names must number channels 0..{len(order) - 1} without gaps; got {order}",
                           path=source)
    return tuple(str(names[k]) for k in order)


def labels_from_meta(meta: Mapping[str, Any], source: Path) -> LabelSpec:
    labels = meta.get("labels")
    if not isinstance(labels, Mapping) or not labels:
        raise DatasetError("dataset.json needs 'labels' as name → value ({\"background\": 0, \"liver\": 1})",
                           path=source)
    if any(isinstance(v, list) for v in labels.values()):
        raise DatasetError("region-based labels (lists of values) are not supported; give one value per label",
                           path=source)
    try:
        return LabelSpec.from_mapping(labels)
    except MedsegError as exc:
        raise DatasetError(exc.message, path=source) from exc


def _has_channel_files(folder: Path, ending: str) -> bool:
    return folder.is_dir() and any(CHANNEL_FILE.match(_strip(f.name, ending)) for f in folder.iterdir()
                                   if f.name.endswith(ending))


def _strip(name: str, ending: str) -> str:
    return name[: -len(ending)] if ending and name.endswith(ending) else name


def _visible_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))


def _list_nnunet(root: Path, ending: str, n_channels: int) -> tuple[list[Case], list[Issue]]:
    """Cases from ``imagesTr/<case>_XXXX<ending>`` and ``labelsTr/<case><ending>``."""
    images, labels_dir = root / "imagesTr", root / "labelsTr"
    if not images.is_dir():
        raise DatasetError(f"no imagesTr folder in {root}; the MSD / nnU-Net layout puts training images in "
                           "imagesTr/<case>_0000" + ending, path=root)
    issues: list[Issue] = []
    channels: dict[str, dict[int, Path]] = {}
    for f in _visible_files(images):
        m = CHANNEL_FILE.match(_strip(f.name, ending)) if f.name.endswith(ending) else None
        if m is None:
            issues.append(Issue("extra_file", None, f"{f}: not named <case>_<4-digit channel>{ending}; "
                                "rename or remove it"))
            continue
        channels.setdefault(m["case"], {})[int(m["channel"])] = f
    cases = []
    for case_id in sorted(channels):
        found = channels[case_id]
        for k in sorted(set(found) - set(range(n_channels))):
            issues.append(Issue("channel_count", case_id, f"{found[k]}: channel {k} but dataset.json declares "
                                f"{n_channels} channel(s); remove the file or add the channel to channel_names"))
        paths = tuple(found.get(k, images / f"{case_id}_{k:04d}{ending}") for k in range(n_channels))
        for k in range(n_channels):
            if k not in found:
                issues.append(Issue("missing_file", case_id, f"{paths[k]}: channel {k} is missing; add it or "
                                    "remove the case's other files"))
        label = labels_dir / f"{case_id}{ending}"
        if not label.is_file():
            issues.append(Issue("missing_file", case_id, f"{label}: label map is missing; add it or move the "
                                "case's images out of imagesTr"))
        cases.append(Case(case_id, paths, label))
    for f in _visible_files(labels_dir):
        if _strip(f.name, ending) not in channels:
            issues.append(Issue("extra_file", None, f"{f}: label map without images in imagesTr; add the images "
                                "or remove it"))
    return cases, issues


def _list_msd_training(root: Path, entries: list[Any], source: Path) -> tuple[list[Case], list[Issue]]:
    """Cases from the original MSD ``training`` list (one possibly 4D image file per case)."""
    issues: list[Issue] = []
    cases: list[Case] = []
    seen: set[str] = set()
    for e in entries:
        if not isinstance(e, Mapping) or "image" not in e:
            raise DatasetError(f"each 'training' entry needs an 'image' path; got {e!r}", path=source)
        image = resolve_inside(root, str(e["image"]), source=source)
        label = resolve_inside(root, str(e["label"]), source=source) if e.get("label") else None
        case_id = strip_extension(image)
        if case_id in seen:
            issues.append(Issue("duplicate_case", case_id, f"listed twice in {source}; remove one entry"))
            continue
        seen.add(case_id)
        issues.extend(missing_files(case_id, (image,), label))
        cases.append(Case(case_id, (image,), label))
    return sorted(cases, key=lambda c: c.case_id), issues

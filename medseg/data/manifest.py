"""The CSV manifest layout.

Columns: ``image`` (one channel), or ``image_0``..``image_N``, or ``image_<name>`` (``image_T1``,
``image_FLAIR``); optional ``label``, ``case`` (default: the first image's name without extension
and ``_0000``), ``subject`` and ``split``. Other columns are ignored. Paths are relative to the
manifest's folder, which is the dataset root. Channel names and labels come from a ``dataset.json``
beside the manifest, else ``labels.json`` / ``labels.yaml`` beside it, else the ``labels`` argument.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseg.data.dataset import Case, Dataset, Issue, missing_files, resolve_inside
from medseg.data.msd import CHANNEL_FILE, labels_from_meta, read_channel_names, read_json
from medseg.errors import DatasetError
from medseg.io.formats import strip_extension
from medseg.labels import LabelSpec, load_label_spec


def load_manifest(path: Path, *, labels: LabelSpec | None = None) -> Dataset:
    """List a CSV manifest; listing problems go to ``Dataset.issues``."""
    root = path.parent.resolve()
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = [c.strip() for c in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read the manifest: {exc}", path=path) from exc
    if not rows:
        raise DatasetError("manifest has no rows; add one row per case with an 'image' column", path=path)
    image_cols, names_from_cols = _image_columns(columns, path)
    sidecar = root / "dataset.json"
    meta = read_json(sidecar) if sidecar.is_file() else {}
    channel_names = read_channel_names(meta, sidecar) if "channel_names" in meta else names_from_cols
    if len(channel_names) != len(image_cols):
        raise DatasetError(f"the manifest has {len(image_cols)} image column(s) but {sidecar} declares "
                           f"{len(channel_names)} channel(s)", path=path)
    spec = labels or _csv_labels(root, meta, sidecar, path)
    cases, issues = [], []
    seen_ids: set[str] = set()
    seen_images: dict[Path, str] = {}
    for n, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        if not any(row.values()):
            continue
        missing_cols = [c for c in image_cols if not row.get(c)]
        if missing_cols:
            raise DatasetError(f"line {n}: empty {', '.join(missing_cols)}; every case needs all channels",
                               path=path)
        images = tuple(resolve_inside(root, row[c], source=path) for c in image_cols)
        label = resolve_inside(root, row["label"], source=path) if row.get("label") else None
        case_id = row.get("case") or row.get("case_id") or _case_from_file(images[0])
        if case_id in seen_ids:
            issues.append(Issue("duplicate_case", case_id, f"line {n} of {path}: case listed twice; "
                                "give each row a unique case (or image)"))
            continue
        if images[0] in seen_images:
            issues.append(Issue("duplicate_case", case_id, f"line {n} of {path}: image {images[0]} is already "
                                f"used by case {seen_images[images[0]]}; remove the duplicate row"))
            continue
        seen_ids.add(case_id)
        seen_images[images[0]] = case_id
        issues.extend(missing_files(case_id, images, label))
        cases.append(Case(case_id, images, label, subject=row.get("subject", ""), split=row.get("split") or None))
    return Dataset(root, tuple(cases), channel_names, spec, "csv", path, tuple(issues))


def _image_columns(columns: Sequence[str], path: Path) -> tuple[list[str], tuple[str, ...]]:
    """Image columns in channel order and the channel names they imply."""
    if "image" in columns:
        if any(c.startswith("image_") for c in columns):
            raise DatasetError("use either one 'image' column or image_0..image_N columns, not both", path=path)
        return ["image"], ("image",)
    cols = [c for c in columns if c.startswith("image_")]
    if not cols:
        raise DatasetError(f"no image column; columns are {list(columns)}; add 'image' (one channel) or "
                           "image_0..image_N / image_<name> (several channels)", path=path)
    suffixes = [c[len("image_"):] for c in cols]
    if all(s.isdigit() for s in suffixes):
        order = sorted(range(len(cols)), key=lambda i: int(suffixes[i]))
        if [int(suffixes[i]) for i in order] != list(range(len(cols))):
            raise DatasetError(f"image columns must be image_0..image_{len(cols) - 1} without gaps; got {cols}",
                               path=path)
        return [cols[i] for i in order], tuple(f"channel_{i}" for i in range(len(cols)))
    if any(s.isdigit() for s in suffixes):
        raise DatasetError(f"mixed numbered and named image columns {cols}; use one scheme", path=path)
    return cols, tuple(suffixes)


def _csv_labels(root: Path, meta: Mapping[str, Any], sidecar: Path, manifest: Path) -> LabelSpec:
    if "labels" in meta:
        return labels_from_meta(meta, sidecar)
    for name in ("labels.json", "labels.yaml", "labels.yml"):
        if (root / name).is_file():
            return load_label_spec(root / name)
    raise DatasetError("no label declaration: put a labels.json (name → value) or a dataset.json with "
                       "'labels' beside the manifest", path=manifest)


def _case_from_file(path: Path) -> str:
    name = strip_extension(path)
    m = CHANNEL_FILE.match(name)
    return m["case"] if m else name

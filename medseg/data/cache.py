"""The preprocessed cache: every case brought onto the network grid once, reused across epochs and folds.

Layout (``root/<key>/``, ``key`` = a hash of the plan fields that change preprocessing, so a changed
spacing, normalisation or interpolation gets a fresh folder while a changed patch size or topology
reuses the cache)::

    plan.yaml                     the plan the cache was made with (for people; not read back)
    <case>.image.npy              float32 [c, x, y, z] on the network grid (memory-mapped on load)
    <case>.label.npy              uint8 / int16 [x, y, z]
    <case>.locations.npz          per class value: int32 [n, 3] voxel coordinates (subsampled)
    <case>.json                   the PreprocessRecord, class voxel counts, source file stamps;
                                  written last, so its presence marks a complete case

A case is preprocessed again when its source files change (size or modification time).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.data.dataset import Case, Dataset
from medseg.data.plan import Plan, plan_to_dict, save_plan
from medseg.errors import DatasetError
from medseg.io import atomic_path, atomic_write_text
from medseg.transforms.preprocess import PreprocessRecord, preprocess_image, preprocess_label

log = logging.getLogger(__name__)

#: Bump when the on-disk format or the preprocessing maths change (invalidates every cache).
CACHE_VERSION = 1
#: Class locations kept per class: this many, or ``LOCATION_MIN_FRACTION`` of the voxels if more.
LOCATIONS_PER_CLASS = 10_000
LOCATION_MIN_FRACTION = 0.01
_PREPROCESSING_FIELDS = ("target_spacing_mm", "channels", "crop_to_nonzero", "image_interpolation",
                         "label_interpolation", "anisotropy_threshold")


@dataclass(frozen=True)
class CachedCase:
    """What the cache knows about one case besides its voxels.

    Attributes:
        case_id: the case.
        record: how it was preprocessed (for :func:`~medseg.transforms.preprocess.invert`).
        shape: spatial shape on the network grid ``(x, y, z)``.
        class_voxels: voxels per label value on the network grid (background included).
        folder: the cache folder holding its files.
    """

    case_id: str
    record: PreprocessRecord
    shape: tuple[int, int, int]
    class_voxels: dict[int, int]
    folder: Path

    def class_locations(self) -> dict[int, npt.NDArray[np.int32]]:
        """Per foreground class value: ``[n, 3]`` voxel coordinates on the network grid (subsampled)."""
        with np.load(self.folder / f"{self.case_id}.locations.npz") as z:
            return {int(k.split("_")[1]): z[k] for k in z.files}


def preprocessing_key(plan: Plan) -> str:
    """16-hex-digit hash of the plan fields that affect preprocessing (and of ``CACHE_VERSION``)."""
    d = plan_to_dict(plan)
    relevant = {k: d[k] for k in _PREPROCESSING_FIELDS}
    relevant["label_values"] = list(plan.labels.values)
    relevant["cache_version"] = CACHE_VERSION
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


class PreprocessedCache:
    """Preprocessed cases of one plan under ``root/<preprocessing key>/``.

    Example:
        >>> cache = PreprocessedCache("runs/cache", plan)  # doctest: +SKIP
        >>> cache.build(dataset, jobs=2)
        >>> image, label, info = cache.get("case_001")   # memory-mapped [c,x,y,z], [x,y,z]
    """

    def __init__(self, root: str | Path, plan: Plan) -> None:
        self.plan = plan
        self.key = preprocessing_key(plan)
        self.folder = Path(root) / self.key

    def build(
        self,
        dataset: Dataset,
        *,
        case_ids: Sequence[str] | None = None,
        jobs: int = 1,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Preprocess the cases that are missing or stale; returns the ids that were (re)computed.

        Args:
            dataset: where the cases come from.
            case_ids: restrict to these cases (default: every case).
            jobs: worker processes.
            progress: called with ``(done, total)`` after each computed case.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "plan.yaml").is_file():
            save_plan(self.plan, self.folder / "plan.yaml")
        cases = [dataset.case(c) for c in case_ids] if case_ids is not None else list(dataset.cases)
        todo = [c for c in cases if not self._is_fresh(c)]
        if not todo:
            return []
        log.info("preprocessing %d of %d case(s) into %s", len(todo), len(cases), self.folder)
        args = [(dataset, c, self.plan, self.folder) for c in todo]
        if jobs > 1 and len(todo) > 1:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_single_thread) as pool:
                for n, _ in enumerate(pool.map(_preprocess_args, args), start=1):
                    if progress:
                        progress(n, len(todo))
        else:
            for n, a in enumerate(args, start=1):
                _preprocess_args(a)
                if progress:
                    progress(n, len(todo))
        return [c.case_id for c in todo]

    def has(self, case_id: str) -> bool:
        """True if ``case_id`` is in the cache (complete)."""
        return (self.folder / f"{case_id}.json").is_file()

    def case_ids(self) -> list[str]:
        """Ids of the complete cases, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name[: -len(".json")] for p in self.folder.glob("*.json"))

    def info(self, case_id: str) -> CachedCase:
        """The record and class statistics of a cached case."""
        path = self.folder / f"{case_id}.json"
        if not path.is_file():
            raise DatasetError(f"case {case_id!r} is not in the preprocessed cache; run "
                               "PreprocessedCache.build(dataset) first", path=self.folder)
        data = json.loads(path.read_text(encoding="utf-8"))
        shape = tuple(int(n) for n in data["shape"])
        return CachedCase(case_id, record_from_dict(data["record"]), (shape[0], shape[1], shape[2]),
                          {int(k): int(v) for k, v in data["class_voxels"].items()}, self.folder)

    def get(self, case_id: str) -> tuple[np.memmap[Any, Any], np.memmap[Any, Any] | None, CachedCase]:
        """Memory-mapped ``image [c, x, y, z]`` float32, ``label [x, y, z]`` (``None`` if unlabelled), info.

        The maps are copy-on-write (``mmap_mode="c"``): writable in memory (so torch can wrap them
        without a copy), never written back to the cache.
        """
        info = self.info(case_id)
        image = np.load(self.folder / f"{case_id}.image.npy", mmap_mode="c")
        label_path = self.folder / f"{case_id}.label.npy"
        label = np.load(label_path, mmap_mode="c") if label_path.is_file() else None
        return image, label, info

    def _is_fresh(self, case: Case) -> bool:
        path = self.folder / f"{case.case_id}.json"
        if not path.is_file():
            return False
        try:
            stamps = json.loads(path.read_text(encoding="utf-8")).get("sources")
        except (json.JSONDecodeError, OSError):
            return False
        return stamps == source_stamps(case)


def source_stamps(case: Case) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` of each source file (images then label)."""
    paths = list(case.image_paths) + ([case.label_path] if case.label_path is not None else [])
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def preprocess_case(dataset: Dataset, case: Case, plan: Plan, folder: Path) -> None:
    """Preprocess one case into ``folder`` (files written atomically, the JSON last)."""
    image, label = dataset.load_case(case)
    net_image, record = preprocess_image(image, plan)
    _save_npy(folder / f"{case.case_id}.image.npy", net_image.array)
    class_voxels: dict[int, int] = {}
    if label is not None:
        net_label = preprocess_label(label, record, plan).array
        net_label = net_label.astype(np.uint8 if net_label.max(initial=0) < 256 else np.int16, copy=False)
        _save_npy(folder / f"{case.case_id}.label.npy", net_label)
        locations, class_voxels = class_locations(net_label, seed=_stable_seed(case.case_id))
        buf = io.BytesIO()
        arrays: dict[str, Any] = {f"class_{v}": locs for v, locs in locations.items()}
        np.savez(buf, **arrays)
        with atomic_path(folder / f"{case.case_id}.locations.npz") as tmp:
            tmp.write_bytes(buf.getvalue())
    info = {
        "case_id": case.case_id,
        "shape": list(net_image.shape),
        "record": record_to_dict(record),
        "class_voxels": {str(k): v for k, v in class_voxels.items()},
        "sources": source_stamps(case),
    }
    atomic_write_text(folder / f"{case.case_id}.json", json.dumps(info, indent=1))


def class_locations(
    label: npt.NDArray[np.integer[Any]], *, seed: int = 0
) -> tuple[dict[int, npt.NDArray[np.int32]], dict[int, int]]:
    """Subsampled voxel coordinates of each foreground class, and voxel counts of every class.

    Keeps ``max(LOCATIONS_PER_CLASS, LOCATION_MIN_FRACTION × count)`` coordinates per class (all if fewer).
    """
    from scipy import ndimage

    values, counts = np.unique(label, return_counts=True)
    rng = np.random.default_rng(seed)
    boxes = ndimage.find_objects(np.asarray(label).astype(np.int32, copy=False)) if values.max(initial=0) > 0 else []
    out: dict[int, npt.NDArray[np.int32]] = {}
    for v in values:
        if v <= 0:
            continue
        box = boxes[int(v) - 1]
        offset = np.array([sl.start for sl in box], dtype=np.int32)
        coords = np.argwhere(label[box] == v).astype(np.int32) + offset  # search only the class's bounding box
        keep = min(len(coords), max(LOCATIONS_PER_CLASS, int(np.ceil(len(coords) * LOCATION_MIN_FRACTION))))
        if keep < len(coords):
            coords = coords[np.sort(rng.choice(len(coords), keep, replace=False))]
        out[int(v)] = coords
    return out, {int(v): int(n) for v, n in zip(values, counts, strict=True)}


def record_to_dict(record: PreprocessRecord) -> dict[str, Any]:
    """JSON-safe form of a :class:`PreprocessRecord`."""
    return {
        "original_shape": list(record.original_shape),
        "original_affine": np.asarray(record.original_affine).tolist(),
        "ornt": np.asarray(record.ornt).tolist(),
        "bbox": [list(b) for b in record.bbox],
        "resampled_shape": list(record.resampled_shape),
        "slow_axis": record.slow_axis,
    }


def record_from_dict(data: dict[str, Any]) -> PreprocessRecord:
    """Inverse of :func:`record_to_dict` (the affine round-trips exactly through JSON floats)."""
    return PreprocessRecord(
        original_shape=tuple(int(x) for x in data["original_shape"]),  # type: ignore[arg-type]
        original_affine=np.asarray(data["original_affine"], dtype=np.float64),
        ornt=np.asarray(data["ornt"], dtype=np.float64),
        bbox=tuple((int(lo), int(hi)) for lo, hi in data["bbox"]),  # type: ignore[arg-type]
        resampled_shape=tuple(int(x) for x in data["resampled_shape"]),  # type: ignore[arg-type]
        slow_axis=data["slow_axis"],
    )


def _save_npy(path: Path, array: npt.NDArray[Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))


def _stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def _preprocess_args(args: tuple[Dataset, Case, Plan, Path]) -> None:
    preprocess_case(*args)


def _single_thread() -> None:
    """Worker initializer: one OpenMP/BLAS thread per process (the pool provides the parallelism)."""
    os.environ["OMP_NUM_THREADS"] = "1"

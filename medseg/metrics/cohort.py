"""Evaluate prediction files against reference files: case matching, grids, parallel cases.

This is the library behind ``medseg evaluate``. Unlike the rest of :mod:`medseg.metrics` it reads
files, so it needs :mod:`medseg.io` (nibabel, SimpleITK); it is not imported by the package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medseg.errors import GeometryError, InvalidInputError
from medseg.io import Volume, grid_difference, read_volume, strip_extension
from medseg.io.formats import extension_of
from medseg.metrics.case import ClassMetrics, as_label_map, both_empty_metrics, evaluate_case
from medseg.metrics.lesions import LesionMetrics, lesion_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CasePair:
    """A prediction file and the reference file of the same case."""

    name: str
    pred: Path
    ref: Path


@dataclass(frozen=True)
class CaseMatch:
    """Cases found in the prediction and reference inputs.

    Attributes:
        pairs: matched cases, sorted by name.
        missing_reference: predicted cases without a reference file.
        missing_prediction: reference cases without a prediction file.
    """

    pairs: tuple[CasePair, ...]
    missing_reference: tuple[str, ...] = ()
    missing_prediction: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseResult:
    """Metrics of one case.

    Attributes:
        name: case name (file name without extension).
        metrics: one :class:`ClassMetrics` per evaluated label, sorted by label.
        lesions: label → lesion-wise metrics, for the labels asked for.
        resampled: whether the prediction was resampled onto the reference grid.
    """

    name: str
    metrics: tuple[ClassMetrics, ...]
    lesions: Mapping[int, LesionMetrics] = field(default_factory=dict)
    resampled: bool = False


def match_cases(pred: str | Path, ref: str | Path) -> CaseMatch:
    """Pair prediction and reference files by case name (file name without its extension).

    Args:
        pred: a label-map file, or a folder of them.
        ref: a label-map file, or a folder of them (the same kind as ``pred``).

    Raises:
        InvalidInputError: a path is missing, one is a file and the other a folder, or two files
            in one folder share a case name.
    """
    pred, ref = Path(pred), Path(ref)
    for path in (pred, ref):
        if not path.exists():
            raise InvalidInputError("no such file or folder; check the path", path=path)
    if pred.is_file() and ref.is_file():
        return CaseMatch((CasePair(strip_extension(ref), pred, ref),))
    if pred.is_dir() != ref.is_dir():
        raise InvalidInputError(
            f"prediction {pred} and reference {ref} must both be files or both be folders", path=pred
        )
    preds, refs = _cases_in(pred), _cases_in(ref)
    pairs = tuple(CasePair(name, preds[name], refs[name]) for name in sorted(preds.keys() & refs.keys()))
    return CaseMatch(
        pairs=pairs,
        missing_reference=tuple(sorted(preds.keys() - refs.keys())),
        missing_prediction=tuple(sorted(refs.keys() - preds.keys())),
    )


def evaluate_pair(
    pair: CasePair,
    *,
    labels: Sequence[int] | None,
    nsd_tolerance_mm: float = 2.0,
    lesion_labels: Sequence[int] = (),
    resample_pred: bool = False,
) -> CaseResult:
    """Read one case and evaluate it.

    Args:
        pair: the case's files.
        labels: label values to evaluate; ``None`` = every non-zero value in either file.
        nsd_tolerance_mm: NSD tolerance in mm.
        lesion_labels: labels that also get lesion-wise metrics.
        resample_pred: resample the prediction onto the reference grid (nearest neighbour) when
            the grids differ, instead of raising.

    Raises:
        GeometryError: the grids differ and ``resample_pred`` is false.
        InvalidInputError: a file is unreadable or not a 3D label map.
    """
    ref_vol = _read_label_map(pair.ref)
    pred_vol = _read_label_map(pair.pred)
    difference = grid_difference(pred_vol, ref_vol)
    if difference is not None and not resample_pred:
        raise GeometryError(
            f"prediction and reference of case {pair.name!r} are on different grids ({difference}); "
            "resample the prediction onto the reference grid (medseg evaluate --resample-pred) "
            "or fix the header",
            path=pair.pred,
        )
    if difference is not None:
        log.info("case %s: resampling the prediction onto the reference grid (%s)", pair.name, difference)
        pred_vol = resample_nearest(pred_vol, ref_vol)
    pred, ref = pred_vol.array, ref_vol.array
    values = sorted(set(present_labels(pred)) | set(present_labels(ref))) if labels is None else list(labels)
    metrics = evaluate_case(pred, ref, spacing_mm=ref_vol.spacing, labels=values, nsd_tolerance_mm=nsd_tolerance_mm)
    lesions = {v: lesion_metrics(pred == v, ref == v, spacing_mm=ref_vol.spacing) for v in lesion_labels}
    metrics = sorted(metrics, key=lambda m: m.label)
    return CaseResult(pair.name, tuple(metrics), lesions, resampled=difference is not None)


def evaluate_cases(
    pairs: Sequence[CasePair],
    *,
    labels: Sequence[int] | None,
    nsd_tolerance_mm: float = 2.0,
    lesion_labels: Sequence[int] = (),
    resample_pred: bool = False,
    jobs: int = 1,
    on_case_done: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Evaluate cases, ``jobs`` at a time in separate processes; results in the order of ``pairs``.

    Without ``labels`` every case reports the union of the labels found in any case; a label
    absent from both files of a case is reported with status ``both_empty``.

    Args:
        pairs: the cases (see :func:`match_cases`).
        labels, nsd_tolerance_mm, lesion_labels, resample_pred: see :func:`evaluate_pair`.
        jobs: worker processes (1 = evaluate in this process).
        on_case_done: called with each result as it completes (e.g. to advance a progress bar).
    """
    if jobs < 1:
        raise InvalidInputError(f"jobs must be ≥ 1; got {jobs}")
    task = partial(
        evaluate_pair,
        labels=labels,
        nsd_tolerance_mm=nsd_tolerance_mm,
        lesion_labels=tuple(lesion_labels),
        resample_pred=resample_pred,
    )
    notify = on_case_done or (lambda result: None)
    if jobs == 1 or len(pairs) < 2:
        results = []
        for pair in pairs:
            results.append(task(pair))
            notify(results[-1])
    else:
        results = _run_parallel(task, pairs, jobs=jobs, notify=notify)
    return results if labels is not None else _fill_absent_labels(results)


def present_labels(label_map: npt.NDArray[np.integer]) -> list[int]:
    """Non-zero (positive) label values present in ``label_map``."""
    top = int(label_map.max(initial=0))
    if top <= 65535:
        boxes = ndimage.find_objects(label_map, max_label=top)
        return [i + 1 for i, box in enumerate(boxes) if box is not None]
    return [int(v) for v in np.unique(label_map) if v > 0]


def resample_nearest(moving: Volume, reference: Volume) -> Volume:
    """Resample a label map onto the grid of ``reference`` with nearest neighbour (background 0)."""
    import SimpleITK as sitk

    from medseg.io.itk import volume_from_itk, volume_to_itk

    image = volume_to_itk(moving)
    grid = volume_to_itk(reference, array=np.zeros(reference.shape, dtype=np.uint8))
    out = sitk.Resample(image, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, image.GetPixelID())
    return reference.with_array(volume_from_itk(out).array)


def _run_parallel(
    task: Callable[[CasePair], CaseResult],
    pairs: Sequence[CasePair],
    *,
    jobs: int,
    notify: Callable[[CaseResult], None],
) -> list[CaseResult]:
    with ProcessPoolExecutor(max_workers=min(jobs, len(pairs))) as pool:
        futures: dict[Future[CaseResult], int] = {pool.submit(task, pair): i for i, pair in enumerate(pairs)}
        done_results: dict[int, CaseResult] = {}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
                done_results[futures[future]] = future.result()
                notify(done_results[futures[future]])
    return [done_results[i] for i in range(len(pairs))]


def _fill_absent_labels(results: list[CaseResult]) -> list[CaseResult]:
    all_labels = sorted({m.label for r in results for m in r.metrics})
    filled = []
    for r in results:
        have = {m.label: m for m in r.metrics}
        metrics = tuple(have.get(v) or both_empty_metrics(v) for v in all_labels)
        filled.append(CaseResult(r.name, metrics, r.lesions, r.resampled))
    return filled


def _read_label_map(path: Path) -> Volume:
    volume = read_volume(path)
    if volume.is_multichannel:
        raise InvalidInputError(
            f"expected a 3D label map, found {volume.n_channels} channels; give one label map per case",
            path=path,
        )
    try:
        array = as_label_map(volume.array, what="the file")
    except InvalidInputError as exc:
        raise InvalidInputError(exc.message, path=path) from exc
    return volume.with_array(array)


def _cases_in(folder: Path) -> dict[str, Path]:
    cases: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or extension_of(path) in ("", ".zip", ".dcm"):
            continue
        name = strip_extension(path)
        if name in cases:
            raise InvalidInputError(
                f"two files for case {name!r}: {cases[name].name} and {path.name}; keep one", path=folder
            )
        cases[name] = path
    return cases

"""File-level inference: ``predict_file`` for one case, ``predict_cohort`` for many.

Outputs are written atomically in exactly the input's geometry; the input is never modified. A
cohort run skips cases whose output exists (so a stopped run resumes), records a failing case
and goes on, and returns a per-case summary.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medseg.errors import InvalidInputError, MedsegError
from medseg.inference.cases import InferenceCase, default_output, output_suffix
from medseg.io import read_volume, write_volume
from medseg.io.formats import extension_of

if TYPE_CHECKING:
    from medseg.inference.predictor import Prediction, Predictor
    from medseg.io import Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputOptions:
    """What to write besides the label map.

    Attributes:
        output_format: ``nifti``, ``seg.nrrd`` (3D Slicer) or ``dicom-seg`` (needs a DICOM input).
        save_probabilities: also write class probabilities (float32, ``[K, I, J, K]``) as
            ``<output>_probabilities.nii.gz``.
        statistics: write ``<output>_statistics.json`` / ``.csv`` (volumes, intensities).
        preview: write ``<output>_preview.png``.
    """

    output_format: str = "nifti"
    save_probabilities: bool = False
    statistics: bool = False
    preview: bool = False


@dataclass(frozen=True)
class CaseResult:
    """How one case went."""

    case_id: str
    input: Path
    output: Path
    status: str  # "done" | "skipped" | "failed"
    seconds: float = 0.0
    error: str | None = None
    peak_rss_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ``ru_maxrss`` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def predict_file(
    input_path: str | Path,
    output_path: str | Path | None,
    *,
    predictor: Predictor,
    options: OutputOptions | None = None,
    series_uid: str | None = None,
) -> Path:
    """Segment one volume file or DICOM series and write the label map.

    Args:
        input_path: volume file, DICOM folder, ``.dcm`` or ``.zip``.
        output_path: target; ``None`` → ``<input name>_seg.<ext>`` beside the input.
        predictor: the loaded model.
        options: output format and extras.
        series_uid: DICOM series to read when a folder holds several.

    Returns:
        The label map path.
    """
    opts = options or OutputOptions()
    src = Path(input_path)
    out = Path(output_path) if output_path is not None else default_output(src, opts.output_format)
    _check_output(src, out, opts.output_format)
    volume = read_volume(src, series_uid=series_uid)
    prediction = predictor.predict_case(volume, with_probabilities=opts.save_probabilities)
    return _write_outputs(prediction, volume, src, out, predictor, opts)


def _check_output(src: Path, out: Path, output_format: str) -> None:
    if out.resolve() == src.resolve():
        raise InvalidInputError("output path equals the input; medseg never overwrites its input", path=out)
    expected = output_suffix(output_format)
    if extension_of(out) != expected:
        raise InvalidInputError(f"output must end with {expected} for --format {output_format}", path=out)
    if output_format == "dicom-seg" and not (src.is_dir() or src.suffix.lower() in (".zip", ".dcm")):
        raise InvalidInputError("--format dicom-seg needs a DICOM series as input (a folder, .zip or .dcm)", path=src)


def _write_outputs(prediction: Prediction, image: Volume, src: Path, out: Path, predictor: Predictor,
                   opts: OutputOptions) -> Path:
    spec = predictor.plan.labels
    labels = prediction.labels
    if opts.output_format == "nifti":
        write_volume(labels, out)
    else:
        from medseg.export import export_labelmap

        reference = src if opts.output_format == "dicom-seg" else None
        export_labelmap(labels, out, labels=spec, reference_dicom=reference, image=image,
                        model_name=str(predictor.model_card.get("name", "medseg model")))
    stem = str(out)[: len(str(out)) - len(extension_of(out))]
    if opts.statistics:
        from medseg.export import write_statistics

        write_statistics(labels, Path(stem + "_statistics.json"), labels=spec, image=image)
    if opts.preview:
        from medseg.export import write_preview

        write_preview(labels, image, Path(stem + "_preview.png"), labels=spec)
    if opts.save_probabilities and prediction.probabilities is not None:
        write_volume(prediction.probabilities, Path(stem + "_probabilities.nii.gz"))
    return out


def predict_cohort(
    cases: list[InferenceCase],
    *,
    predictor: Predictor,
    options: OutputOptions | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Segment every case; skip finished ones, record failures and continue."""
    results = []
    for case in cases:
        result = _run_case(case, predictor, options or OutputOptions())
        results.append(result)
        if on_case:
            on_case(result)
    return results


def _run_case(case: InferenceCase, predictor: Predictor, options: OutputOptions) -> CaseResult:
    if case.output.exists():
        return CaseResult(case.case_id, case.input, case.output, "skipped")
    t0 = time.perf_counter()
    try:
        case.output.parent.mkdir(parents=True, exist_ok=True)
        predict_file(case.input, case.output, predictor=predictor, options=options)
    except MedsegError as exc:
        log.warning("case %s failed: %s", case.case_id, exc)
        return CaseResult(case.case_id, case.input, case.output, "failed", time.perf_counter() - t0, str(exc))
    return CaseResult(case.case_id, case.input, case.output, "done", time.perf_counter() - t0,
                      peak_rss_mb=peak_rss_mb())

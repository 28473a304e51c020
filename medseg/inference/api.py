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
from medseg.inference.cases import (
    PLAIN_LABEL_SUFFIXES,
    InferenceCase,
    accepts_suffix,
    default_output,
    output_suffix,
)
from medseg.io import read_volume, write_volume
from medseg.io.formats import extension_of

if TYPE_CHECKING:
    from medseg.inference.predictor import InferenceOptions, Prediction, Predictor
    from medseg.io import Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputOptions:
    """What to write besides the label map.

    Attributes:
        output_format: ``nifti`` (a plain label volume: ``.nii.gz``, or ``.nrrd``/``.mha``/``.mgz``... by
            the output's extension), ``seg.nrrd`` (3D Slicer) or ``dicom-seg`` (needs a DICOM input).
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


def load_predictor(model: str | Path | None = None, *, device: str = "auto", models_dir: Path | None = None,
                   options: InferenceOptions | None = None) -> Predictor:
    """The predictor for ``model``: ``None`` → the bundled default, a name (bundled, or a user model in
    ``models_dir``), or a checkpoint path. Checkpoints load with ``weights_only``; a bundled model's
    sha256 is verified."""
    from medseg.inference.predictor import Predictor
    from medseg.models.zoo import resolve_model

    entry = resolve_model(None if model is None else str(model), models_dir=models_dir)
    return Predictor.from_checkpoint(entry.path, device=device, options=options, sha256=entry.sha256)


def split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword settings → (:class:`InferenceOptions` fields, :class:`OutputOptions` fields).

    Raises:
        ConfigError: a key that is neither.
    """
    from dataclasses import fields

    from medseg.errors import ConfigError
    from medseg.inference.predictor import InferenceOptions

    inference_keys = {f.name for f in fields(InferenceOptions)}
    output_keys = {f.name for f in fields(OutputOptions)}
    unknown = sorted(set(settings) - inference_keys - output_keys)
    if unknown:
        raise ConfigError(f"unknown inference option(s) {unknown}; valid: {sorted(inference_keys | output_keys)}")
    return ({k: v for k, v in settings.items() if k in inference_keys},
            {k: v for k, v in settings.items() if k in output_keys})


def predict_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    predictor: Predictor | None = None,
    model: str | Path | None = None,
    device: str = "auto",
    models_dir: Path | None = None,
    series_uid: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    **settings: Any,
) -> Path:
    """Segment one volume file or DICOM series and write the label map in exactly its geometry.

    Args:
        input_path: volume file, DICOM folder, ``.dcm`` or ``.zip``. Never modified.
        output_path: target; ``None`` → ``<input name>_seg.<ext>`` beside the input. Missing
            parent folders are created; the file is written atomically.
        predictor: a loaded model; otherwise ``model`` (name or checkpoint path; ``None`` → the
            bundled default; user models from ``models_dir``) is loaded on ``device``.
        series_uid: DICOM series to read when a folder holds several.
        progress: called as ``progress(windows_done, windows_total)`` during the sliding window.
        **settings: :class:`~medseg.inference.predictor.InferenceOptions` fields (``overlap``,
            ``tta``, ``sw_batch_size``, ``amp``, ``max_memory_gb``) and :class:`OutputOptions`
            fields (``output_format``, ``save_probabilities``, ``statistics``, ``preview``), or
            ``options=OutputOptions(...)``.

    Returns:
        The label map path.

    Example:
        >>> predict_file("scan.nii.gz", "out/scan_seg.nii.gz", model="brain", tta=True)  # doctest: +SKIP
    """
    from dataclasses import replace

    from medseg.inference.predictor import InferenceOptions

    opts = settings.pop("options", None) or OutputOptions()
    inference, output = split_settings(settings)
    opts = replace(opts, **output)
    if predictor is None:
        predictor = load_predictor(model, device=device, models_dir=models_dir, options=InferenceOptions(**inference))
    elif inference:
        predictor = replace(predictor, options=replace(predictor.options, **inference))
    src = Path(input_path)
    out = Path(output_path) if output_path is not None else default_output(src, opts.output_format)
    _check_output(src, out, opts.output_format)
    volume = read_volume(src, series_uid=series_uid)
    prediction = predictor.predict_case(volume, with_probabilities=opts.save_probabilities, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _write_outputs(prediction, volume, src, out, predictor, opts)


def _check_output(src: Path, out: Path, output_format: str) -> None:
    if out.resolve() == src.resolve():
        raise InvalidInputError("output path equals the input; medseg never overwrites its input", path=out)
    if not accepts_suffix(output_format, out):
        allowed = ", ".join(PLAIN_LABEL_SUFFIXES) if output_format == "nifti" else output_suffix(output_format)
        raise InvalidInputError(f"output must end with {allowed} for --format {output_format}", path=out)
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
    on_start: Callable[[InferenceCase], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CaseResult]:
    """Segment every case; skip finished ones, record failures and continue.

    ``on_start(case)`` runs before each case, ``progress(done, total)`` during its sliding window,
    ``on_case(result)`` after it.
    """
    results = []
    for case in cases:
        if on_start:
            on_start(case)
        result = _run_case(case, predictor, options or OutputOptions(), progress)
        results.append(result)
        if on_case:
            on_case(result)
    return results


def _run_case(case: InferenceCase, predictor: Predictor, options: OutputOptions,
              progress: Callable[[int, int], None] | None = None) -> CaseResult:
    if case.output.exists():
        return CaseResult(case.case_id, case.input, case.output, "skipped")
    t0 = time.perf_counter()
    try:
        predict_file(case.input, case.output, predictor=predictor, options=options, progress=progress)
    except MedsegError as exc:
        log.warning("case %s failed: %s", case.case_id, exc)
        return CaseResult(case.case_id, case.input, case.output, "failed", time.perf_counter() - t0, str(exc))
    return CaseResult(case.case_id, case.input, case.output, "done", time.perf_counter() - t0,
                      peak_rss_mb=peak_rss_mb())

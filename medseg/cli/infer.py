"""``medseg infer``: segment one scan or a whole cohort."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from medseg.cli.common import models_dir_option, resolve_models_dir

FORMATS = ("nifti", "seg.nrrd", "dicom-seg")


def infer(
    input_path: Path = typer.Argument(..., metavar="INPUT",
                                      help="Volume file, DICOM folder/.zip, a folder of volumes or series, or a CSV."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="Output file (one input) or folder (cohort). Default: <input>_seg.nii.gz beside "
                                     "the input, or <input folder>_seg/ for a cohort."),
    model: str = typer.Option(None, "--model", "-m", help="Model name (see `medseg models list`) or checkpoint path. "
                                                         "Default: the bundled default model."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    overlap: float = typer.Option(0.5, min=0.0, max=0.95, help="Sliding-window overlap fraction."),
    tta: bool = typer.Option(False, "--tta",
                             help="Mirroring test-time augmentation over the flips the model was trained with "
                                  "(all axes: 8×; the brain model: left-right, 2× slower)."),
    save_probabilities: bool = typer.Option(False, "--save-probabilities",
                                            help="Also write class probabilities as <output>_probabilities.nii.gz."),
    output_format: str = typer.Option(None, "--format",
                                      help="nifti (a plain label volume), seg.nrrd (3D Slicer) or dicom-seg. "
                                           "Default: from the output's extension, else nifti."),
    max_memory_gb: float = typer.Option(None, "--max-memory-gb", min=0.1,
                                        help="Memory budget in GB for the sliding-window and stitching buffers "
                                             "(default 2; the input volume and its label map come on top)."),
    amp: str = typer.Option("auto", help="Mixed precision: auto, bf16, fp16 (CUDA) or off."),
    statistics: bool = typer.Option(False, "--statistics", help="Write per-structure volumes and intensities."),
    preview: bool = typer.Option(False, "--preview", help="Write a PNG preview (and an HTML report for cohorts)."),
    shard: str = typer.Option(None, help="K/N: process every N-th case starting at K (cohorts)."),
    series_uid: str = typer.Option(None, "--series-uid", help="DICOM series to read when a folder holds several."),
    threads: int = typer.Option(None, "--threads", min=1,
                                help="CPU threads for the network (default: PyTorch's choice, one per core)."),
    models_dir: Path = models_dir_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Segment INPUT and write label maps in exactly the input's geometry.

    Exit code 0 when every case succeeded, 1 when a cohort case failed, 2 on a usage error."""
    from medseg.errors import check_option
    from medseg.inference.api import OutputOptions
    from medseg.inference.cases import is_single_input

    if output_format is None:
        from medseg.inference.cases import format_for_output

        output_format = format_for_output(output) if output is not None else "nifti"
    check_option(output_format, FORMATS, name="output format")
    if threads:
        import torch

        torch.set_num_threads(threads)
    predictor = _load_predictor(model, models_dir, device, overlap, tta, amp, max_memory_gb)
    options = OutputOptions(output_format=output_format, save_probabilities=save_probabilities,
                            statistics=statistics, preview=preview)
    if is_single_input(input_path):
        _single(input_path, output, predictor, options, series_uid, quiet)
    else:
        raise typer.Exit(_cohort(input_path, output, predictor, options, shard, quiet))


def _load_predictor(model: str | None, models_dir: Path | None, device: str, overlap: float, tta: bool, amp: str,
                    max_memory_gb: float | None):
    from medseg.inference import InferenceOptions, load_predictor

    options = InferenceOptions(overlap=overlap, tta=tta, amp=amp, max_memory_gb=max_memory_gb)
    return load_predictor(model, device=device, models_dir=resolve_models_dir(models_dir), options=options)


def _progress(quiet: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True, quiet=quiet), transient=True)


def _single(input_path: Path, output: Path | None, predictor, options, series_uid: str | None, quiet: bool) -> None:
    import time

    from medseg.inference.api import peak_rss_mb, predict_file

    t0 = time.perf_counter()
    with _progress(quiet) as bar:
        task = bar.add_task(f"segmenting {input_path.name} (windows)", total=None)
        out = predict_file(input_path, output, predictor=predictor, options=options, series_uid=series_uid,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))
    if not quiet:
        typer.echo(f"{out}  ({time.perf_counter() - t0:.1f} s, peak memory {peak_rss_mb():.0f} MiB)")


def _cohort(input_path: Path, output: Path | None, predictor, options, shard: str | None, quiet: bool) -> int:
    from rich.console import Console

    from medseg.inference.api import predict_cohort
    from medseg.inference.cases import collect_cases, parse_shard, take_shard

    out_dir = output or input_path.with_name(input_path.stem + "_seg")
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = collect_cases(input_path, out_dir, output_format=options.output_format)
    shard_spec = parse_shard(shard) if shard else _torchrun_shard()
    if shard_spec:
        cases = take_shard(cases, shard_spec)
    with _progress(quiet) as bar:
        cohort = bar.add_task("cases", total=len(cases))
        case_task = bar.add_task("", total=None)

        def start(case) -> None:
            bar.update(case_task, description=f"{case.case_id} (windows)", completed=0, total=None)

        results = predict_cohort(cases, predictor=predictor, options=options, on_start=start,
                                 on_case=lambda r: bar.advance(cohort),
                                 progress=lambda done, total: bar.update(case_task, completed=done, total=total))
    if options.preview:
        from medseg.export import write_cohort_report

        write_cohort_report([r.output for r in results if r.status != "failed"], out_dir / "report.html",
                            labels=predictor.plan.labels)
    _summary(results, Console(quiet=quiet))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        typer.echo(f"medseg: failed: {r.case_id}: {r.error}", err=True)
    return 1 if failed else 0


def _torchrun_shard() -> tuple[int, int] | None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def _summary(results, console) -> None:
    from rich.table import Table

    table = Table(title="medseg infer")
    for col in ("case", "status", "seconds", "output / error"):
        table.add_column(col)
    for r in results:
        table.add_row(r.case_id, r.status, f"{r.seconds:.1f}" if r.seconds else "-",
                      str(r.output) if r.status != "failed" else (r.error or ""))
    console.print(table)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    console.print(f"{counts['done']} done, {counts['skipped']} skipped (output exists), {counts['failed']} failed")

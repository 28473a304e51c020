"""``medseg plan DIR -o plan.yaml``: fingerprint a dataset and write its preprocessing/network plan."""

from __future__ import annotations

from pathlib import Path

import typer


def plan(
    path: Path = typer.Argument(..., help="Dataset folder (with dataset.json) or .csv manifest."),
    output: Path = typer.Option(..., "--output", "-o", help="Plan file to write (YAML)."),
    gpu_memory_gb: float = typer.Option(8.0, "--gpu-memory-gb", min=0.5, help="GPU memory budget per training step."),
    batch_size: int = typer.Option(2, "--batch-size", min=1, help="Patches per training step the budget must hold."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes reading cases."),
) -> None:
    """Fingerprint the dataset and plan target spacing, patch size, normalisation and network topology."""
    from medseg.data.dataset import load_dataset
    from medseg.data.fingerprint import compute_fingerprint
    from medseg.data.plan import save_plan
    from medseg.data.planner import make_plan

    dataset = load_dataset(path)
    fingerprint = compute_fingerprint(dataset, jobs=jobs)
    result = make_plan(fingerprint, dataset, gpu_memory_gb=gpu_memory_gb, batch_size=batch_size)
    save_plan(result, output)
    fmt = lambda values: " × ".join(f"{v:.4g}" for v in values)  # noqa: E731
    planning = result.fingerprint["planning"]
    typer.echo(f"{len(dataset.cases)} cases, {dataset.n_channels} channel(s), {len(dataset.labels)} label(s)")
    typer.echo(f"target spacing  {fmt(result.target_spacing_mm)} mm (RAS x, y, z)")
    typer.echo(f"patch size      {fmt(result.patch_size)} voxels, {len(result.topology.strides)} stages, "
               f"~{planning['estimated_memory_gb']:.1f} GB at batch size {batch_size}")
    typer.echo("normalisation   " + ", ".join(f"{c.name}: {c.scheme}" for c in result.channels))
    typer.echo(f"wrote {output}")

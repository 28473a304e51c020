"""``medseg train``: train a model on a dataset folder, CSV manifest or folder of label maps."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    dataset: Path = typer.Argument(..., help="MSD/nnU-Net dataset folder, CSV manifest, or (with a synth: config) "
                                             "a folder of label maps."),
    config: Path = typer.Option(..., "--config", "-c", help="Training config YAML (see configs/)."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder (checkpoints, logs, plan, splits)."),
    fold: str = typer.Option("0", help="Fold to train: an integer 0..folds-1 or 'all'."),
    epochs: int = typer.Option(None, min=1, help="Total epochs (overrides the config; extends a finished run)."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly where last.pt stopped."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, help="Random seed (splits, sampling, initialisation)."),
    deterministic: bool = typer.Option(False, "--deterministic",
                                       help="Deterministic kernels (bit-identical reruns; slower on GPU)."),
    plan: Path = typer.Option(None, "--plan", help="Use this plan.yaml instead of planning from the dataset."),
    jobs: int = typer.Option(1, min=1, help="Processes for fingerprinting and preprocessing."),
    init_from: Path = typer.Option(None, "--init-from",
                                   help="Start new folds from this checkpoint's weights (fine-tuning; same model, "
                                        "channels and classes)."),
    overrides: list[str] = typer.Option(None, "--set", metavar="<section.field=value>",
                                        help="Override one config value, SECTION.FIELD=VALUE (VALUE read as YAML; "
                                             "repeatable), e.g. --set optim.lr=3e-4."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train with exact resume, cross-validation and (under torchrun) DistributedDataParallel."""
    from medseg.training.config import load_config
    from medseg.training.distributed import context_from_env
    from medseg.training.run import TrainOptions
    from medseg.training.run import train as run_training

    cfg = load_config(config, overrides or ())
    options = TrainOptions(fold=fold, resume=resume, epochs=epochs, device=device, seed=seed,
                           deterministic=deterministic, plan_path=plan, jobs=jobs,
                           init_from=init_from)
    show = not quiet and context_from_env().is_main
    with _progress(show) as callbacks:
        results = run_training(dataset, cfg, output, options=options, callbacks=callbacks)
    if show:
        for r in results:
            best = f"best mean validation Dice {r.best_metric:.4f} (epoch {r.best_epoch})" if r.best_epoch else \
                "no validation yet"
            typer.echo(f"{r.run_dir}: {r.epochs} epochs, {best}")


class _progress:
    """A rich progress bar (epochs and iterations) as training callbacks."""

    def __init__(self, show: bool) -> None:
        self.show = show

    def __enter__(self):
        from medseg.training.loop import TrainCallbacks

        if not self.show:
            return TrainCallbacks()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeRemainingColumn())
        self.bar.__enter__()
        self.epochs = self.bar.add_task("epochs", total=None, info="")
        self.iters = self.bar.add_task("iterations", total=None, info="")

        def on_epoch_start(epoch: int, total: int) -> None:
            self.bar.update(self.epochs, total=total, completed=epoch)
            self.bar.reset(self.iters)

        def on_iteration(it: int, total: int, loss: float) -> None:
            self.bar.update(self.iters, total=total, completed=it, info=f"loss {loss:.4f}")

        def on_epoch_end(row) -> None:
            dice = row.get("val_dice_mean")
            self.bar.update(self.epochs, advance=1,
                            info=f"val Dice {dice:.3f}" if dice is not None else f"loss {row['train_loss']:.4f}")

        return TrainCallbacks(on_epoch_start=on_epoch_start, on_iteration=on_iteration, on_epoch_end=on_epoch_end)

    def __exit__(self, *exc) -> None:
        if self.show:
            self.bar.__exit__(*exc)

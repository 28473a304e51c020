"""``medseg train``: dataset → plan → preprocessed cache → splits → folds → cross-validation summary.

Run folder layout::

    RUN_DIR/config.yaml        the resolved training config (written once; reused on --resume)
    RUN_DIR/plan.yaml          the plan (made from the dataset unless --plan is given)
    RUN_DIR/splits.json        subject-grouped folds (reused)
    RUN_DIR/cache/<key>/       preprocessed cases (keyed by the plan)
    RUN_DIR/fold_K/            last.pt, best.pt, metrics.csv, progress.png, tensorboard/, validation.json
    RUN_DIR/cv_summary.json    per-class Dice / HD95 over folds (``--fold all``)

Label-maps-only runs (a ``synth:`` config section) train one model in ``RUN_DIR/fold_0`` on all
label maps, validating on the real scans the config lists.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from medseg.data.plan import Plan, load_plan, save_plan
from medseg.errors import ConfigError
from medseg.io.atomic import atomic_write_text
from medseg.models.registry import create_model
from medseg.training.config import TrainConfig, config_from_dict, override
from medseg.training.distributed import DistContext, barrier, context_from_env
from medseg.training.loop import FoldResult, FoldRun, TrainCallbacks, train_fold
from medseg.training.splits import fold_indices, load_or_make_splits

if TYPE_CHECKING:
    import torch

    from medseg.data.dataset import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """Run-level choices from the command line.

    Attributes:
        fold: ``"K"`` (one fold) or ``"all"``.
        resume: continue the run in ``run_dir`` from each fold's ``last.pt`` (a fold without one
            starts from scratch); the run's stored ``config.yaml`` is used, not the one passed.
        epochs: total epochs, overriding the config (also on ``resume``: more epochs extend a
            finished run); ``None`` keeps the config's (or, on resume, the run's) value.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: seeds the splits, the sampling and the network initialisation.
        deterministic: deterministic kernels (see :func:`determinism`).
        plan_path: a plan file to use instead of planning from the dataset.
        jobs: processes for fingerprinting and preprocessing.
        init_from: start each new fold from this checkpoint's weights (fine-tuning; same
            architecture, channels and classes required).
    """

    fold: str = "0"
    resume: bool = False
    epochs: int | None = None
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    plan_path: Path | None = None
    jobs: int = 1
    init_from: Path | None = None


def train(dataset_path: str | Path, config: TrainConfig, run_dir: str | Path, *, options: TrainOptions | None = None,
          callbacks: TrainCallbacks | None = None) -> list[FoldResult]:
    """Train the folds ``options.fold`` selects; returns one result per fold trained.

    Raises:
        ConfigError / DatasetError / InvalidInputError: bad config, dataset or plan (before any training).
    """
    from medseg.training import distributed

    opts = options or TrainOptions()
    out = Path(run_dir)
    ctx = context_from_env()
    device = _device(opts.device, ctx)
    if config.loop.amp == "fp16" and device.type != "cuda":
        raise ConfigError("loop.amp: fp16 needs a CUDA GPU (it trains with a gradient scaler); on a CPU use bf16, "
                          "auto or off")
    distributed.init(ctx, device)
    try:
        config = _resolve_config(config, out, opts, ctx)
        with determinism(seed=opts.seed, enabled=opts.deterministic):
            if config.synth is not None:
                return [_train_synth(Path(dataset_path), config, out, opts, ctx, device, callbacks)]
            return _train_dataset(Path(dataset_path), config, out, opts, ctx, device, callbacks)
    finally:
        distributed.shutdown(ctx)


# --- set-up ------------------------------------------------------------------------------------
def _device(choice: str, ctx: DistContext) -> torch.device:
    import torch

    from medseg.runtime import resolve_device

    device = resolve_device(choice)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device


def _resolve_config(config: TrainConfig, out: Path, opts: TrainOptions, ctx: DistContext) -> TrainConfig:
    """The config of this run, written to ``config.yaml``.

    A new run takes ``config``. ``--resume`` takes the run's stored ``config.yaml`` (a differing
    ``--config`` is ignored with a warning) and only ``--epochs`` may change it. Starting afresh
    over a fold that already has ``last.pt`` is refused rather than overwriting it.
    """
    stored = out / "config.yaml"
    if opts.resume and stored.is_file():
        previous = config_from_dict(yaml.safe_load(stored.read_text(encoding="utf-8")), source=stored)
        changed = _changed_fields(previous, config)
        if changed:
            log.warning("--resume continues with the run's own %s; ignoring the given config's %s", stored,
                        ", ".join(changed))
        config = previous
    config = override(config, epochs=opts.epochs)
    if not opts.resume:
        _refuse_overwrite(out, config, opts)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stored, yaml.safe_dump(config.to_dict(), sort_keys=False))
    barrier(ctx)
    return config


def _changed_fields(stored: TrainConfig, given: TrainConfig) -> list[str]:
    """``section.field`` names whose values differ (``loop.epochs`` left out: --epochs decides it)."""
    a, b = stored.to_dict(), given.to_dict()
    out = []
    for section in a:
        if isinstance(a[section], dict) and isinstance(b.get(section), dict):
            keys = sorted(set(a[section]) | set(b[section]))
            out += [f"{section}.{k}" for k in keys if a[section].get(k) != b[section].get(k)]
        elif a[section] != b.get(section):
            out.append(section)
    return [f for f in out if f != "loop.epochs"]


def _refuse_overwrite(out: Path, config: TrainConfig, opts: TrainOptions) -> None:
    folds = [0] if config.synth is not None else fold_indices(opts.fold, config.loop.folds)
    trained = [out / f"fold_{k}" / "last.pt" for k in folds if (out / f"fold_{k}" / "last.pt").is_file()]
    if trained:
        raise ConfigError(f"the run folder already holds a trained fold ({trained[0].relative_to(out)}); pass "
                          "--resume to continue it (with --epochs N to extend it), or choose a new --output",
                          path=out)


@contextlib.contextmanager
def determinism(*, seed: int, enabled: bool) -> Iterator[None]:
    """Seed Python, NumPy and torch; if ``enabled``, also force deterministic kernels meanwhile.

    ``enabled`` sets ``torch.use_deterministic_algorithms(True)`` and turns off cuDNN's
    benchmark autotuning (and sets ``CUBLAS_WORKSPACE_CONFIG``, which deterministic cuBLAS needs).
    On CPU this costs nothing measurable; on GPUs it rules out the fastest non-deterministic
    kernels (see docs/training.md). The previous settings are restored on exit.
    """
    from medseg.training.rng import seed_everything

    seed_everything(seed)
    if not enabled:
        yield
        return
    import os

    import torch

    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


# --- dataset mode ------------------------------------------------------------------------------
def _train_dataset(path: Path, config: TrainConfig, out: Path, opts: TrainOptions, ctx: DistContext,
                   device: torch.device, callbacks: TrainCallbacks | None) -> list[FoldResult]:
    from medseg.data.cache import PreprocessedCache
    from medseg.data.dataset import load_dataset

    dataset = load_dataset(path)
    plan = _dataset_plan(dataset, config, out, opts, ctx)
    create_model(config.model, plan)  # fail fast on a model/plan mismatch (e.g. UNETR patch)
    cache = PreprocessedCache(out / "cache", plan)
    if ctx.is_main:
        cache.build(dataset, jobs=opts.jobs)
    barrier(ctx)
    labelled = {c.case_id: c.subject for c in dataset.cases if c.label_path is not None}
    _check_label_values(cache, dataset, plan)
    if ctx.is_main:
        load_or_make_splits(out / "splits.json", labelled, folds=config.loop.folds, seed=opts.seed)
    barrier(ctx)
    splits = load_or_make_splits(out / "splits.json", labelled, folds=config.loop.folds, seed=opts.seed)
    results = []
    for k in fold_indices(opts.fold, config.loop.folds):
        run = FoldRun(
            run_dir=out / f"fold_{k}", plan=plan, config=config,
            batches=_dataset_batches(cache, splits[k]["train"], config, opts.seed, ctx),
            validator=_cached_validator(cache, splits[k]["val"], plan, config, device),
            device=device, seed=opts.seed, ctx=ctx, model_card=_model_card(plan, dataset_name=path.name),
            init_from=opts.init_from,
        )
        result = train_fold(run, resume=opts.resume, callbacks=callbacks)
        if ctx.is_main and (result.epochs_run or not (result.run_dir / "validation.json").is_file()):
            _final_validation(dataset, splits[k]["val"], result.run_dir, device, config)
        results.append(result)
    if ctx.is_main and len(list(out.glob("fold_*/validation.json"))) > 1:
        write_cv_summary(out)
    return results


def _dataset_plan(dataset: Dataset, config: TrainConfig, out: Path, opts: TrainOptions, ctx: DistContext) -> Plan:
    """The run's ``plan.yaml`` if it has one, else ``--plan``, else a new plan from the fingerprint
    (made by rank 0 and saved before the other ranks read it).

    Raises:
        ConfigError: ``--plan`` differs from the plan the run was started with, or the plan lacks
            classes or channels the dataset has.
    """
    stored = out / "plan.yaml"
    given = load_plan(opts.plan_path) if opts.plan_path is not None else None
    if stored.is_file():
        plan = load_plan(stored)
        if given is not None and given != plan:
            raise ConfigError(f"--plan {opts.plan_path} differs from the plan this run was started with; drop --plan "
                              "to continue the run, or train into a new --output", path=stored)
    elif given is not None:
        plan = given
        overrides = {k: v for k, v in (("target_spacing_mm", config.plan.target_spacing_mm),
                                       ("patch_size", config.plan.patch_size))
                     if v is not None and tuple(v) != tuple(getattr(plan, k))}
        if overrides:
            log.warning("--plan %s is used as it is; the config's plan section (%s) is ignored",
                        opts.plan_path, ", ".join(f"{k}: {list(v)}" for k, v in overrides.items()))
    else:
        if ctx.is_main:
            save_plan(_make_plan(dataset, config, opts), stored)
        barrier(ctx)
        plan = load_plan(stored)
    missing = sorted(set(dataset.labels.values) - set(plan.labels.values))
    if missing:
        raise ConfigError(f"plan.labels lacks label value(s) {missing} that the dataset declares; "
                          "re-plan or add them to the plan's labels")
    if plan.n_channels != dataset.n_channels:
        raise ConfigError(f"plan.channels has {plan.n_channels} channel(s) but the dataset has {dataset.n_channels}")
    if ctx.is_main and not stored.is_file():
        save_plan(plan, stored)
    return plan


def _check_label_values(cache: Any, dataset: Dataset, plan: Plan) -> None:
    """Refuse label maps holding values the plan has no class for (the network could not learn them)."""
    known = set(plan.labels.values) | {0}
    for case in dataset.cases:
        if case.label_path is None:
            continue
        extra = sorted(int(v) for v in cache.info(case.case_id).class_voxels if int(v) not in known)
        if extra:
            raise ConfigError(f"labels: the label map holds value(s) {extra} but the plan's labels are only "
                              f"{sorted(known - {0})}; declare every class in the dataset's labels and re-plan "
                              "(new --output), or relabel the case", path=case.label_path)


def _make_plan(dataset: Dataset, config: TrainConfig, opts: TrainOptions) -> Plan:
    from medseg.data.fingerprint import compute_fingerprint
    from medseg.data.planner import derive_topology, make_plan

    fingerprint = compute_fingerprint(dataset, jobs=opts.jobs)
    plan = make_plan(fingerprint, dataset, gpu_memory_gb=config.plan.gpu_memory_gb, batch_size=config.loop.batch_size)
    spacing = config.plan.target_spacing_mm or plan.target_spacing_mm
    if config.plan.patch_size is not None or config.plan.target_spacing_mm is not None:
        patch = config.plan.patch_size or plan.patch_size
        topology, patch = derive_topology(spacing, patch)
        plan = replace(plan, target_spacing_mm=tuple(spacing), patch_size=patch, topology=topology)  # type: ignore[arg-type]
    return plan


def _dataset_batches(cache: Any, case_ids: Sequence[str], config: TrainConfig, seed: int, ctx: DistContext) -> Any:
    from medseg.training.sources import CacheBatchSource

    return CacheBatchSource(cache=cache, case_ids=list(case_ids), config=config, seed=seed, rank=ctx.rank,
                            world_size=ctx.world_size)


def _cached_validator(cache: Any, case_ids: Sequence[str], plan: Plan, config: TrainConfig, device: Any) -> Any:
    from medseg.runtime import autocast_dtype
    from medseg.training.validation import CachedValidator

    def load(case_id: str) -> tuple[Any, Any, Sequence[float]]:
        image, label, info = cache.get(case_id)
        spacing = np.linalg.norm(info.record.network_affine[:3, :3], axis=0)
        return np.asarray(image), np.asarray(label), tuple(float(s) for s in spacing)

    ids = list(case_ids)[: config.loop.val_max_cases] if config.loop.val_max_cases else list(case_ids)
    return CachedValidator(load=load, case_ids=ids, plan=plan, device=device,
                           amp_dtype=autocast_dtype(device, config.loop.amp), overlap=config.loop.sw_overlap)


def _model_card(plan: Plan, *, dataset_name: str) -> dict[str, Any]:
    return {"name": f"medseg model trained on {dataset_name}",
            "classes": {str(k): v for k, v in plan.labels.names.items()},
            "channels": [c.name for c in plan.channels]}


def _final_validation(dataset: Dataset, case_ids: Sequence[str], fold_dir: Path, device: Any,
                      config: TrainConfig) -> None:
    """Segment the fold's validation cases with ``best.pt`` on their original grids; write validation.json."""
    from medseg.inference.predictor import InferenceOptions, Predictor
    from medseg.metrics import evaluate_case

    best = fold_dir / "best.pt" if (fold_dir / "best.pt").is_file() else fold_dir / "last.pt"
    options = InferenceOptions(amp=config.loop.amp, overlap=config.loop.sw_overlap)
    predictor = Predictor.from_checkpoint(best, device=device, options=options)
    rows = []
    for case_id in case_ids:
        image, label = dataset.load_case(case_id)
        assert label is not None
        pred = predictor.predict(image)
        for m in evaluate_case(pred.array, np.asarray(label.array), spacing_mm=image.spacing,
                               labels=predictor.plan.labels.values):
            rows.append({"case": case_id, "label": m.label, "name": predictor.plan.labels.names[m.label],
                         "dice": m.dice, "hd95": m.hd95, "status": m.status})
    atomic_write_text(fold_dir / "validation.json", json.dumps(rows, indent=2))


def write_cv_summary(run_dir: Path) -> Path:
    """Per-class Dice and HD95 over every fold's ``validation.json`` → ``cv_summary.json`` and ``.md``.

    Each case is validated once, in its own fold, so the means pool all validation cases; the mean
    Dice of each fold is listed beside them. Missing values (HD95 of an empty mask) are left out.
    """
    paths = sorted(run_dir.glob("fold_*/validation.json"), key=lambda p: int(p.parent.name.split("_")[1]))
    per_fold = {p.parent.name: json.loads(p.read_text()) for p in paths}
    rows = [r for fold_rows in per_fold.values() for r in fold_rows]
    names = sorted({(r["label"], r["name"]) for r in rows})
    summary: dict[str, Any] = {"folds": len(per_fold), "classes": {}}
    lines = ["| class | n | mean Dice | mean HD95 (mm) | Dice per fold |", "|---|---|---|---|---|"]
    for value, name in names:
        dice = _values(rows, value, "dice")
        hd95 = _values(rows, value, "hd95")
        by_fold = {fold: _mean(_values(fold_rows, value, "dice")) for fold, fold_rows in per_fold.items()}
        entry = {"value": value, "n": len(dice), "dice_mean": _mean(dice), "hd95_mean": _mean(hd95),
                 "dice_per_fold": by_fold}
        summary["classes"][name] = entry
        lines.append(f"| {name} | {entry['n']} | {_fmt(entry['dice_mean'])} | {_fmt(entry['hd95_mean'])} | "
                     f"{' / '.join(_fmt(d) for d in by_fold.values())} |")
    atomic_write_text(run_dir / "cv_summary.json", json.dumps(summary, indent=2))
    atomic_write_text(run_dir / "cv_summary.md", "\n".join(lines) + "\n")
    return run_dir / "cv_summary.json"


def _values(rows: Sequence[dict[str, Any]], label: int, key: str) -> list[float]:
    return [float(r[key]) for r in rows if r["label"] == label and r[key] is not None]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


# --- label-maps-only mode ----------------------------------------------------------------------
def _train_synth(path: Path, config: TrainConfig, out: Path, opts: TrainOptions, ctx: DistContext, device: Any,
                 callbacks: TrainCallbacks | None) -> FoldResult:
    from medseg.training.synth_mode import synth_fold_run

    run = synth_fold_run(path, config, out, seed=opts.seed, ctx=ctx, device=device)
    return train_fold(replace(run, init_from=opts.init_from), resume=opts.resume, callbacks=callbacks)


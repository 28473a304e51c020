"""The training loop for one fold: exact resume, AMP, deep supervision, validation, checkpoints.

Reproducibility contract: the batches of epoch ``e`` on rank ``r`` depend only on
``(seed, e, r)``, and ``last.pt`` holds every other piece of state (weights, optimiser, scheduler,
grad scaler, all RNG states) at the end of an epoch. A run killed mid-epoch and resumed repeats
that epoch from its start and ends with the same weights as an uninterrupted run (bit-identical
on CPU with ``--deterministic``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from medseg.data.plan import Plan
from medseg.errors import CheckpointError
from medseg.models.checkpoint import load_checkpoint, save_checkpoint
from medseg.models.registry import create_model
from medseg.training.config import OptimConfig, TrainConfig
from medseg.training.distributed import DistContext, barrier, mean_across_ranks
from medseg.training.logs import RunLog
from medseg.training.losses import SegmentationLoss
from medseg.training.rng import capture_rng_state, restore_rng_state

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    """Yields training batches ``{"image": [B, C, *patch] float32, "label": [B, 1, *patch] int64}``."""

    def epoch(self, epoch: int) -> Iterator[Mapping[str, torch.Tensor]]:
        """An iterator of (at least ``iterations_per_epoch``) batches for ``epoch``, seeded by it."""
        ...


class Validator(Protocol):
    """Scores a network in eval mode; returns ``val_dice_mean`` and per-class ``val_dice_<name>`` etc."""

    def validate(self, network: torch.nn.Module) -> dict[str, float]: ...


@dataclass
class TrainCallbacks:
    """Hooks for progress display (the CLI passes rich progress bars); all optional."""

    on_epoch_start: Callable[[int, int], None] | None = None  # (epoch index, total epochs)
    on_iteration: Callable[[int, int, float], None] | None = None  # (iteration, total, loss)
    on_epoch_end: Callable[[Mapping[str, Any]], None] | None = None  # the logged row


@dataclass
class FoldRun:
    """Everything one fold's training needs."""

    run_dir: Path
    plan: Plan
    config: TrainConfig
    batches: BatchSource
    validator: Validator | None
    device: Any
    seed: int = 0
    ctx: DistContext = field(default_factory=DistContext)
    model_card: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FoldResult:
    """Where a fold ended."""

    run_dir: Path
    epochs: int
    best_metric: float
    best_epoch: int
    last_metrics: Mapping[str, float]


def lr_at(epoch: int, optim: OptimConfig, epochs: int) -> float:
    """Learning rate for ``epoch`` (0-based) of ``epochs``: optional linear warm-up, then the schedule."""
    if epoch < optim.warmup_epochs:
        return optim.lr * (epoch + 1) / (optim.warmup_epochs + 1)
    progress = (epoch - optim.warmup_epochs) / max(1, epochs - optim.warmup_epochs)
    if optim.schedule == "poly":
        return optim.lr * (1 - progress) ** optim.poly_exponent
    if optim.schedule == "cosine":
        return optim.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return optim.lr


def make_optimizer(params: Any, optim: OptimConfig) -> torch.optim.Optimizer:
    import torch

    if optim.name == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, nesterov=True,
                               weight_decay=optim.weight_decay)
    return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)


def train_fold(run: FoldRun, *, resume: bool = False, callbacks: TrainCallbacks | None = None) -> FoldResult:
    """Train (or resume, or extend) one fold; writes ``last.pt``, ``best.pt`` and logs to ``run.run_dir``."""
    import torch

    from medseg.runtime import autocast_dtype

    cb = callbacks or TrainCallbacks()
    cfg = run.config
    run.run_dir.mkdir(parents=True, exist_ok=True)
    net = create_model(cfg.model, run.plan).to(run.device)
    optimizer = make_optimizer(net.parameters(), cfg.optim)
    amp_dtype = autocast_dtype(run.device, cfg.loop.amp)
    scaler = torch.amp.GradScaler(run.device.type, enabled=amp_dtype == torch.float16)
    state = _resume_state(run, net, optimizer, scaler) if resume else _fresh_state()
    model: torch.nn.Module = net
    if run.ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    loss_fn = SegmentationLoss()
    runlog = RunLog(run.run_dir, history=state["history"], class_names=run.plan.labels.names) if run.ctx.is_main else None
    last_metrics: dict[str, float] = {}
    for epoch in range(state["epoch"], cfg.loop.epochs):
        if cb.on_epoch_start:
            cb.on_epoch_start(epoch, cfg.loop.epochs)
        t0 = time.perf_counter()
        lr = lr_at(epoch, cfg.optim, cfg.loop.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_loss = _train_epoch(model, optimizer, scaler, loss_fn, run, epoch, amp_dtype, cb)
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": mean_across_ranks(train_loss, run.ctx), "lr": lr}
        if run.validator is not None and ((epoch + 1) % cfg.loop.val_every == 0 or epoch + 1 == cfg.loop.epochs):
            if run.ctx.is_main:
                net.eval()
                last_metrics = run.validator.validate(net)
                row.update(last_metrics)
        row["seconds"] = round(time.perf_counter() - t0, 2)
        state["epoch"] = epoch + 1
        state["history"] = [*state["history"], row]
        metric = row.get("val_dice_mean")
        if metric is not None and metric > state["best_metric"]:
            state["best_metric"], state["best_epoch"] = float(metric), epoch + 1
            if run.ctx.is_main:
                _save(run, net, optimizer, scaler, state, "best.pt")
        if run.ctx.is_main:
            _save(run, net, optimizer, scaler, state, "last.pt")
            assert runlog is not None
            runlog.add(row)
        barrier(run.ctx)
        if cb.on_epoch_end:
            cb.on_epoch_end(row)
    if runlog is not None:
        runlog.close()
    return FoldResult(run.run_dir, state["epoch"], state["best_metric"], state["best_epoch"], last_metrics)


def _train_epoch(model: Any, optimizer: Any, scaler: Any, loss_fn: SegmentationLoss, run: FoldRun, epoch: int,
                 amp_dtype: Any, cb: TrainCallbacks) -> float:
    import torch

    model.train()
    total, n = 0.0, run.config.loop.iterations_per_epoch
    batches = run.batches.epoch(epoch)
    for it in range(n):
        batch = next(batches)
        x = batch["image"].to(run.device, non_blocking=True)
        y = batch["label"].to(run.device, non_blocking=True)
        with torch.autocast(run.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.config.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        value = float(loss.detach())
        total += value
        if cb.on_iteration:
            cb.on_iteration(it + 1, n, value)
    return total / n


def _fresh_state() -> dict[str, Any]:
    return {"epoch": 0, "best_metric": -math.inf, "best_epoch": 0, "history": []}


def _resume_state(run: FoldRun, net: Any, optimizer: Any, scaler: Any) -> dict[str, Any]:
    """Load ``last.pt`` into the objects and return the loop state (fresh if there is none)."""
    path = run.run_dir / "last.pt"
    if not path.is_file():
        log.info("no %s yet: starting this fold from scratch", path)
        return _fresh_state()
    ckpt = load_checkpoint(path)
    if ckpt.training is None:
        raise CheckpointError("checkpoint has no training state to resume from", path=path)
    net.load_state_dict(ckpt.state_dict)
    t = ckpt.training
    optimizer.load_state_dict(t["optimizer"])
    if t.get("scaler"):
        scaler.load_state_dict(t["scaler"])
    restore_rng_state(t["rng"])
    log.info("resuming %s after epoch %d", run.run_dir, t["epoch"])
    return {"epoch": int(t["epoch"]), "best_metric": float(t["best_metric"]), "best_epoch": int(t["best_epoch"]),
            "history": list(t["history"])}


def _save(run: FoldRun, net: Any, optimizer: Any, scaler: Any, state: Mapping[str, Any], name: str) -> None:
    training = {
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": capture_rng_state(),
        "epoch": state["epoch"],
        "best_metric": state["best_metric"],
        "best_epoch": state["best_epoch"],
        "history": state["history"],
        "seed": run.seed,
    }
    save_checkpoint(run.run_dir / name, model=run.config.model, plan=run.plan, state_dict=net.state_dict(),
                    model_card=run.model_card, train_config=run.config.to_dict(), training=training)

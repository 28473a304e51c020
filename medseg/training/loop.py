"""The training loop for one fold: exact resume, AMP, deep supervision, validation, checkpoints.

Reproducibility contract: the batches of epoch ``e`` on rank ``r`` depend only on
``(seed, e, r)``, and ``last.pt`` holds every other piece of state (weights, optimiser, scheduler,
grad scaler, all RNG states) at the end of an epoch. A run killed mid-epoch and resumed repeats
that epoch from its start and ends with the same weights as an uninterrupted run (bit-identical
on CPU with ``--deterministic``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from medseg.data.plan import Plan
from medseg.errors import CheckpointError
from medseg.models.checkpoint import load_checkpoint, save_checkpoint
from medseg.models.registry import UNUSED_PARAMETERS, create_model
from medseg.training.config import OptimConfig, TrainConfig
from medseg.training.distributed import DistContext, barrier, mean_across_ranks, wrap_model
from medseg.training.logs import RunLog
from medseg.training.losses import SegmentationLoss
from medseg.training.rng import capture_rng_state, restore_rng_state, seed_everything

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Temporary files that :func:`medseg.io.atomic_path` leaves behind when a writer is killed mid-write.
_STALE_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.part(\.[^.]+)*$")


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
    init_from: Path | None = None


@dataclass(frozen=True)
class FoldResult:
    """Where a fold ended."""

    run_dir: Path
    epochs: int
    best_metric: float
    best_epoch: int
    last_metrics: Mapping[str, float]
    epochs_run: int = 0


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
    """Train (or resume, or extend) one fold; writes ``last.pt``, ``best.pt`` and logs to ``run.run_dir``.

    A fresh fold initialises its network from ``run.seed`` alone (whatever ran before in the
    process), so ``--fold all`` and a single ``--fold K`` start fold K identically. With ``resume``
    the state of ``last.pt`` (if any) is restored, and training continues up to
    ``config.loop.epochs`` (more than before: the run is extended).
    """
    import torch

    from medseg.runtime import autocast_dtype

    cb = callbacks or TrainCallbacks()
    cfg = run.config
    run.run_dir.mkdir(parents=True, exist_ok=True)
    if run.ctx.is_main:
        remove_stale_temporaries(run.run_dir)
    seed_everything(run.seed)
    net = create_model(cfg.model, run.plan).to(run.device)
    optimizer = make_optimizer(net.parameters(), cfg.optim)
    amp_dtype = autocast_dtype(run.device, cfg.loop.amp)
    scaler = torch.amp.GradScaler(run.device.type, enabled=amp_dtype == torch.float16)
    state = _resume_state(run, net, optimizer, scaler) if resume else _fresh_state()
    if state["epoch"] == 0 and run.init_from is not None:
        load_initial_weights(net, run.init_from)
    if state["epoch"] > cfg.loop.epochs:
        log.warning("%s already trained %d epochs, more than the %d asked for; nothing to do", run.run_dir,
                    state["epoch"], cfg.loop.epochs)
    log.info("fold %s: %s on %s, autocast %s, epochs %d..%d", run.run_dir.name, cfg.model.name, run.device,
             amp_dtype or "off", state["epoch"] + 1, cfg.loop.epochs)
    model = wrap_model(net, run.ctx, run.device, find_unused_parameters=cfg.model.name in UNUSED_PARAMETERS)
    loss_fn = SegmentationLoss()
    runlog = (RunLog(run.run_dir, history=state["history"], class_names=run.plan.labels.names)
              if run.ctx.is_main else None)
    last_metrics: dict[str, float] = {}
    first = state["epoch"]
    for epoch in range(first, cfg.loop.epochs):
        if cb.on_epoch_start:
            cb.on_epoch_start(epoch, cfg.loop.epochs)
        t0 = time.perf_counter()
        lr = lr_at(epoch, cfg.optim, cfg.loop.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_loss = _train_epoch(model, optimizer, scaler, loss_fn, run, epoch, amp_dtype, cb)
        train_loss = mean_across_ranks(train_loss, run.ctx, device=run.device)
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "lr": lr}
        due = (epoch + 1) % cfg.loop.val_every == 0 or epoch + 1 == cfg.loop.epochs
        if run.validator is not None and due and run.ctx.is_main:
            net.eval()
            last_metrics = run.validator.validate(net)
            row.update(last_metrics)
        row["seconds"] = round(time.perf_counter() - t0, 2)
        state["epoch"] = epoch + 1
        state["history"] = [*state["history"], row]
        if log.isEnabledFor(logging.DEBUG):
            log.debug("rank %d epoch %d weights %s", run.ctx.rank, epoch + 1, state_digest(net.state_dict()))
        metric = row.get("val_dice_mean")
        if metric is not None and metric > state["best_metric"]:
            state["best_metric"], state["best_epoch"] = float(metric), epoch + 1
            if run.ctx.is_main:
                _save(run, net, optimizer, scaler, state, "best.pt", amp_dtype)
        if run.ctx.is_main:
            _save(run, net, optimizer, scaler, state, "last.pt", amp_dtype)
            assert runlog is not None
            runlog.add(row)
        barrier(run.ctx)
        if cb.on_epoch_end:
            cb.on_epoch_end(row)
    if runlog is not None:
        runlog.close()
    return FoldResult(run.run_dir, state["epoch"], state["best_metric"], state["best_epoch"], last_metrics,
                      epochs_run=max(0, cfg.loop.epochs - first))


def _train_epoch(model: Any, optimizer: Any, scaler: Any, loss_fn: SegmentationLoss, run: FoldRun, epoch: int,
                 amp_dtype: Any, cb: TrainCallbacks) -> float:
    model.train()
    total, n = 0.0, run.config.loop.iterations_per_epoch
    batches = run.batches.epoch(epoch)
    for it in range(n):
        batch = next(batches)
        if it == 0 and log.isEnabledFor(logging.DEBUG):
            log.debug("rank %d epoch %d first batch %s", run.ctx.rank, epoch + 1, batch_digest(batch))
        value = train_step(model, batch, optimizer=optimizer, scaler=scaler, loss_fn=loss_fn, device=run.device,
                           amp_dtype=amp_dtype, grad_clip=run.config.optim.grad_clip)
        total += value
        log.debug("rank %d epoch %d iteration %d/%d loss %.5f", run.ctx.rank, epoch + 1, it + 1, n, value)
        if cb.on_iteration:
            cb.on_iteration(it + 1, n, value)
    return total / n


def train_step(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], *, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, loss_fn: SegmentationLoss, device: torch.device,
               amp_dtype: torch.dtype | None, grad_clip: float) -> float:
    """One optimiser step; returns the loss.

    The forward pass runs under ``torch.autocast`` with ``amp_dtype`` (``None``: full precision);
    the loss is computed in float32 on the outputs; ``scaler`` scales the loss for fp16 (a disabled
    scaler is a no-op); gradients are clipped to norm ``grad_clip`` before the step.

    Args:
        batch: ``{"image": [B, C, *patch] float32, "label": [B, 1, *patch] int64}``.
    """
    import torch

    x = batch["image"].to(device, non_blocking=True)
    y = batch["label"].to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        out = model(x)
    loss = loss_fn(out, y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def load_initial_weights(net: Any, path: Path) -> None:
    """Start from another checkpoint's weights (fine-tuning); shapes must match exactly.

    Raises:
        CheckpointError: the checkpoint's weights do not fit this network (other architecture,
            channel or class count); the message names the first mismatch.
    """
    source = load_checkpoint(path)
    own = net.state_dict()
    for key, value in own.items():
        theirs = source.state_dict.get(key)
        if theirs is None or tuple(theirs.shape) != tuple(value.shape):
            got = "missing" if theirs is None else f"shape {tuple(theirs.shape)}"
            raise CheckpointError(
                f"weights do not fit this model: {key} is {got} there, shape {tuple(value.shape)} here "
                "(different model, channels or classes); --init-from needs the same architecture", path=path)
    net.load_state_dict({k: source.state_dict[k].to(own[k].dtype) for k in own})
    log.info("initialised the network from %s", path)


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


def _save(run: FoldRun, net: Any, optimizer: Any, scaler: Any, state: Mapping[str, Any], name: str,
          amp_dtype: Any) -> None:
    training = {
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": capture_rng_state(),
        "epoch": state["epoch"],
        "best_metric": state["best_metric"],
        "best_epoch": state["best_epoch"],
        "history": state["history"],
        "seed": run.seed,
        "autocast": str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else "off",
    }
    save_checkpoint(run.run_dir / name, model=run.config.model, plan=run.plan, state_dict=net.state_dict(),
                    model_card=run.model_card, train_config=run.config.to_dict(), training=training)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (``.last.pt.<hex>.part.pt``...).

    They are never valid outputs: :func:`medseg.io.atomic_path` renames a temporary onto its target
    only once it is complete. Returns the files removed.
    """
    stale = [p for p in folder.iterdir() if p.is_file() and _STALE_TEMPORARY.match(p.name)]
    for p in stale:
        log.warning("removing %s, left by an interrupted write", p)
        p.unlink(missing_ok=True)
    return stale


def batch_digest(batch: Mapping[str, torch.Tensor]) -> str:
    """Short SHA-1 of a batch's image and label bytes (which patches a rank drew; debug logs)."""
    h = hashlib.sha1()
    for key in ("image", "label"):
        h.update(_bytes(batch[key]))
    return h.hexdigest()[:16]


def state_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Short SHA-1 of a state dict's tensors in key order (identical weights ⇔ identical digests)."""
    h = hashlib.sha1()
    for key in sorted(state_dict):
        h.update(key.encode())
        h.update(_bytes(state_dict[key]))
    return h.hexdigest()[:16]


def _bytes(tensor: torch.Tensor) -> bytes:
    import torch

    return bytes(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)

"""The training loop on the micro cache: exact resume, extension, best.pt, AMP, interrupted writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from medseg.models import ModelConfig, create_model
from medseg.models.checkpoint import load_checkpoint
from medseg.training.config import LoopConfig, OptimConfig, TrainConfig
from medseg.training.loop import FoldRun, remove_stale_temporaries, state_digest, train_fold, train_step
from medseg.training.losses import SegmentationLoss
from medseg.training.sources import CacheBatchSource

CONFIG = TrainConfig(
    model=ModelConfig(name="unet", max_filters=8),
    optim=OptimConfig(name="adamw", lr=0.003, weight_decay=0.0, schedule="cosine"),
    loop=LoopConfig(epochs=3, iterations_per_epoch=2, batch_size=2, val_every=1, num_workers=0, amp="off"),
)


class ScriptedValidator:
    """Returns the given mean Dice values in turn (the loop's best.pt bookkeeping is what is tested)."""

    def __init__(self, values: list[float]) -> None:
        self.values = iter(values)

    def validate(self, network: torch.nn.Module) -> dict[str, float]:
        assert not network.training
        return {"val_dice_mean": next(self.values)}


def fold_run(run_dir: Path, cache: Any, *, config: TrainConfig = CONFIG, validator: Any = None) -> FoldRun:
    batches = CacheBatchSource(cache=cache, case_ids=cache.case_ids(), config=config, seed=0)
    return FoldRun(run_dir=run_dir, plan=cache.plan, config=config, batches=batches, validator=validator,
                   device=torch.device("cpu"), seed=0)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return dict(load_checkpoint(path).state_dict)


def test_resume_after_an_epoch_ends_with_the_same_weights(micro_cache: Any, tmp_path: Path) -> None:
    train_fold(fold_run(tmp_path / "straight", micro_cache))
    short = replace(CONFIG, loop=replace(CONFIG.loop, epochs=1))
    train_fold(fold_run(tmp_path / "resumed", micro_cache, config=short))
    torch.manual_seed(1234)  # whatever happens in between must not matter
    result = train_fold(fold_run(tmp_path / "resumed", micro_cache), resume=True)
    assert result.epochs == 3 and result.epochs_run == 2
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "resumed" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    straight = load_checkpoint(tmp_path / "straight" / "last.pt").training
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt").training
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]


def test_a_fresh_fold_starts_from_the_seed_alone(micro_cache: Any, tmp_path: Path) -> None:
    one = replace(CONFIG, loop=replace(CONFIG.loop, epochs=1))
    train_fold(fold_run(tmp_path / "a", micro_cache, config=one))
    torch.manual_seed(99)
    torch.rand(1000)
    train_fold(fold_run(tmp_path / "b", micro_cache, config=one))
    assert state_digest(weights(tmp_path / "a" / "last.pt")) == state_digest(weights(tmp_path / "b" / "last.pt"))


def test_best_checkpoint_follows_mean_validation_dice(micro_cache: Any, tmp_path: Path) -> None:
    result = train_fold(fold_run(tmp_path, micro_cache, validator=ScriptedValidator([0.5, 0.7, 0.6])))
    assert (result.best_epoch, result.best_metric, result.epochs) == (2, 0.7, 3)
    best = load_checkpoint(tmp_path / "best.pt").training
    last = load_checkpoint(tmp_path / "last.pt").training
    assert (best["epoch"], best["best_metric"], last["epoch"], last["best_epoch"]) == (2, 0.7, 3, 2)
    assert [r["val_dice_mean"] for r in last["history"]] == [0.5, 0.7, 0.6]


def test_extending_a_finished_fold_keeps_its_history(micro_cache: Any, tmp_path: Path) -> None:
    train_fold(fold_run(tmp_path, micro_cache))
    before = load_checkpoint(tmp_path / "last.pt").training["history"]
    longer = replace(CONFIG, loop=replace(CONFIG.loop, epochs=5))
    result = train_fold(fold_run(tmp_path, micro_cache, config=longer), resume=True)
    history = load_checkpoint(tmp_path / "last.pt").training["history"]
    assert result.epochs_run == 2 and [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert history[:3] == before
    again = train_fold(fold_run(tmp_path, micro_cache, config=longer), resume=True)
    assert again.epochs_run == 0 and again.epochs == 5


def test_resume_without_a_checkpoint_starts_from_scratch(micro_cache: Any, tmp_path: Path) -> None:
    one = replace(CONFIG, loop=replace(CONFIG.loop, epochs=1))
    train_fold(fold_run(tmp_path / "fresh", micro_cache, config=one))
    result = train_fold(fold_run(tmp_path / "resumed", micro_cache, config=one), resume=True)
    assert result.epochs_run == 1
    assert torch.equal(torch.cat([v.flatten().float() for v in weights(tmp_path / "fresh" / "last.pt").values()]),
                       torch.cat([v.flatten().float() for v in weights(tmp_path / "resumed" / "last.pt").values()]))


def test_leftovers_of_an_interrupted_write_are_removed_on_resume(micro_cache: Any, tmp_path: Path) -> None:
    one = replace(CONFIG, loop=replace(CONFIG.loop, epochs=1))
    train_fold(fold_run(tmp_path, micro_cache, config=one))
    partial = tmp_path / ".last.pt.0123456789ab.part.pt"
    partial.write_bytes((tmp_path / "last.pt").read_bytes()[:5000])
    keep = tmp_path / "notes.part.pt"
    keep.write_bytes(b"not ours")
    two = replace(CONFIG, loop=replace(CONFIG.loop, epochs=2))
    train_fold(fold_run(tmp_path, micro_cache, config=two), resume=True)
    assert not partial.exists() and keep.exists()
    assert remove_stale_temporaries(tmp_path) == []
    assert load_checkpoint(tmp_path / "last.pt").training["epoch"] == 2


@pytest.mark.parametrize(("amp", "recorded"), [("bf16", "bfloat16"), ("off", "off")])
def test_amp_choice_is_recorded(micro_cache: Any, tmp_path: Path, amp: str, recorded: str) -> None:
    one = replace(CONFIG, loop=replace(CONFIG.loop, epochs=1, iterations_per_epoch=1, amp=amp))
    train_fold(fold_run(tmp_path, micro_cache, config=one))
    assert load_checkpoint(tmp_path / "last.pt").training["autocast"] == recorded


@contextmanager
def conv_output_dtypes(net: torch.nn.Module) -> Iterator[set[torch.dtype]]:
    """The dtypes of every Conv3d output inside the block."""
    seen: set[torch.dtype] = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    yield seen
    for h in hooks:
        h.remove()


@pytest.mark.parametrize(("amp_dtype", "expected"), [(torch.bfloat16, torch.bfloat16), (None, torch.float32)])
def test_train_step_runs_the_forward_pass_in_the_autocast_dtype(micro_cache: Any, amp_dtype: Any,
                                                                expected: torch.dtype) -> None:
    net = create_model(ModelConfig(name="unet", max_filters=8), micro_cache.plan).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    batch = next(CacheBatchSource(cache=micro_cache, case_ids=micro_cache.case_ids(), config=CONFIG, seed=0).epoch(0))
    before = [p.detach().clone() for p in net.parameters()]
    with conv_output_dtypes(net) as seen:
        loss = train_step(net, batch, optimizer=optimizer, scaler=torch.amp.GradScaler("cpu", enabled=False),
                          loss_fn=SegmentationLoss(), device=torch.device("cpu"), amp_dtype=amp_dtype, grad_clip=1.0)
    assert seen == {expected}
    assert loss > 0 and all(p.dtype == torch.float32 for p in net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))

"""Batch sources: the patches of an epoch depend only on (seed, epoch, rank), so a restarted epoch
replays exactly, and DDP ranks draw different patches."""

from __future__ import annotations

from itertools import islice
from typing import Any

import torch

from medseg.training.config import LoopConfig, TrainConfig
from medseg.training.loop import batch_digest
from medseg.training.sources import CacheBatchSource

CONFIG = TrainConfig(loop=LoopConfig(batch_size=2, num_workers=0, foreground_fraction=0.5))


def digests(cache: Any, *, seed: int, epoch: int, rank: int, world_size: int = 2, n: int = 3,
            config: TrainConfig = CONFIG) -> list[str]:
    source = CacheBatchSource(cache=cache, case_ids=cache.case_ids(), config=config, seed=seed, rank=rank,
                              world_size=world_size)
    return [batch_digest(b) for b in islice(source.epoch(epoch), n)]


def test_batches_have_the_loop_layout(micro_cache: Any) -> None:
    source = CacheBatchSource(cache=micro_cache, case_ids=micro_cache.case_ids(), config=CONFIG, seed=0)
    batch = next(source.epoch(0))
    assert batch["image"].shape == (2, 1, *micro_cache.plan.patch_size) and batch["image"].dtype == torch.float32
    assert batch["label"].shape == (2, 1, *micro_cache.plan.patch_size) and batch["label"].dtype == torch.int64
    assert set(batch["label"].unique().tolist()) <= {0, 1, 2}


def test_an_epoch_replays_exactly(micro_cache: Any) -> None:
    assert digests(micro_cache, seed=3, epoch=4, rank=1) == digests(micro_cache, seed=3, epoch=4, rank=1)


def test_ranks_epochs_and_seeds_draw_different_patches(micro_cache: Any) -> None:
    base = digests(micro_cache, seed=3, epoch=4, rank=0)
    others = [digests(micro_cache, seed=3, epoch=4, rank=1), digests(micro_cache, seed=3, epoch=5, rank=0),
              digests(micro_cache, seed=4, epoch=4, rank=0)]
    assert len(set(base)) == 3  # the batches within an epoch differ too
    for other in others:
        assert not set(base) & set(other)


def test_worker_processes_draw_the_same_stream_every_time(micro_cache: Any) -> None:
    config = TrainConfig(loop=LoopConfig(batch_size=2, num_workers=2, foreground_fraction=0.5))
    first = digests(micro_cache, seed=1, epoch=0, rank=0, n=4, config=config)
    assert first == digests(micro_cache, seed=1, epoch=0, rank=0, n=4, config=config)
    assert len(set(first)) == 4

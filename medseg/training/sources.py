"""Batch sources for the training loop: patches from the preprocessed cache, seeded per epoch.

Each epoch gets a fresh loader seeded with ``(seed, epoch)``; the loader derives per-rank and
per-worker streams from it. Restarting an epoch therefore replays exactly the same batches,
which is what makes ``--resume`` exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medseg.training.config import TrainConfig
from medseg.training.rng import derive_seed

if TYPE_CHECKING:
    import torch


@dataclass
class CacheBatchSource:
    """Training patches of ``case_ids`` from a :class:`~medseg.data.cache.PreprocessedCache`."""

    cache: Any
    case_ids: Sequence[str]
    config: TrainConfig
    seed: int
    rank: int = 0
    world_size: int = 1

    def epoch(self, epoch: int) -> Iterator[Mapping[str, torch.Tensor]]:
        from medseg.data.loader import make_patch_loader
        from medseg.transforms.augment import AugmentConfig

        loop = self.config.loop
        loader = make_patch_loader(
            self.cache, list(self.case_ids), patch_size=self.cache.plan.patch_size, batch_size=loop.batch_size,
            num_workers=loop.num_workers, seed=derive_seed(self.seed, epoch), rank=self.rank,
            world_size=self.world_size, augment=AugmentConfig.from_dict(self.config.augment),
            foreground_fraction=loop.foreground_fraction,
        )
        return iter(loader)

"""The patch loader: batch layout, epoch length, reproducible and rank/epoch-dependent randomness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medseg.data.cache import PreprocessedCache
from medseg.data.dataset import load_dataset
from medseg.data.loader import make_patch_loader
from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.transforms.augment import AugmentConfig

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 3, strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), filters=(8, 16, 32))


@pytest.fixture(scope="module")
def cache(phantom2ch_root: Path, tmp_path_factory: pytest.TempPathFactory) -> PreprocessedCache:
    ds = load_dataset(phantom2ch_root)
    plan = Plan(target_spacing_mm=(1.0, 1.0, 2.5), patch_size=(16, 16, 8), topology=TOPO, labels=ds.labels,
                channels=(ChannelNorm("T1"), ChannelNorm("T2")))
    c = PreprocessedCache(tmp_path_factory.mktemp("cache"), plan)
    c.build(ds)
    return c


def batches(cache: PreprocessedCache, **kw) -> list[dict[str, torch.Tensor]]:  # type: ignore[no-untyped-def]
    options = {"patch_size": (16, 16, 8), "batch_size": 3, "num_workers": 0, "batches_per_epoch": 4, "seed": 5}
    options.update(kw)
    return list(make_patch_loader(cache, cache.case_ids(), **options))


def stacked(bs: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    return torch.cat([b["image"] for b in bs])


def test_batch_layout_and_epoch_length(cache: PreprocessedCache) -> None:
    bs = batches(cache, num_workers=2, batches_per_epoch=5)
    assert len(bs) == 5
    for b in bs:
        assert b["image"].shape == (3, 2, 16, 16, 8) and b["image"].dtype == torch.float32
        assert b["label"].shape == (3, 1, 16, 16, 8) and b["label"].dtype == torch.int64
        assert set(torch.unique(b["label"]).tolist()) <= {0, 1, 2, 3}
        assert torch.isfinite(b["image"]).all()


def test_reproducible_and_different_per_rank_and_epoch(cache: PreprocessedCache) -> None:
    first = batches(cache)
    assert torch.equal(stacked(first), stacked(batches(cache)))
    assert not torch.equal(stacked(first), stacked(batches(cache, rank=1, world_size=2)))
    assert not torch.equal(stacked(first), stacked(batches(cache, seed=6)))
    loader = make_patch_loader(cache, cache.case_ids(), patch_size=(16, 16, 8), batch_size=3, num_workers=0,
                               batches_per_epoch=2, seed=5)
    epoch1, epoch2 = stacked(list(loader)), stacked(list(loader))
    assert not torch.equal(epoch1, epoch2)


def test_two_workers_draw_different_patches(cache: PreprocessedCache) -> None:
    bs = batches(cache, num_workers=2, batches_per_epoch=2, augment=AugmentConfig.none())
    a, b = (x["image"].numpy() for x in bs)
    assert not np.array_equal(a, b), "each worker has its own random stream"
    again = batches(cache, num_workers=2, batches_per_epoch=2, augment=AugmentConfig.none())
    assert torch.equal(stacked(bs), stacked(again))

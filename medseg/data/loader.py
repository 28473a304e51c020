"""Training patch loader: cache → sampler → augmentation → batches, in DataLoader worker processes.

Randomness: every worker of every rank draws from its own ``numpy`` generator seeded with
``SeedSequence([seed, rank, worker_id, torch worker seed, pass])``. The DataLoader gets a torch
generator seeded from ``seed`` and ``rank``, so runs are reproducible, ranks and workers see
different patches, and every pass over the loader (epoch) draws new ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from torch.utils.data import IterableDataset

from medseg.data.cache import PreprocessedCache
from medseg.data.sampling import PatchSampler
from medseg.transforms.augment import AugmentConfig, Augmenter
from medseg.transforms.warp import warp_patch


def augmented_patch(
    sampler: PatchSampler, augmenter: Augmenter | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any]]:
    """Draw one patch location and its augmentation; warp it straight from the memory-mapped case
    with one ``grid_sample`` (image) and one index gather (label), or cut and mirror it when no
    spatial transform fired; then apply the intensity transforms.

    Returns:
        ``image [c, *patch]`` float32 and ``label [*patch]``.
    """
    loc = sampler.next_location()
    size = sampler.patch_size
    if augmenter is None:
        return sampler.extract(loc.case_id, loc.start, size)
    draw = augmenter.draw_spatial()
    if draw.matrix is None:
        image, label = sampler.extract(loc.case_id, loc.start, size)
        flip = tuple(slice(None, None, -1) if f else slice(None) for f in draw.flips)
        if any(draw.flips):
            image, label = np.ascontiguousarray(image[(Ellipsis,) + flip]), np.ascontiguousarray(label[flip])
        return augmenter.intensity(image), label
    centre = tuple(float(s + (p - 1) / 2) for s, p in zip(loc.start, size, strict=True))
    case_image, case_label = sampler.case_arrays(loc.case_id)
    warped, warped_label = warp_patch(case_image, case_label, draw.matrix, centre, size,
                                      displacement=draw.displacement)
    assert warped_label is not None  # a label was given
    return augmenter.intensity(warped), warped_label


class PatchDataset(IterableDataset):
    """A torch ``IterableDataset`` of ``{"image": [c, *patch] float32, "label": [1, *patch] uint8/int16}``.

    Args:
        cache, case_ids, patch_size, foreground_fraction: as for :class:`PatchSampler`.
        augment: augmentation settings (``AugmentConfig.none()`` for none).
        seed, rank: see the module docstring.
        samples_per_pass: patches yielded per pass over the dataset, over all workers (each worker
            yields whole batches of ``batch_size``); ``None``: endless.
        batch_size: the DataLoader's batch size (to split ``samples_per_pass`` into whole batches).
    """

    def __init__(
        self,
        cache: PreprocessedCache,
        case_ids: Sequence[str],
        *,
        patch_size: Sequence[int],
        foreground_fraction: float = 0.33,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        rank: int = 0,
        samples_per_pass: int | None = None,
        batch_size: int = 1,
    ) -> None:
        super().__init__()
        self.cache = cache
        self.case_ids = list(case_ids)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.foreground_fraction = foreground_fraction
        self.augment = augment if augment is not None else AugmentConfig()
        self.seed, self.rank = int(seed), int(rank)
        self.samples_per_pass = samples_per_pass
        self.batch_size = int(batch_size)
        self._passes = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import torch

        info = torch.utils.data.get_worker_info()
        worker, n_workers, torch_seed = (0, 1, 0) if info is None else (info.id, info.num_workers, info.seed)
        self._passes += 1
        rng = np.random.default_rng(np.random.SeedSequence(
            [self.seed, self.rank, worker, torch_seed % 2**63, self._passes]))
        sampler = PatchSampler(self.cache, self.case_ids, patch_size=self.patch_size,
                               foreground_fraction=self.foreground_fraction, rng=rng)
        augmenter = None
        if self.augment != AugmentConfig.none():
            plan = self.cache.plan
            augmenter = Augmenter(self.augment, patch_size=self.patch_size, spacing_mm=plan.target_spacing_mm, rng=rng,
                                  anisotropy_threshold=plan.anisotropy_threshold)
        count = self._count_for(worker, n_workers)
        n = 0
        while count is None or n < count:
            image, label = augmented_patch(sampler, augmenter)
            yield {"image": torch.from_numpy(image), "label": torch.from_numpy(label[None])}
            n += 1

    def _count_for(self, worker: int, n_workers: int) -> int | None:
        if self.samples_per_pass is None:
            return None
        batches = -(-self.samples_per_pass // self.batch_size)
        mine = batches // n_workers + (1 if worker < batches % n_workers else 0)
        return mine * self.batch_size


def collate_patches(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into ``{"image": float32 [B, c, *patch], "label": int64 [B, 1, *patch]}``."""
    import torch

    return {
        "image": torch.stack([s["image"] for s in samples]),
        "label": torch.stack([s["label"] for s in samples]).to(torch.int64),
    }


def make_patch_loader(
    cache: PreprocessedCache,
    case_ids: Sequence[str],
    *,
    patch_size: Sequence[int],
    batch_size: int,
    num_workers: int = 2,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    augment: AugmentConfig | None = None,
    foreground_fraction: float = 0.33,
    batches_per_epoch: int | None = None,
    pin_memory: bool = False,
) -> Any:
    """A torch ``DataLoader`` of training batches (see :func:`collate_patches` for the layout).

    Args:
        cache: a built preprocessed cache.
        case_ids: training cases.
        patch_size: patch ``(x, y, z)``.
        batch_size: patches per batch (per rank).
        num_workers: worker processes (0: load in the calling process).
        seed: base seed; with ``rank`` it fixes every patch drawn.
        rank, world_size: the DDP rank; each rank draws different patches (``world_size`` is
            accepted for symmetry with samplers and not needed otherwise).
        augment: augmentation settings (default: nnU-Net's; ``AugmentConfig.none()`` for none).
        foreground_fraction: share of patches forced to contain foreground.
        batches_per_epoch: batches per pass over the loader; ``None``: endless.
        pin_memory: pin batches for faster host → GPU copies.
    """
    import torch
    from torch.utils.data import DataLoader

    dataset = PatchDataset(
        cache, case_ids, patch_size=patch_size, foreground_fraction=foreground_fraction, augment=augment,
        seed=seed, rank=rank, batch_size=batch_size,
        samples_per_pass=None if batches_per_epoch is None else batches_per_epoch * batch_size,
    )
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_patches,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        generator=generator,
    )

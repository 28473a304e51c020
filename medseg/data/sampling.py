"""Patch sampling from the preprocessed cache, with foreground oversampling and class balance.

Every ``1 / foreground_fraction``-th patch (exactly: patch ``n`` is forced when
``floor((n + 1) f) > floor(n f)``, so any run of patches holds at least the configured share) is
*forced* to contain foreground: a foreground class is drawn uniformly among the classes present in
the sampler's cases (class balance: a rare class is centred on as often as a common one), then a
case containing it, then one of its stored voxel locations; the patch is placed so that voxel lies
in the middle half of the patch (a random offset, not always the centre). Other patches come from
a uniformly drawn case at a uniformly drawn position. Where a case is smaller than the patch, the
patch is padded with 0 (image and label).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.data.cache import CachedCase, PreprocessedCache
from medseg.errors import ConfigError, DatasetError

Triple = tuple[int, int, int]

#: Cases whose class locations a sampler keeps in memory (loaded again from the cache when evicted).
LOCATION_CACHE_CASES = 64


@dataclass(frozen=True)
class PatchLocation:
    """Where a patch comes from.

    Attributes:
        case_id: the case.
        start: voxel index of the patch's first corner on the network grid (may be negative or
            reach past the case where it is padded).
        forced: whether the patch was forced to contain ``centre_class``.
        centre_class: the foreground class it was placed on (``None`` for random patches).
    """

    case_id: str
    start: Triple
    forced: bool
    centre_class: int | None = None


class PatchSampler:
    """Draws training patches ``(image [c, *patch] float32, label [*patch])`` from a cache.

    Args:
        cache: a built :class:`~medseg.data.cache.PreprocessedCache`.
        case_ids: the cases to draw from (e.g. one fold's training cases).
        patch_size: patch ``(x, y, z)`` in voxels.
        foreground_fraction: share of patches forced to contain foreground (0..1).
        rng: the random generator (one per worker and rank; see :mod:`medseg.data.loader`).
    """

    def __init__(
        self,
        cache: PreprocessedCache,
        case_ids: Sequence[str],
        *,
        patch_size: Sequence[int],
        foreground_fraction: float = 0.33,
        rng: np.random.Generator,
    ) -> None:
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ConfigError(f"foreground_fraction must lie in 0..1, got {foreground_fraction}")
        if not case_ids:
            raise ConfigError("the patch sampler needs at least one case")
        self.cache = cache
        self.case_ids = list(case_ids)
        self.patch_size: Triple = (int(patch_size[0]), int(patch_size[1]), int(patch_size[2]))
        self.foreground_fraction = float(foreground_fraction)
        self.rng = rng
        self._infos: dict[str, CachedCase] = {c: cache.info(c) for c in self.case_ids}
        self._cases_with: dict[int, list[str]] = {}
        for cid, info in self._infos.items():
            for value, count in info.class_voxels.items():
                if value != 0 and count > 0:
                    self._cases_with.setdefault(value, []).append(cid)
        self._classes = sorted(self._cases_with)
        self._locations: dict[str, dict[int, npt.NDArray[np.int32]]] = {}
        self._arrays: dict[str, tuple[Any, Any]] = {}
        self._count = 0

    @property
    def classes(self) -> list[int]:
        """Foreground class values present in the sampler's cases."""
        return list(self._classes)

    def __iter__(self) -> Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[Any]]]:
        while True:
            yield self.sample()

    def sample(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any]]:
        """One patch: ``image [c, *patch_size]`` float32 and ``label [*patch_size]``."""
        loc = self.next_location()
        return self.extract(loc.case_id, loc.start, self.patch_size)

    def next_location(self) -> PatchLocation:
        """Draw the next patch location (forced-foreground schedule, class balance)."""
        n, f = self._count, self.foreground_fraction
        self._count += 1
        forced = math.floor((n + 1) * f) > math.floor(n * f)
        if forced and self._classes:
            return self._foreground_location()
        cid = self.case_ids[int(self.rng.integers(len(self.case_ids)))]
        shape = self._infos[cid].shape
        start = tuple(self._random_start(s, p) for s, p in zip(shape, self.patch_size, strict=True))
        return PatchLocation(cid, start, forced=False)  # type: ignore[arg-type]

    def extract(
        self, case_id: str, start: Sequence[int], size: Sequence[int]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any]]:
        """Copy the box ``[start, start + size)`` of a case, zero-padded outside the case.

        Returns:
            ``image [c, *size]`` float32 and ``label [*size]`` (the cache's label dtype).
        """
        image, label = self.case_arrays(case_id)
        return crop_padded(image, start, size), crop_padded(label, start, size)

    def case_arrays(self, case_id: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any]]:
        """The whole memory-mapped ``image [c, x, y, z]`` and ``label [x, y, z]`` of a case."""
        if case_id not in self._arrays:
            image, label, _ = self.cache.get(case_id)
            if label is None:
                raise DatasetError(f"case {case_id!r} has no label map in the cache; sample labelled cases only")
            self._arrays[case_id] = (image, label)
        return self._arrays[case_id]

    # --- internals --------------------------------------------------------------------------------
    def _foreground_location(self) -> PatchLocation:
        value = self._classes[int(self.rng.integers(len(self._classes)))]
        candidates = self._cases_with[value]
        cid = candidates[int(self.rng.integers(len(candidates)))]
        locs = self._class_locations(cid)[value]
        voxel = locs[int(self.rng.integers(len(locs)))]
        shape = self._infos[cid].shape
        start = []
        for v, s, p in zip(voxel, shape, self.patch_size, strict=True):
            offset = int(self.rng.integers(p // 4, p - p // 4)) if p > 1 else 0
            lo, hi = min(0, s - p), max(0, s - p)
            start.append(int(np.clip(int(v) - offset, lo, hi)))
        return PatchLocation(cid, (start[0], start[1], start[2]), forced=True, centre_class=value)

    def _class_locations(self, case_id: str) -> dict[int, npt.NDArray[np.int32]]:
        """Stored class locations of a case; the most recent ``LOCATION_CACHE_CASES`` are kept in memory."""
        if case_id not in self._locations:
            if len(self._locations) >= LOCATION_CACHE_CASES:
                self._locations.pop(next(iter(self._locations)))
            self._locations[case_id] = self._infos[case_id].class_locations()
        return self._locations[case_id]

    def _random_start(self, size: int, patch: int) -> int:
        lo, hi = min(0, size - patch), max(0, size - patch)
        return int(self.rng.integers(lo, hi + 1))


def crop_padded(array: npt.NDArray[Any], start: Sequence[int], size: Sequence[int]) -> npt.NDArray[Any]:
    """Copy ``array[..., start:start+size]`` (last three axes), zero-filled where the box leaves the array."""
    spatial = array.shape[-3:]
    out = np.zeros((*array.shape[:-3], *size), dtype=array.dtype)
    src, dst = [], []
    for st, sz, n in zip(start, size, spatial, strict=True):
        lo, hi = max(st, 0), min(st + sz, n)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - st, hi - st))
    out[(Ellipsis,) + tuple(dst)] = array[(Ellipsis,) + tuple(src)]
    return out

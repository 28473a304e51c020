"""Connected-component cleanup of predicted label maps.

* ``largest_component``: classes (names) that are single objects in the anatomy (e.g. liver,
  brainstem): only their largest 26-connected component is kept.
* ``min_component_mm3``: components smaller than this volume are removed (any class).

Removed voxels become background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medseg.errors import ConfigError

_FULL = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class PostprocessConfig:
    """Which cleanup to apply (stored in a checkpoint's model card)."""

    largest_component: tuple[str, ...] = ()
    min_component_mm3: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostprocessConfig:
        unknown = set(data) - {"largest_component", "min_component_mm3"}
        if unknown:
            raise ConfigError(f"unknown postprocessing key(s) {sorted(unknown)}")
        return cls(tuple(data.get("largest_component", ())), float(data.get("min_component_mm3", 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"largest_component": list(self.largest_component), "min_component_mm3": self.min_component_mm3}


def postprocess_labels(labels: npt.NDArray[Any], config: PostprocessConfig, *, voxel_volume_mm3: float,
                       names: Mapping[int, str]) -> npt.NDArray[Any]:
    """Apply ``config`` to an integer label map ``[i, j, k]`` (returns a new array if anything changes)."""
    if not config.largest_component and config.min_component_mm3 <= 0:
        return labels
    unknown = set(config.largest_component) - set(names.values())
    if unknown:
        raise ConfigError(f"postprocessing names unknown class(es) {sorted(unknown)}; known: {sorted(names.values())}")
    out = labels.copy()
    min_voxels = config.min_component_mm3 / voxel_volume_mm3 if config.min_component_mm3 > 0 else 0
    for value, name in names.items():
        mask = out == value
        if not mask.any():
            continue
        comps, n = ndimage.label(mask, structure=_FULL)
        if n <= 1 and min_voxels == 0:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        keep = np.ones(n, dtype=bool)
        if name in config.largest_component:
            keep[:] = False
            keep[int(np.argmax(sizes))] = True
        if min_voxels:
            keep &= sizes >= min_voxels
        drop = ~np.concatenate([[True], keep])[comps] & mask
        out[drop] = 0
    return out

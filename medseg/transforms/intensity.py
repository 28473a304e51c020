"""Intensity normalisation of one channel, as a plan's :class:`~medseg.data.plan.ChannelNorm` says."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.data.plan import ChannelNorm


def normalize_channel(
    array: npt.NDArray[Any], norm: ChannelNorm, *, mask: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float32]:
    """Normalise one channel ``[i, j, k]``; returns float32.

    Args:
        array: intensities in the image's units (e.g. HU for CT).
        norm: the scheme and, for ``"ct"``, the dataset statistics.
        mask: voxels that count as foreground for per-case statistics (``"zscore"``); voxels
            outside it are set to 0 afterwards. ``None``: all voxels.
    """
    if norm.scheme == "none":
        return np.asarray(array, dtype=np.float32)
    x = np.array(array, dtype=np.float32)  # the one full-size copy: every step below works in place
    if norm.scheme == "ct":
        assert norm.clip_low is not None and norm.clip_high is not None  # checked by ChannelNorm
        np.clip(x, norm.clip_low, norm.clip_high, out=x)
        x -= np.float32(norm.mean)
        x /= np.float32(norm.std)
        return x
    values = x[mask] if mask is not None and mask.any() else x
    if norm.scheme == "percentile":
        lo, hi = np.percentile(values, [norm.percentile_low, norm.percentile_high])  # type: ignore[list-item]
        del values
        x -= np.float32(lo)
        x /= np.float32(max(hi - lo, 1e-8))
        return np.clip(x, 0.0, 1.0, out=x)
    mean = float(values.mean(dtype=np.float64))
    std = float(values.std(dtype=np.float64))
    del values
    x -= np.float32(mean)
    x /= np.float32(max(std, 1e-8))
    if mask is not None and mask.any():
        x[~mask] = 0.0
    return x

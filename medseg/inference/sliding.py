"""Gaussian-weighted sliding-window inference over a preprocessed volume (a thin MONAI wrapper).

Shared by training's validation and by :class:`~medseg.inference.predictor.Predictor`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Spatial axes (0 = x, 1 = y, 2 = z of the network grid) mirrored by test-time augmentation unless
#: the checkpoint says which its training mirrored (:meth:`medseg.models.checkpoint.Checkpoint.mirror_axes`).
MIRROR_AXES = (0, 1, 2)


def mirror_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """All subsets of ``axes`` (the identity first): 8 flips for 3 axes, 2 for one."""
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


def window_count(shape: Sequence[int], patch_size: Sequence[int], overlap: float) -> int:
    """Number of windows MONAI's ``sliding_window_inference`` visits over a ``shape`` volume."""
    total = 1
    for size, roi in zip(shape, patch_size, strict=True):
        size = max(int(size), int(roi))
        if size == roi:
            continue
        interval = max(int(roi * (1 - overlap)), 1)
        total *= math.ceil((size - roi) / interval) + 1
    return total


class WindowCounter:
    """Reports ``progress(done, total)`` windows; shared by all slabs of one volume."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    def wrap(self, predict: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        """``predict`` that counts the windows of every batch it is given."""

        def counted(x: torch.Tensor) -> torch.Tensor:
            self.advance(x.shape[0])
            return predict(x)

        return counted


def windowed_predictor(network: torch.nn.Module, *, amp_dtype: torch.dtype | None, tta: bool,
                       mirror_axes: Sequence[int] = MIRROR_AXES):
    """A function ``[B, C, *patch] → [B, K, *patch]`` float32 logits; with ``tta``, the mean over
    every combination of flips along ``mirror_axes`` (spatial, 0 = x)."""
    import torch

    flips = mirror_combinations([a + 2 for a in mirror_axes]) if tta else [()]

    def predict(x: torch.Tensor) -> torch.Tensor:
        total = None
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            for axes in flips:
                inp = torch.flip(x, axes) if axes else x
                out = network(inp).float()
                out = torch.flip(out, axes) if axes else out
                total = out if total is None else total + out
        assert total is not None
        return total / len(flips)

    return predict


def sliding_window_logits(
    network: torch.nn.Module,
    image: torch.Tensor,
    *,
    patch_size: Sequence[int],
    overlap: float = 0.5,
    sw_batch_size: int = 1,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    tta: bool = False,
    mirror_axes: Sequence[int] = MIRROR_AXES,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Logits for a whole preprocessed volume.

    Args:
        network: in eval mode; maps ``[B, C, *patch]`` to ``[B, K, *patch]``.
        image: ``[C, X, Y, Z]`` float32 on the network grid (any device).
        patch_size: window size ``(px, py, pz)`` in voxels; smaller volumes are padded.
        overlap: fraction of the window shared with its neighbour (0.5 = nnU-Net's default).
        sw_batch_size: windows per forward pass.
        device: where the network runs; stitching happens there too.
        amp_dtype: autocast dtype (``None``: float32).
        tta: average over the mirror flips along ``mirror_axes`` (0 = x; 8 flips for all three).
        mirror_axes: the axes the network was trained to be mirror-invariant on.
        progress: called as ``progress(windows_done, windows_total)``.

    Returns:
        ``[K, X, Y, Z]`` float32 logits on ``device``.
    """
    import torch
    from monai.inferers import sliding_window_inference

    counter = WindowCounter(window_count(image.shape[1:], patch_size, overlap), progress)
    predictor = counter.wrap(windowed_predictor(network, amp_dtype=amp_dtype, tta=tta, mirror_axes=mirror_axes))
    with torch.inference_mode():
        out = sliding_window_inference(
            image[None].to(device),
            roi_size=tuple(int(p) for p in patch_size),
            sw_batch_size=sw_batch_size,
            predictor=predictor,
            overlap=overlap,
            mode="gaussian",
            sigma_scale=0.125,
            padding_mode="constant",
            cval=0.0,
            sw_device=device,
            device=device,
        )
    return out[0]  # type: ignore[index]

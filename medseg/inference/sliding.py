"""Gaussian-weighted sliding-window inference over a preprocessed volume (a thin MONAI wrapper).

Shared by training's validation and by :class:`~medseg.inference.predictor.Predictor`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Spatial axes mirrored by test-time augmentation (of a ``[B, C, X, Y, Z]`` tensor).
MIRROR_AXES = (2, 3, 4)


def mirror_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """All subsets of ``axes`` (the identity first): 8 flips for 3 axes."""
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


def windowed_predictor(network: torch.nn.Module, *, amp_dtype: torch.dtype | None, tta: bool):
    """A function ``[B, C, *patch] → [B, K, *patch]`` float32 logits, with optional mirroring TTA."""
    import torch

    flips = mirror_combinations(MIRROR_AXES) if tta else [()]

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
        tta: average over the 8 mirror flips.

    Returns:
        ``[K, X, Y, Z]`` float32 logits on ``device``.
    """
    import torch
    from monai.inferers import sliding_window_inference

    predictor = windowed_predictor(network, amp_dtype=amp_dtype, tta=tta)
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

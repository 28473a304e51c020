"""Dice + cross-entropy, with nnU-Net's deep-supervision weighting."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def deep_supervision_weights(n_outputs: int) -> list[float]:
    """nnU-Net's weights for the main output and ``n_outputs - 1`` auxiliary heads: 1/2^i,
    normalised to sum to 1 (main output first)."""
    raw = [1.0 / 2**i for i in range(n_outputs)]
    total = sum(raw)
    return [w / total for w in raw]


class SegmentationLoss:
    """Soft Dice (foreground classes, batch-wise) + cross-entropy, MONAI's ``DiceCELoss``.

    Call with logits ``[B, K, *S]`` (or ``[B, 1 + heads, K, *S]`` from a deep-supervised DynUNet in
    training mode) and integer targets ``[B, 1, *S]``.
    """

    def __init__(self) -> None:
        from monai.losses import DiceCELoss

        self._loss = DiceCELoss(
            include_background=False, to_onehot_y=True, softmax=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5
        )

    def __call__(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if outputs.dim() == target.dim() + 1:  # deep supervision: [B, heads, K, *S]
            heads = outputs.unbind(dim=1)
            weights = deep_supervision_weights(len(heads))
            return sum(w * self._loss(h.float(), target) for w, h in zip(weights, heads, strict=True))
        return self._loss(outputs.float(), target)

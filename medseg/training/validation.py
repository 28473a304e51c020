"""Validation during training: full-volume sliding-window inference + per-class Dice and HD95.

Two validators, both using the inference code (no copy of it):

* :class:`CachedValidator` scores preprocessed validation cases on the network grid (fast, run
  every few epochs, like nnU-Net's online validation).
* :class:`ScanValidator` segments real scans with :class:`~medseg.inference.predictor.Predictor`
  and scores them on their own grid (used for label-maps-only training and final evaluation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from medseg.data.plan import Plan
from medseg.io.volume import Volume

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def summarise(per_case: Sequence[Sequence[Any]], names: Mapping[int, str]) -> dict[str, float]:
    """Mean Dice / HD95 per class over cases → ``val_dice_<name>``, ``val_hd95_<name>``, ``val_dice_mean``.

    ``per_case``: for each case, the ``ClassMetrics`` list from :func:`medseg.metrics.evaluate_case`.
    Missing HD95 values (an empty mask) are left out of that class's mean.
    """
    out: dict[str, float] = {}
    dice_means = []
    for value, name in names.items():
        rows = [m for case in per_case for m in case if m.label == value]
        dice = [m.dice for m in rows if m.dice is not None]
        hd95 = [m.hd95 for m in rows if m.hd95 is not None]
        if dice:
            out[f"val_dice_{name}"] = float(np.mean(dice))
            dice_means.append(out[f"val_dice_{name}"])
        if hd95:
            out[f"val_hd95_{name}"] = float(np.mean(hd95))
    out["val_dice_mean"] = float(np.mean(dice_means)) if dice_means else 0.0
    return out


@dataclass
class CachedValidator:
    """Validate on cached cases (network grid).

    Attributes:
        load: case id → (image ``[c, x, y, z]`` float32, label ``[x, y, z]``, spacing_mm of that grid).
        case_ids: validation cases.
        plan: for patch size and labels.
        device: where to run.
        amp_dtype: autocast dtype.
        overlap: sliding-window overlap.
    """

    load: Callable[[str], tuple[npt.NDArray[np.float32], npt.NDArray[Any], Sequence[float]]]
    case_ids: Sequence[str]
    plan: Plan
    device: Any
    amp_dtype: Any = None
    overlap: float = 0.5

    def validate(self, network: torch.nn.Module) -> dict[str, float]:
        import torch

        from medseg.inference.sliding import sliding_window_logits
        from medseg.metrics import evaluate_case

        per_case = []
        for case_id in self.case_ids:
            image, label, spacing = self.load(case_id)
            logits = sliding_window_logits(network, torch.from_numpy(np.array(image, dtype=np.float32)),
                                           patch_size=self.plan.patch_size, overlap=self.overlap,
                                           device=self.device, amp_dtype=self.amp_dtype)
            pred = logits.argmax(0).to(torch.uint8).cpu().numpy()
            per_case.append(evaluate_case(pred, np.asarray(label), spacing_mm=tuple(spacing),
                                          labels=self.plan.labels.values))
        return summarise(per_case, self.plan.labels.names)


@dataclass
class ScanValidator:
    """Validate on real scans on their own grid.

    Attributes:
        scans: (image, reference label map on the image's grid, already mapped to the plan's classes).
        plan: the plan the network was trained with.
        device: where to run.
        amp: autocast choice.
    """

    scans: Sequence[tuple[Volume, Volume]]
    plan: Plan
    device: Any
    amp: str = "auto"

    def validate(self, network: torch.nn.Module) -> dict[str, float]:
        from medseg.inference.predictor import InferenceOptions, Predictor
        from medseg.metrics import evaluate_case

        predictor = Predictor(network=network, plan=self.plan, device=self.device,
                              options=InferenceOptions(amp=self.amp))
        per_case = []
        for image, ref in self.scans:
            pred = predictor.predict(image)
            per_case.append(evaluate_case(pred.array, ref.array, spacing_mm=image.spacing,
                                          labels=self.plan.labels.values))
        return summarise(per_case, self.plan.labels.names)

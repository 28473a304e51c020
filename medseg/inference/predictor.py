"""``Predictor``: a network plus its plan → label maps on the input's exact grid.

Pipeline (each step shared with training's validation): preprocess (reorient → crop → normalise →
resample, :mod:`medseg.transforms.preprocess`) → Gaussian sliding window (optional mirroring TTA)
→ slab-wise inversion of the logits onto the original grid with a running argmax
(:mod:`medseg.inference.stitching`: memory bounded by ``max_memory_gb``) → optional postprocessing →
a :class:`Volume` with exactly the input's shape and affine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from medseg.data.plan import Plan
from medseg.inference.postprocess import PostprocessConfig, postprocess_labels
from medseg.io.volume import Volume, VolumeMeta
from medseg.transforms.preprocess import PreprocessRecord, invert, preprocess_image

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the sliding window.

    Attributes:
        overlap: window overlap fraction (0.5 = nnU-Net).
        tta: average over the mirror flips the model was trained with (all three axes: 8 flips,
            8× slower; the bundled brain model: left-right, 2×).
        sw_batch_size: windows per forward pass; ``None`` picks one: 1 on a CPU (larger batches are
            slower per window there, see ``benchmarks/train_step.py``), 4 on a GPU.
        amp: ``auto`` | ``bf16`` | ``fp16`` | ``off`` (see :func:`medseg.runtime.autocast_dtype`).
        max_memory_gb: budget for stitching logits (``None``: automatic).
    """

    overlap: float = 0.5
    tta: bool = False
    sw_batch_size: int | None = None
    amp: str = "auto"
    max_memory_gb: float | None = None


@dataclass(frozen=True)
class Prediction:
    """A segmentation on the input's grid.

    Attributes:
        labels: integer label map, the input's shape and affine.
        probabilities: softmax ``[K, I, J, K]`` float32 on the same grid, if asked for.
        record: what preprocessing did.
        seconds: wall time per stage.
    """

    labels: Volume
    probabilities: Volume | None
    record: PreprocessRecord
    seconds: Mapping[str, float]


@dataclass
class Predictor:
    """Segment volumes with one network.

    Attributes:
        network: ``torch.nn.Module`` in eval mode on ``device``.
        plan: the preprocessing plan (``target_spacing_mm``, ``patch_size``, labels...).
        device: where the network runs.
        options: sliding-window options.
        postprocess: optional connected-component cleanup.
        model_card: what the checkpoint says about itself (name, intended input...).
        mirror_axes: network-grid axes (0 = x) that test-time mirroring flips: those the training
            augmentation mirrored (a network never shown upside-down brains must not be asked).
    """

    network: Any
    plan: Plan
    device: Any
    options: InferenceOptions = field(default_factory=InferenceOptions)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    model_card: Mapping[str, Any] = field(default_factory=dict)
    mirror_axes: tuple[int, ...] = (0, 1, 2)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "auto",
                        options: InferenceOptions | None = None, sha256: str | None = None) -> Predictor:
        """Load a medseg checkpoint (``weights_only``) and put the network on ``device``."""
        import torch

        from medseg.models.checkpoint import load_checkpoint
        from medseg.runtime import resolve_device

        dev = device if isinstance(device, torch.device) else resolve_device(device)
        ckpt = load_checkpoint(path, sha256=sha256)
        net = ckpt.build_network().to(dev)
        card = dict(ckpt.model_card)
        post = PostprocessConfig.from_dict(card.get("postprocess") or {})
        return cls(network=net, plan=ckpt.plan, device=dev, options=options or InferenceOptions(),
                   postprocess=post, model_card=card, mirror_axes=ckpt.mirror_axes())

    def predict(self, volume: Volume) -> Volume:
        """Segment ``volume``; returns an integer label map with exactly its shape and affine."""
        return self.predict_case(volume).labels

    def predict_case(self, volume: Volume, *, with_probabilities: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> Prediction:
        """Segment ``volume``; optionally also return softmax probabilities ``[K, I, J, K]`` on its grid.

        ``progress(windows_done, windows_total)`` is called after every sliding-window batch.
        """
        import torch

        t0 = time.perf_counter()
        image, record = preprocess_image(volume, self.plan)
        t1 = time.perf_counter()
        probabilities = None
        if with_probabilities:
            probs = torch.softmax(self.network_logits(image.array, progress=progress), dim=0).numpy()
            fill = [1.0] + [0.0] * (probs.shape[0] - 1)
            probabilities = Volume(invert(probs, record, kind="continuous", fill=fill), volume.affine)
            labels = np.argmax(probabilities.array, axis=0).astype(np.uint8 if probs.shape[0] <= 256 else np.int16)
        else:
            labels = self.stitched_labels(image.array, record, progress=progress)
        t2 = time.perf_counter()
        labels = postprocess_labels(labels, self.postprocess, voxel_volume_mm3=volume.voxel_volume_ml * 1000.0,
                                    names=self.plan.labels.names)
        t3 = time.perf_counter()
        log.info("%s: preprocess %.2fs, network+invert %.2fs, postprocess %.2fs (network grid %s)",
                 volume.meta.source or "volume", t1 - t0, t2 - t1, t3 - t2, image.shape)
        meta = VolumeMeta(source=None, modality=volume.meta.modality, series_uid=volume.meta.series_uid,
                          study_uid=volume.meta.study_uid, frame_of_reference_uid=volume.meta.frame_of_reference_uid,
                          sop_instance_uids=volume.meta.sop_instance_uids)
        return Prediction(Volume(labels, volume.affine, meta), probabilities, record,
                          {"preprocess": t1 - t0, "network": t2 - t1, "postprocess": t3 - t2})

    def window_batch(self) -> int:
        """Windows per forward pass (``options.sw_batch_size``, or 1 on CPU and 4 on GPU)."""
        if self.options.sw_batch_size:
            return int(self.options.sw_batch_size)
        return 1 if getattr(self.device, "type", "cpu") == "cpu" else 4

    def network_logits(self, image: npt.NDArray[np.float32],
                       progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """``[C, X, Y, Z]`` preprocessed image → ``[K, X, Y, Z]`` float32 logits (on the CPU)."""
        import torch

        from medseg.inference.sliding import sliding_window_logits
        from medseg.runtime import autocast_dtype

        tensor = torch.from_numpy(np.ascontiguousarray(image))
        logits = sliding_window_logits(
            self.network, tensor, patch_size=self.plan.patch_size, overlap=self.options.overlap,
            sw_batch_size=self.window_batch(), device=self.device,
            amp_dtype=autocast_dtype(self.device, self.options.amp), tta=self.options.tta,
            mirror_axes=self.mirror_axes, progress=progress,
        )
        return logits.float().cpu()

    def stitched_labels(self, image: npt.NDArray[np.float32], record: PreprocessRecord,
                        progress: Callable[[int, int], None] | None = None) -> npt.NDArray[Any]:
        """Memory-bounded sliding window + inversion + argmax (see :mod:`medseg.inference.stitching`)."""
        import torch

        from medseg.inference.sliding import windowed_predictor
        from medseg.inference.stitching import stitched_labels
        from medseg.runtime import autocast_dtype

        predict = windowed_predictor(self.network, amp_dtype=autocast_dtype(self.device, self.options.amp),
                                     tta=self.options.tta, mirror_axes=self.mirror_axes)
        return stitched_labels(predict, torch.from_numpy(np.ascontiguousarray(image)), record,
                               n_classes=self.plan.n_classes, patch_size=self.plan.patch_size,
                               overlap=self.options.overlap, sw_batch_size=self.window_batch(),
                               device=self.device, max_memory_gb=self.options.max_memory_gb, progress=progress)

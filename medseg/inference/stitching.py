"""Memory-bounded inference: sliding window in slabs, logits inverted slab by slab, argmax as we go.

Full-resolution float32 logits for every class are never held at once. The network grid is cut
into slabs along its z axis; each slab's logits come from a sliding window over the slab plus a
halo of half a patch (so windows at the slab border still see context), and are then mapped onto
the cropped canonical grid of the input and reduced to labels at once:

* in-plane (x, y): separable linear (or nearest along a "slow" axis) resampling, exactly what
  ``torch.nn.functional.interpolate(mode="trilinear", align_corners=False)`` computes;
* along z: linear blending of the two neighbouring network slices (or nearest).

Only uint8/int16 labels of the input's size accumulate. With one slab the result equals the
global pass followed by :func:`medseg.transforms.preprocess.invert` and argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from medseg.transforms import spatial
from medseg.transforms.preprocess import PreprocessRecord


@dataclass(frozen=True)
class AxisMap:
    """Linear (or nearest) source positions of each output index along one axis.

    ``out[i] = (1 - w[i]) · src[lo[i]] + w[i] · src[hi[i]]`` (nearest: ``w = 0``).
    """

    lo: torch.Tensor
    hi: torch.Tensor
    w: torch.Tensor


def axis_map(n_src: int, n_out: int, *, nearest: bool) -> AxisMap:
    """Source indices/weights matching PyTorch's ``align_corners=False`` convention (and clamping)."""
    if nearest:
        idx = torch.from_numpy(spatial.source_indices(n_src, n_out))
        return AxisMap(idx, idx, torch.zeros(n_out))
    scale = n_src / n_out
    pos = torch.clamp((torch.arange(n_out, dtype=torch.float64) + 0.5) * scale - 0.5, min=0.0)
    lo = torch.clamp(pos.floor().long(), max=n_src - 1)
    hi = torch.clamp(lo + 1, max=n_src - 1)
    return AxisMap(lo, hi, (pos - lo.double()).float())


def resize_axis(t: torch.Tensor, axis: int, m: AxisMap) -> torch.Tensor:
    """Resample ``t`` along ``axis`` with an :class:`AxisMap`."""
    a = torch.index_select(t, axis, m.lo)
    if not bool((m.w > 0).any()):
        return a
    b = torch.index_select(t, axis, m.hi)
    shape = [1] * t.dim()
    shape[axis] = -1
    w = m.w.to(t.dtype).view(shape)
    return torch.lerp(a, b, w)


class SlabArgmax:
    """Accumulates labels on the input's cropped canonical grid from slabs of network-grid logits.

    Args:
        record: what preprocessing did (network and cropped shapes, slow axis, crop, orientation).
        n_classes: number of logit channels.
    """

    def __init__(self, record: PreprocessRecord, n_classes: int) -> None:
        self.record = record
        self.n_classes = n_classes
        xn, yn, zn = record.resampled_shape
        xc, yc, zc = record.cropped_shape
        slow = record.slow_axis
        self.mx = axis_map(xn, xc, nearest=slow == 0)
        self.my = axis_map(yn, yc, nearest=slow == 1)
        self.mz = axis_map(zn, zc, nearest=slow == 2)
        self.labels = np.zeros(record.cropped_shape, dtype=np.uint8 if n_classes <= 256 else np.int16)

    def slices_for(self, a: int, b: int) -> tuple[int, int]:
        """Cropped-grid z range whose lower source slice lies in network slices ``[a, b)``."""
        lo = self.mz.lo.numpy()
        k0 = int(np.searchsorted(lo, a, side="left"))
        k1 = int(np.searchsorted(lo, b, side="left"))
        return k0, k1

    def add(self, logits: torch.Tensor, first: int, a: int, b: int) -> None:
        """Reduce the logits of network slices ``[a, b)`` to labels.

        Args:
            logits: ``[K, Xn, Yn, n]`` float logits of network slices ``first .. first + n - 1``;
                must include slice ``b`` if it exists (for linear blending).
            first: network z index of ``logits[..., 0]``.
            a, b: the network slices this slab is responsible for.
        """
        k0, k1 = self.slices_for(a, b)
        if k1 <= k0:
            return
        dev = logits.device  # resampling runs where the logits are (the GPU when inference runs there)
        sub = AxisMap(self.mz.lo[k0:k1] - first, self.mz.hi[k0:k1] - first, self.mz.w[k0:k1])
        if int(sub.lo.min()) < 0 or int(sub.hi.max()) >= logits.shape[-1]:
            raise ValueError("slab logits do not cover the slices needed for blending")
        sub, mx, my = (AxisMap(m.lo.to(dev), m.hi.to(dev), m.w.to(dev)) for m in (sub, self.mx, self.my))
        best: torch.Tensor | None = None
        labels = torch.zeros((self.labels.shape[0], self.labels.shape[1], k1 - k0), dtype=torch.int16, device=dev)
        for c in range(self.n_classes):
            t = resize_axis(logits[c], 2, sub)
            t = resize_axis(resize_axis(t, 0, mx), 1, my)
            if best is None:
                best = t
                continue
            better = t > best
            labels[better] = c
            best = torch.where(better, t, best)
        self.labels[..., k0:k1] = labels.cpu().numpy().astype(self.labels.dtype, copy=False)

    def result(self) -> npt.NDArray[Any]:
        """Labels on the original grid (uncropped with background, original axis order)."""
        r = self.record
        full = spatial.uncrop(self.labels, r.bbox, r.canonical_shape, fill=0)
        return np.ascontiguousarray(spatial.reorient_array(full, spatial.inverse_orientation(r.ornt)))


def slab_bounds(n: int, slab: int) -> list[tuple[int, int]]:
    """Cut ``range(n)`` into consecutive ``[a, b)`` of length ``slab`` (the last may be shorter)."""
    return [(a, min(a + slab, n)) for a in range(0, n, slab)]


def slab_thickness(record: PreprocessRecord, *, n_classes: int, n_channels: int, patch_z: int,
                   max_memory_gb: float | None) -> int:
    """Network slices per slab so that the slab's buffers stay within ``max_memory_gb``.

    Per network z slice the slab holds the sliding window's output and weight maps
    (``(K + 1) · Xn · Yn`` float32, for the slab plus its halo) and the input; per cropped slice
    the per-class resampled logits and running maximum (``3 · Xc · Yc`` float32). ``None`` → 2 GB.
    """
    budget = (max_memory_gb if max_memory_gb is not None else 2.0) * 1024**3
    xn, yn, zn = record.resampled_shape
    xc, yc, zc = record.cropped_shape
    per_net_slice = 4.0 * (xn * yn * (n_classes + 2 + n_channels) + 3 * xc * yc * zc / zn)
    halo = patch_z  # two half-patch halos
    fit = int(budget // per_net_slice) - halo
    return int(min(zn, max(patch_z, fit)))


def stitched_labels(
    predict_window: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    record: PreprocessRecord,
    *,
    n_classes: int,
    patch_size: Sequence[int],
    overlap: float,
    sw_batch_size: int,
    device: torch.device,
    max_memory_gb: float | None,
    progress: Callable[[int, int], None] | None = None,
) -> npt.NDArray[Any]:
    """Labels on the original grid from a preprocessed ``image [C, Xn, Yn, Zn]``, slab by slab.

    ``predict_window`` maps ``[B, C, *patch]`` to ``[B, K, *patch]`` logits; ``progress(done, total)``
    counts windows over all slabs.
    """
    from monai.inferers import sliding_window_inference

    from medseg.inference.sliding import WindowCounter, window_count

    zn = image.shape[-1]
    pz = int(patch_size[2])
    slab = slab_thickness(record, n_classes=n_classes, n_channels=image.shape[0], patch_z=pz,
                          max_memory_gb=max_memory_gb)
    halo = pz // 2 if slab < zn else 0
    acc = SlabArgmax(record, n_classes)
    bounds = [(a, b, max(0, a - halo), min(zn, b + max(halo, 1))) for a, b in slab_bounds(zn, slab)]
    counter = WindowCounter(sum(window_count((*image.shape[1:3], last - first), patch_size, overlap)
                                for _, _, first, last in bounds), progress)
    predict = counter.wrap(predict_window)

    for a, b, first, last in bounds:
        with torch.inference_mode():
            logits = sliding_window_inference(
                image[None, ..., first:last].to(device), roi_size=tuple(int(p) for p in patch_size),
                sw_batch_size=sw_batch_size, predictor=predict, overlap=overlap, mode="gaussian",
                sigma_scale=0.125, padding_mode="constant", cval=0.0, sw_device=device, device=device,
            )[0]
        acc.add(logits.float(), first, a, b)
        del logits
    return acc.result()


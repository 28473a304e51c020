"""Automatic planning: dataset fingerprint → :class:`~medseg.data.plan.Plan` (nnU-Net's rules).

* **Target spacing**: the median spacing per RAS axis. If the coarsest median spacing is more than
  ``anisotropy_threshold`` × the finest other one *and* that axis has fewer than
  1/``anisotropy_threshold`` of the voxels of the others (thick slices, few of them), its target
  is the 10th percentile of that axis's spacings instead (but not finer than the other axes).
* **Patch size**: start from a 256³-voxel patch shaped to be isotropic in millimetres, capped by
  the median case shape at the target spacing; while the estimated training memory
  (:mod:`medseg.data.memory`) exceeds ``gpu_memory_gb``, shrink the axis that is largest relative
  to the median shape by one topology step.
* **Topology** (:func:`derive_topology`): per stage, stride 2 along the axes whose current spacing
  is within 2× of the finest and that keep ≥ 4 voxels after pooling; kernel 1 along axes that are
  still much coarser (> 2×) than the finest, 3 once they have caught up; at most ``max_stages``
  stages; filters 32·2^s capped at 320; the patch is rounded up to a multiple of the total stride.
* **Normalisation**: channels named ``CT`` clip to the dataset foreground 0.5/99.5 percentiles and
  z-score with the dataset foreground mean/std; all others z-score per case.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medseg.data.dataset import Dataset
from medseg.data.fingerprint import ChannelStats, Fingerprint
from medseg.data.memory import estimate_training_memory_gb
from medseg.data.plan import ChannelNorm, Plan, Topology, Triple
from medseg.errors import ConfigError, DatasetError

log = logging.getLogger(__name__)

#: nnU-Net's initial patch volume (voxels) before it is fitted to the data and the memory budget.
INITIAL_PATCH_VOXELS = 256**3
#: Smallest feature map edge (voxels) at the bottom of the U-Net.
MIN_FEATURE_MAP = 4
#: Fewest U-Net stages (MONAI's DynUNet needs 3).
MIN_STAGES = 3


def make_plan(
    fingerprint: Fingerprint,
    dataset: Dataset,
    *,
    gpu_memory_gb: float = 8.0,
    batch_size: int = 2,
    max_stages: int = 6,
    anisotropy_threshold: float = 3.0,
    base_filters: int = 32,
    max_filters: int = 320,
) -> Plan:
    """Plan preprocessing, patch size and network topology for ``dataset``.

    Args:
        fingerprint: from :func:`~medseg.data.fingerprint.compute_fingerprint`.
        dataset: supplies the channel names and the label spec.
        gpu_memory_gb: memory budget of one training step (GB, 10^9 bytes).
        batch_size: patches per step the budget must hold.
        max_stages: most U-Net resolution stages (stride-1 input stage included).
        anisotropy_threshold: spacing ratio beyond which an axis counts as strongly anisotropic.
        base_filters, max_filters: feature maps of the first stage, doubled per stage up to the cap.

    Raises:
        ConfigError: the budget cannot hold even the smallest patch.
        DatasetError: a CT channel has no foreground voxels to compute statistics from.
    """
    spacing = target_spacing(fingerprint.spacings_mm, fingerprint.shapes, anisotropy_threshold=anisotropy_threshold)
    median = median_shape_at(fingerprint.spacings_mm, fingerprint.shapes, spacing)
    n_classes = dataset.labels.max_value + 1
    patch, topology, memory_gb = fit_patch_size(
        spacing, median, gpu_memory_gb=gpu_memory_gb, batch_size=batch_size, n_channels=dataset.n_channels,
        n_classes=n_classes, max_stages=max_stages, base_filters=base_filters, max_filters=max_filters)
    summary = fingerprint.summary()
    summary["planning"] = {
        "gpu_memory_gb": float(gpu_memory_gb),
        "batch_size": int(batch_size),
        "estimated_memory_gb": round(memory_gb, 2),
        "median_shape_at_target_spacing": [int(m) for m in median],
    }
    return Plan(
        target_spacing_mm=spacing,
        patch_size=patch,
        channels=tuple(channel_norm(c) for c in fingerprint.channels),
        labels=dataset.labels,
        topology=topology,
        anisotropy_threshold=anisotropy_threshold,
        fingerprint=summary,
    )


def target_spacing(
    spacings_mm: npt.ArrayLike, shapes: npt.ArrayLike, *, anisotropy_threshold: float = 3.0
) -> tuple[float, float, float]:
    """Median spacing per axis, with nnU-Net's rule for a strongly anisotropic axis (module docstring).

    Args:
        spacings_mm: ``[n_cases, 3]`` spacings in RAS axis order.
        shapes: ``[n_cases, 3]`` shapes (voxels) in the same order.
    """
    sp = np.asarray(spacings_mm, dtype=np.float64)
    target = np.median(sp, axis=0)
    size = np.median(np.asarray(shapes, dtype=np.float64), axis=0)
    worst = int(np.argmax(target))
    others = [a for a in range(3) if a != worst]
    aniso_spacing = target[worst] > anisotropy_threshold * max(target[a] for a in others)
    aniso_voxels = size[worst] * anisotropy_threshold < min(size[a] for a in others)
    if aniso_spacing and aniso_voxels:
        p10 = float(np.percentile(sp[:, worst], 10))
        finest_other = max(target[a] for a in others)
        target[worst] = p10 if p10 >= finest_other else finest_other + 1e-5
    return (float(target[0]), float(target[1]), float(target[2]))


def median_shape_at(spacings_mm: npt.ArrayLike, shapes: npt.ArrayLike, target_mm: Sequence[float]) -> Triple:
    """Median case shape (voxels) after resampling to ``target_mm``."""
    sp = np.asarray(spacings_mm, dtype=np.float64)
    sh = np.asarray(shapes, dtype=np.float64)
    resampled = np.round(sh * sp / np.asarray(target_mm, dtype=np.float64))
    m = np.median(resampled, axis=0)
    return (int(m[0]), int(m[1]), int(m[2]))


def derive_topology(
    spacing_mm: Sequence[float],
    patch_size: Sequence[int],
    *,
    max_stages: int = 6,
    base_filters: int = 32,
    max_filters: int = 320,
) -> tuple[Topology, Triple]:
    """DynUNet kernel sizes and strides for a patch (nnU-Net's ``get_pool_and_conv_props``).

    Returns:
        The topology and the patch size rounded up to a multiple of its total stride.
    """
    current_spacing = [float(s) for s in spacing_mm]
    current_size = [int(p) for p in patch_size]
    kernel = [1, 1, 1]
    strides: list[Triple] = [(1, 1, 1)]
    kernels: list[Triple] = []
    while len(strides) < max_stages:
        valid = [a for a in range(3) if current_size[a] >= 2 * MIN_FEATURE_MAP]
        if not valid:
            break
        finest = min(current_spacing[a] for a in valid)
        valid = [a for a in valid if current_spacing[a] / finest < 2]
        if len(valid) == 1 and current_size[valid[0]] < 3 * MIN_FEATURE_MAP:
            break
        finest_all = min(current_spacing)
        kernel = [3 if kernel[a] == 3 or current_spacing[a] / finest_all < 2 else 1 for a in range(3)]
        kernels.append((kernel[0], kernel[1], kernel[2]))
        stride = tuple(2 if a in valid else 1 for a in range(3))
        for a in valid:
            current_spacing[a] *= 2
            current_size[a] = math.ceil(current_size[a] / 2)
        strides.append(stride)  # type: ignore[arg-type]
    kernels.append((3, 3, 3))
    filters = tuple(min(base_filters * 2**s, max_filters) for s in range(len(strides)))
    down = [math.prod(s[a] for s in strides) for a in range(3)]
    padded = tuple(int(math.ceil(p / d) * d) for p, d in zip(patch_size, down, strict=True))
    return Topology(kernel_sizes=tuple(kernels), strides=tuple(strides), filters=filters), padded  # type: ignore[return-value]


def fit_patch_size(
    spacing_mm: Sequence[float],
    median_shape: Sequence[int],
    *,
    gpu_memory_gb: float,
    batch_size: int,
    n_channels: int,
    n_classes: int,
    max_stages: int = 6,
    base_filters: int = 32,
    max_filters: int = 320,
) -> tuple[Triple, Topology, float]:
    """The largest patch (nnU-Net's shrinking order) whose estimated memory fits ``gpu_memory_gb``.

    Returns:
        Patch size, its topology and its estimated memory (GB).

    Raises:
        ConfigError: not even the smallest patch of a 3-stage U-Net fits.
    """
    inv = 1.0 / np.asarray(spacing_mm, dtype=np.float64)
    initial = np.round(inv * (INITIAL_PATCH_VOXELS / np.prod(inv)) ** (1 / 3)).astype(int)
    patch = [max(1, int(min(i, m))) for i, m in zip(initial, median_shape, strict=True)]

    def build(p: Sequence[int]) -> tuple[Topology, Triple]:
        return derive_topology(spacing_mm, p, max_stages=max_stages, base_filters=base_filters,
                               max_filters=max_filters)

    def memory_of(topo: Topology, p: Sequence[int]) -> float:
        return estimate_training_memory_gb(p, topo, n_channels=n_channels, n_classes=n_classes, batch_size=batch_size)

    topology, padded = build(patch)
    if len(topology.strides) < MIN_STAGES:  # cases smaller than a 3-stage U-Net needs: pad them in sampling
        topology, padded = build([max(p, 4 * MIN_FEATURE_MAP) for p in patch])
    patch = list(padded)
    memory = memory_of(topology, patch)
    while memory > gpu_memory_gb:
        ratios = [p / max(m, 1) for p, m in zip(patch, median_shape, strict=True)]
        candidates = []
        for axis in sorted(range(3), key=lambda a: -ratios[a]):
            smaller = list(patch)
            smaller[axis] -= topology.downsampling[axis]
            if smaller[axis] >= 1:
                try:
                    topo, p = build(smaller)
                except ConfigError:  # too small for even a 2-stage network
                    continue
                if len(topo.strides) >= MIN_STAGES:
                    candidates.append((topo, p))
                    break
        if not candidates:
            raise ConfigError(
                f"a GPU memory budget of {gpu_memory_gb:g} GB cannot hold even a {'×'.join(map(str, patch))} "
                f"patch (estimated {memory:.2f} GB at batch size {batch_size}); raise --gpu-memory-gb")
        topology, padded = candidates[0]
        patch = list(padded)
        memory = memory_of(topology, patch)
    log.info("patch %s, estimated %.2f GB at batch size %d", patch, memory, batch_size)
    return (patch[0], patch[1], patch[2]), topology, memory


def channel_norm(stats: ChannelStats) -> ChannelNorm:
    """``ct`` normalisation for channels named CT (dataset statistics), ``zscore`` otherwise."""
    if stats.name.strip().upper() != "CT":
        return ChannelNorm(stats.name, "zscore")
    if stats.n_samples == 0:
        raise DatasetError(f"channel {stats.name!r}: no foreground voxels, so no CT statistics; check the labels")
    return ChannelNorm(stats.name, "ct", clip_low=_r(stats.percentile_00_5), clip_high=_r(stats.percentile_99_5),
                       mean=_r(stats.mean), std=_r(max(stats.std, 1e-8)))


def _r(x: float) -> float:
    return float(f"{x:.6g}")

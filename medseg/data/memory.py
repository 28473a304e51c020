"""GPU memory estimate for training a DynUNet on a patch, used by the planner to size patches.

The estimate, in GB (10^9 bytes), is::

    CONTEXT_GB                                   CUDA context + cuDNN workspace
  + n_parameters × BYTES_PER_PARAMETER           fp32 weights, gradients, optimiser state
  + batch × saved_elements × ACTIVATION_BYTES × ACTIVATION_OVERHEAD

``saved_elements`` is counted, not guessed: the MONAI ``DynUNet`` of the topology is built on
PyTorch's ``meta`` device (no memory, no compute) and run forward once on a meta tensor of one
sample while a ``saved_tensors_hooks`` context adds up every tensor autograd keeps for the backward
pass. ``ACTIVATION_BYTES = 2`` assumes mixed precision. ``ACTIVATION_OVERHEAD`` covers what the
count misses (activation gradients alive during backward, allocator fragmentation); it is
calibrated so that nnU-Net's default configuration (128³ patch, batch 2, 6 stages, 32→320 filters,
one channel, three classes) comes out at 8.0 GB, the middle of the 7-9 GB nnU-Net's authors report
it to use with mixed precision (MIC-DKFZ/nnUNet issues #253 and #658). Without a GPU at hand this
calibration is the weakest link of the estimate; its structure (linear in batch size and in the
counted activations) is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from medseg.data.plan import Topology

CONTEXT_GB = 1.0
BYTES_PER_PARAMETER = 16
ACTIVATION_BYTES = 2
ACTIVATION_OVERHEAD = 1.75


def estimate_training_memory_gb(
    patch_size: Sequence[int],
    topology: Topology,
    *,
    n_channels: int,
    n_classes: int,
    batch_size: int = 2,
) -> float:
    """Estimated peak GPU memory (GB) of one training step with mixed precision (see module docstring).

    Args:
        patch_size: network input ``(x, y, z)`` in voxels (divisible by the topology's total stride).
        topology: the DynUNet kernel sizes, strides and filters.
        n_channels: input channels.
        n_classes: output channels (background included).
        batch_size: patches per step.
    """
    saved, params = count_saved_activations(tuple(int(p) for p in patch_size), _key(topology),
                                            n_channels=n_channels, n_classes=n_classes)
    activations = batch_size * saved * ACTIVATION_BYTES * ACTIVATION_OVERHEAD
    return CONTEXT_GB + (params * BYTES_PER_PARAMETER + activations) / 1e9


def dynunet_kwargs(topology: Topology, *, n_channels: int, n_classes: int) -> dict[str, object]:
    """Arguments of ``monai.networks.nets.DynUNet`` for ``topology`` (nnU-Net-like: instance norm,
    leaky ReLU, deep supervision on up to two extra decoder levels)."""
    n = len(topology.strides)
    return {
        "spatial_dims": 3,
        "in_channels": n_channels,
        "out_channels": n_classes,
        "kernel_size": [list(k) for k in topology.kernel_sizes],
        "strides": [list(s) for s in topology.strides],
        "upsample_kernel_size": [list(s) for s in topology.strides[1:]],
        "filters": list(topology.filters),
        "norm_name": "instance",
        "deep_supervision": n > 2,
        "deep_supr_num": max(1, min(2, n - 2)),
        "res_block": False,
    }


TopologyKey = tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...], tuple[int, ...]]


def _key(topology: Topology) -> TopologyKey:
    return (tuple(map(tuple, topology.kernel_sizes)), tuple(map(tuple, topology.strides)), tuple(topology.filters))


@lru_cache(maxsize=256)
def count_saved_activations(
    patch_size: tuple[int, ...], key: TopologyKey, *, n_channels: int, n_classes: int
) -> tuple[int, int]:
    """Elements autograd saves for backward for ONE sample, and the number of parameters.

    Runs the DynUNet forward on the ``meta`` device (shapes only). Tensors saved twice are counted once.
    """
    import torch
    from monai.networks.nets import DynUNet

    topology = Topology(kernel_sizes=key[0], strides=key[1], filters=key[2])  # type: ignore[arg-type]
    with torch.device("meta"):
        net = DynUNet(**dynunet_kwargs(topology, n_channels=n_channels, n_classes=n_classes))  # type: ignore[arg-type]
        x = torch.empty((1, n_channels, *patch_size))
    saved: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[id(t)] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net.train()
        net(x)
    n_params = sum(p.numel() for p in net.parameters())
    return sum(t.numel() for t in saved.values()), n_params

"""torchrun / DistributedDataParallel plumbing: read the launcher's environment, explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context_from_env(environ: dict[str, str] | None = None) -> DistContext:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as set by ``torchrun``."""
    env = os.environ if environ is None else environ
    return DistContext(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


#: How long ranks wait for one another. Rank 0 alone builds the preprocessed cache and runs the
#: validation while the others wait at a barrier, which can take far longer than the 10 minutes
#: NCCL allows by default; a rank that crashes is stopped by torchrun, not by this timeout.
TIMEOUT = timedelta(hours=3)


def init(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (gloo on CPU, NCCL on CUDA) if running under torchrun.

    ``torchrun`` provides the rendezvous (``MASTER_ADDR``/``MASTER_PORT`` or ``--rdzv-endpoint``),
    so this works the same on one node and across nodes.
    """
    import torch.distributed as dist

    if ctx.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op without DDP)."""
    import torch
    import torch.distributed as dist

    if ctx.enabled and dist.is_initialized():
        if dist.get_backend() == "nccl":  # NCCL needs to know this rank's GPU
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def mean_across_ranks(value: float, ctx: DistContext, *, device: torch.device | None = None) -> float:
    """Average a scalar over ranks (identity without DDP).

    Args:
        device: where the reduction happens (a CUDA device under NCCL, which cannot reduce CPU tensors).
    """
    if not ctx.enabled:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def wrap_model(net: torch.nn.Module, ctx: DistContext, device: torch.device, *,
               find_unused_parameters: bool = False) -> torch.nn.Module:
    """``net`` in DistributedDataParallel when running under torchrun (gradients averaged over
    ranks in backward; rank 0's initial weights broadcast at construction); ``net`` itself otherwise.

    Args:
        find_unused_parameters: the network has parameters its forward never uses
            (:data:`medseg.models.registry.UNUSED_PARAMETERS`).
    """
    if not ctx.enabled:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=find_unused_parameters)


def shutdown(ctx: DistContext) -> None:
    import torch.distributed as dist

    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()

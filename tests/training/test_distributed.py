"""DDP plumbing: torchrun's environment, and every registered model trains under DistributedDataParallel.

A one-process gloo group is enough to exercise DDP's reducer: without ``find_unused_parameters`` for
the models listed in ``UNUSED_PARAMETERS`` it fails on the second backward pass. The two-process run
is tests/cli/test_train_torchrun.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from medseg.models import MODELS, ModelConfig, create_model
from medseg.models.registry import UNUSED_PARAMETERS
from medseg.training.distributed import DistContext, context_from_env, mean_across_ranks, wrap_model
from tests.models.test_registry import SMALL, make_plan


def test_context_from_torchrun_environment() -> None:
    ctx = context_from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node0"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main, ctx.enabled) == (3, 8, 1, False, True)
    alone = context_from_env({})
    assert (alone.rank, alone.world_size, alone.is_main, alone.enabled) == (0, 1, True, False)


def test_single_process_needs_no_process_group() -> None:
    net = torch.nn.Linear(2, 2)
    assert wrap_model(net, DistContext(), torch.device("cpu")) is net
    assert mean_across_ranks(0.25, DistContext()) == 0.25


@pytest.fixture
def process_group(tmp_path: Path) -> Iterator[None]:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_under_ddp(name: str, process_group: None) -> None:
    torch.manual_seed(0)
    net = create_model(ModelConfig(name=name, **SMALL[name]), make_plan(n_channels=1))
    model = torch.nn.parallel.DistributedDataParallel(net, find_unused_parameters=name in UNUSED_PARAMETERS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2):
        out = model(torch.randn(1, 1, 32, 32, 32))
        out.float().mean().backward()
        optimizer.step()
        optimizer.zero_grad()

"""One contract test over every registered model: forward shape, backward, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.errors import ConfigError
from medseg.labels import LabelSpec
from medseg.models import MODELS, ModelConfig, create_model
from medseg.models.checkpoint import load_checkpoint, save_checkpoint
from medseg.models.registry import UNUSED_PARAMETERS

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 4, strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
                filters=(8, 16, 32, 64))
SMALL = {
    "unet": {"max_filters": 32},
    "unetr": {"feature_size": 8, "hidden_size": 96, "mlp_dim": 192, "num_heads": 4},
    "segresnet": {"feature_size": 8},
}


def make_plan(patch: tuple[int, int, int] = (32, 32, 32), n_channels: int = 2, n_labels: int = 3) -> Plan:
    return Plan(target_spacing_mm=(1.0, 1.0, 1.0), patch_size=patch,
                channels=tuple(ChannelNorm(f"c{i}") for i in range(n_channels)),
                labels=LabelSpec.from_values(range(1, n_labels + 1)), topology=TOPO)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    plan = make_plan()
    config = ModelConfig(name=name, **SMALL[name])
    net = create_model(config, plan)
    x = torch.randn(2, plan.n_channels, *plan.patch_size)
    net.train()
    out = net(x)
    main = out[:, 0] if out.dim() == 6 else out
    assert main.shape == (2, plan.n_classes, *plan.patch_size)
    main.float().mean().backward()
    unreached = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert all("norm_cross_attn" in n for n in unreached), unreached  # MONAI's ViT blocks keep an unused norm
    assert bool(unreached) == (name in UNUSED_PARAMETERS)  # DDP is told exactly for these models
    assert sum(float(p.grad.abs().sum()) > 0 for p in net.parameters() if p.grad is not None) > 0
    net.eval()
    with torch.no_grad():
        before = net(x)
    assert before.shape == (2, plan.n_classes, *plan.patch_size)
    save_checkpoint(tmp_path / "m.pt", model=config, plan=plan, state_dict=net.state_dict())
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.plan == plan and loaded.model == config
    with torch.no_grad():
        after = loaded.build_network()(x)
    torch.testing.assert_close(after, before)


def test_unetr_needs_patch_divisible_by_16() -> None:
    with pytest.raises(ConfigError, match="divisible by 16"):
        create_model(ModelConfig(name="unetr"), make_plan(patch=(40, 40, 40)))


def test_unknown_model_name_suggests_a_close_one() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'unet'"):
        ModelConfig(name="unett")

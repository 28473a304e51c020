"""Model registry: a plain dict from name to a builder of a MONAI network.

``create_model(config, plan)`` looks the name up and builds the network for the plan's channels,
classes, patch size and topology. Every builder returns a ``torch.nn.Module`` mapping
``[B, C_in, X, Y, Z]`` to logits ``[B, C_out, X, Y, Z]`` in eval mode; in train mode a model with
deep supervision returns ``[B, 1 + n_heads, C_out, X, Y, Z]`` (MONAI DynUNet's convention, all heads
upsampled to full resolution, the main output first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from medseg.data.plan import Plan
from medseg.errors import ConfigError, check_keys, check_option

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelConfig:
    """Network choice and its hyperparameters (the ``model:`` section of a training config).

    Attributes:
        name: registry key: ``unet`` (DynUNet), ``unetr``, ``segresnet``.
        deep_supervision: ``unet`` only: auxiliary outputs at coarser decoder stages.
        deep_supervision_heads: number of auxiliary heads (``unet``).
        max_filters: cap on the plan's per-stage filters (``unet``), e.g. 32 for a CPU-sized model.
        filters_scale: multiply the plan's filters by this (``unet``), then cap.
        feature_size: base feature count (``unetr``, ``segresnet``).
        hidden_size, mlp_dim, num_heads: transformer size (``unetr``).
        dropout: dropout rate where the network supports it.
    """

    name: str = "unet"
    deep_supervision: bool = True
    deep_supervision_heads: int = 2
    max_filters: int = 320
    filters_scale: float = 1.0
    feature_size: int = 16
    hidden_size: int = 768
    mlp_dim: int = 3072
    num_heads: int = 12
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_option(self.name, MODELS, name="model.name")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        check_keys(data, {f.name for f in fields(cls)}, where="model")
        return cls(**data)


def _unet(config: ModelConfig, plan: Plan) -> torch.nn.Module:
    from monai.networks.nets import DynUNet

    topo = plan.topology
    filters = [max(4, min(config.max_filters, int(round(f * config.filters_scale)))) for f in topo.filters]
    heads = min(config.deep_supervision_heads, len(topo.strides) - 2)
    return DynUNet(
        spatial_dims=3,
        in_channels=plan.n_channels,
        out_channels=plan.n_classes,
        kernel_size=[list(k) for k in topo.kernel_sizes],
        strides=[list(s) for s in topo.strides],
        upsample_kernel_size=[list(s) for s in topo.strides[1:]],
        filters=filters,
        dropout=config.dropout or None,
        norm_name=("instance", {"affine": True}),
        act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=config.deep_supervision and heads > 0,
        deep_supr_num=max(1, heads),
        res_block=False,
    )


def _unetr(config: ModelConfig, plan: Plan) -> torch.nn.Module:
    from monai.networks.nets import UNETR

    bad = [p for p in plan.patch_size if p % 16]
    if bad:
        raise ConfigError(
            f"model 'unetr' needs a patch size divisible by 16 along every axis; plan.patch_size is "
            f"{list(plan.patch_size)}: set patch_size to multiples of 16 (e.g. "
            f"{[max(16, 16 * round(p / 16)) for p in plan.patch_size]})"
        )
    return UNETR(
        in_channels=plan.n_channels,
        out_channels=plan.n_classes,
        img_size=tuple(plan.patch_size),
        feature_size=config.feature_size,
        hidden_size=config.hidden_size,
        mlp_dim=config.mlp_dim,
        num_heads=config.num_heads,
        proj_type="conv",
        norm_name="instance",
        dropout_rate=config.dropout,
        spatial_dims=3,
    )


def _segresnet(config: ModelConfig, plan: Plan) -> torch.nn.Module:
    from monai.networks.nets import SegResNet

    bad = [p for p in plan.patch_size if p % 8]
    if bad:
        raise ConfigError(
            f"model 'segresnet' needs a patch size divisible by 8; plan.patch_size is {list(plan.patch_size)}"
        )
    return SegResNet(
        spatial_dims=3,
        init_filters=config.feature_size,
        in_channels=plan.n_channels,
        out_channels=plan.n_classes,
        dropout_prob=config.dropout or None,
        blocks_down=(1, 2, 2, 4),
        blocks_up=(1, 1, 1),
    )


#: name → builder(config, plan). Add a model by adding an entry.
MODELS: dict[str, Callable[[ModelConfig, Plan], torch.nn.Module]] = {
    "unet": _unet,
    "unetr": _unetr,
    "segresnet": _segresnet,
}


#: Models whose forward pass leaves some parameters without gradients (MONAI's ViT blocks keep an
#: unused cross-attention norm). DistributedDataParallel must be told (``find_unused_parameters``),
#: otherwise it waits for their gradients and fails on the second iteration.
UNUSED_PARAMETERS = frozenset({"unetr"})


def create_model(config: ModelConfig, plan: Plan) -> torch.nn.Module:
    """Build the network named by ``config.name`` for ``plan``.

    Raises:
        ConfigError: unknown model name, or a patch size the architecture cannot take.
    """
    builder = MODELS[check_option(config.name, MODELS, name="model.name")]
    return builder(config, plan)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

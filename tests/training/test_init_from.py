"""--init-from: a new fold starts from another checkpoint's weights, or refuses clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medseg.errors import CheckpointError
from medseg.models import ModelConfig, create_model
from medseg.models.checkpoint import save_checkpoint
from medseg.training.loop import load_initial_weights
from tests.models.test_registry import SMALL, make_plan


def test_matching_weights_are_loaded(tmp_path: Path) -> None:
    plan, cfg = make_plan(), ModelConfig(name="unet", **SMALL["unet"])
    torch.manual_seed(1)
    source = create_model(cfg, plan)
    path = save_checkpoint(tmp_path / "src.pt", model=cfg, plan=plan, state_dict=source.state_dict())
    torch.manual_seed(2)
    target = create_model(cfg, plan)
    load_initial_weights(target, path)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value)


def test_other_class_count_is_refused_naming_the_tensor(tmp_path: Path) -> None:
    cfg = ModelConfig(name="unet", **SMALL["unet"])
    source = create_model(cfg, make_plan(n_labels=3))
    path = save_checkpoint(tmp_path / "src.pt", model=cfg, plan=make_plan(n_labels=3), state_dict=source.state_dict())
    with pytest.raises(CheckpointError, match="does not fit|do not fit"):
        load_initial_weights(create_model(cfg, make_plan(n_labels=5)), path)

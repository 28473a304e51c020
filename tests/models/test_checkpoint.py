"""Checkpoints are safe to load: pickled code is refused without running it; corrupt files are clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from medseg.errors import CheckpointError
from medseg.models import ModelConfig, create_model
from medseg.models.checkpoint import file_sha256, load_checkpoint, save_checkpoint
from tests.models.test_registry import SMALL, make_plan

MARKER = Path("/tmp/medseg-pwned-marker")


class Exploit:
    """Unpickling this object would create a file (a stand-in for arbitrary code)."""

    def __reduce__(self):
        return (open, (str(MARKER), "w"))


def test_checkpoint_with_pickled_code_is_refused_and_not_run(tmp_path: Path) -> None:
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"format": "medseg-checkpoint", "payload": Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not MARKER.exists()


def test_plain_pickle_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not MARKER.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    plan = make_plan()
    cfg = ModelConfig(name="unet", **SMALL["unet"])
    good = save_checkpoint(tmp_path / "a.pt", model=cfg, plan=plan, state_dict=create_model(cfg, plan).state_dict())
    bad = tmp_path / "b.pt"
    bad.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(bad)


def test_sha256_is_verified(tmp_path: Path) -> None:
    plan = make_plan()
    cfg = ModelConfig(name="unet", **SMALL["unet"])
    path = save_checkpoint(tmp_path / "a.pt", model=cfg, plan=plan, state_dict=create_model(cfg, plan).state_dict(),
                           half=True)
    assert load_checkpoint(path, sha256=file_sha256(path)).plan == plan
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_checkpoint(path, sha256="0" * 64)


def test_half_precision_storage_loads_as_float32(tmp_path: Path) -> None:
    plan = make_plan()
    cfg = ModelConfig(name="unet", **SMALL["unet"])
    net = create_model(cfg, plan)
    path = save_checkpoint(tmp_path / "h.pt", model=cfg, plan=plan, state_dict=net.state_dict(), half=True)
    rebuilt = load_checkpoint(path).build_network()
    p = next(rebuilt.parameters())
    assert p.dtype == torch.float32
    ref = dict(net.state_dict())
    for k, v in rebuilt.state_dict().items():
        if torch.is_floating_point(v):
            torch.testing.assert_close(v, ref[k].half().float())


@pytest.mark.parametrize(("train_config", "axes"), [
    pytest.param(None, (0, 1, 2), id="no-training-config"),
    pytest.param({"augment": {}}, (0, 1, 2), id="augment-defaults"),
    pytest.param({"augment": {"mirror_axes": [2, 0]}}, (0, 2), id="augment-axes"),
    pytest.param({"augment": {"mirror_prob": 0.0}}, (), id="augment-no-mirroring"),
    pytest.param({"augment": {}, "synth": {"generator": {}}}, (0,), id="synth-left-right"),
    pytest.param({"augment": {}, "synth": {"generator": {"flip_probability": 0.0}}}, (), id="synth-no-flip"),
])
def test_mirror_axes_for_tta_are_those_the_training_mirrored(train_config: dict | None, axes: tuple) -> None:
    from medseg.models.checkpoint import Checkpoint

    ckpt = Checkpoint(model=ModelConfig(name="unet"), plan=make_plan(), state_dict={}, train_config=train_config)
    assert ckpt.mirror_axes() == axes

"""Training configs: YAML → typed dataclasses; unknown keys and bad values are named errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from medseg.errors import ConfigError
from medseg.training.config import LoopConfig, OptimConfig, TrainConfig, config_from_dict, load_config, override
from medseg.training.loop import lr_at

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["tiny", "unet", "unetr", "brain"])
def test_shipped_configs_load_and_round_trip(name: str) -> None:
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())), source=None) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"modle": {}}, "unknown key 'modle' in config; did you mean 'model'?", id="top-level"),
        pytest.param({"loop": {"epoch": 3}}, "unknown key 'epoch' in loop; did you mean 'epochs'?", id="loop-field"),
        pytest.param({"model": {"name": "unett"}}, "Did you mean 'unet'", id="model-name"),
        pytest.param({"model": {"name": "UNETR"}}, "unknown model.name 'UNETR'", id="model-name-case"),
        pytest.param({"optim": {"name": "adam"}}, "unknown optim.name 'adam'", id="optimizer-name"),
        pytest.param({"loop": {"amp": "fp8"}}, "unknown loop.amp 'fp8'", id="amp"),
        pytest.param({"loop": {"epochs": 0}}, "loop.epochs must be ≥ 1", id="zero-epochs"),
        pytest.param({"optim": {"lr": -1}}, "optim.lr must be > 0", id="negative-lr"),
        pytest.param({"loop": [1, 2]}, "section 'loop' must be a mapping", id="section-not-mapping"),
    ],
)
def test_bad_config_is_a_config_error_naming_the_field(data: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_override_changes_only_given_loop_fields() -> None:
    config = TrainConfig(loop=LoopConfig(epochs=10, batch_size=4))
    assert override(config, epochs=None) is config
    changed = override(config, epochs=25)
    assert changed.loop.epochs == 25 and changed.loop.batch_size == 4 and changed.model == config.model


@pytest.mark.parametrize(
    ("optim", "epoch", "expected"),
    [
        pytest.param(OptimConfig(lr=0.01, schedule="poly"), 0, 0.01, id="poly-start"),
        pytest.param(OptimConfig(lr=0.01, schedule="poly"), 5, 0.01 * 0.5**0.9, id="poly-half"),
        pytest.param(OptimConfig(lr=0.01, schedule="cosine"), 5, 0.005, id="cosine-half"),
        pytest.param(OptimConfig(lr=0.01, schedule="cosine"), 9, 0.005 * (1 + math.cos(0.9 * math.pi)),
                     id="cosine-end"),
        pytest.param(OptimConfig(lr=0.01, schedule="constant"), 7, 0.01, id="constant"),
        pytest.param(OptimConfig(lr=0.01, schedule="cosine", warmup_epochs=2), 0, 0.01 / 3, id="warm-up-1"),
        pytest.param(OptimConfig(lr=0.01, schedule="cosine", warmup_epochs=2), 1, 0.02 / 3, id="warm-up-2"),
        pytest.param(OptimConfig(lr=0.01, schedule="cosine", warmup_epochs=2), 2, 0.01, id="after-warm-up"),
    ],
)
def test_learning_rate_schedule(optim: OptimConfig, epoch: int, expected: float) -> None:
    assert lr_at(epoch, optim, 10) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"augment": {"rotaton_prob": 0.1}}, "unknown key 'rotaton_prob' in augment; did you mean",
                     id="augment-key"),
        pytest.param({"augment": {"mirror_prob": 2.0}}, "augment.mirror_prob must lie in 0..1", id="augment-range"),
        pytest.param({"synth": {"generator": {"rotation": 10}}}, "unknown key 'rotation' in synth.generator",
                     id="synth-generator-key"),
        pytest.param({"synth": {"clases": "brain16"}}, "unknown key 'clases' in synth; did you mean 'classes'",
                     id="synth-key"),
    ],
)
def test_augment_and_synth_sections_are_checked_at_load(data: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_config(path)

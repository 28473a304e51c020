"""Training configs: YAML → typed dataclasses; unknown keys and bad values are named errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from medseg.errors import ConfigError
from medseg.training.config import (
    LoopConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    override,
)
from medseg.training.loop import lr_at

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["tiny", "unet", "unetr", "brain", "brain_refine"])
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


def test_set_overrides_change_exactly_the_named_fields() -> None:
    plain = load_config(CONFIGS / "brain_refine.yaml")
    changed = load_config(CONFIGS / "brain_refine.yaml", ["optim.lr=3e-4", "loop.epochs=60",
                                                          "synth.generator.bias_std=0.2",
                                                          "synth.patch_size=[80, 80, 80]"])
    assert changed.optim.lr == 0.0003 and isinstance(changed.optim.lr, float)
    assert changed.loop.epochs == 60 and isinstance(changed.loop.epochs, int)
    assert changed.synth is not None and plain.synth is not None
    assert changed.synth.generator["bias_std"] == 0.2 and changed.synth.patch_size == (80, 80, 80)
    assert changed.synth.generator["elastic_std_mm"] == plain.synth.generator["elastic_std_mm"] == 3.0
    assert changed.model == plain.model and changed.synth.validation == plain.synth.validation
    assert changed.loop.batch_size == plain.loop.batch_size and changed.optim.schedule == plain.optim.schedule


def test_set_creates_a_missing_section_and_leaves_the_input_alone() -> None:
    data = {"loop": {"epochs": 5}}
    out = apply_overrides(data, ["optim.lr=0.1", "loop.epochs=7"])
    assert out == {"loop": {"epochs": 7}, "optim": {"lr": 0.1}}
    assert data == {"loop": {"epochs": 5}}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        pytest.param("optim.lr", "--set 'optim.lr' is not SECTION.FIELD=VALUE", id="no-equals"),
        pytest.param("lr=0.1", "--set 'lr=0.1' is not SECTION.FIELD=VALUE", id="no-section"),
        pytest.param("optim..lr=0.1", "is not SECTION.FIELD=VALUE", id="empty-part"),
        pytest.param("optim.lr.x=1", "--set 'optim.lr.x=1': 'lr' is a value, not a section", id="value-as-section"),
        pytest.param("optim.lrr=0.1", "unknown key 'lrr' in optim; did you mean 'lr'?", id="unknown-field"),
        pytest.param("optim.lr=-1", "optim.lr must be > 0", id="bad-value"),
        pytest.param("loop.epochs=[1", "the value is not valid YAML", id="bad-yaml"),
    ],
)
def test_bad_set_is_a_config_error_naming_it(item: str, message: str) -> None:
    path = CONFIGS / "tiny.yaml"
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(path, [item])
    assert str(path) in str(info.value)


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


def test_validation_scan_paths_survive_a_run_config_round_trip(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative ``synth.validation`` path is relative to its config file, given by a relative path
    from the working folder; the run's saved ``config.yaml`` (read on ``--resume`` from elsewhere)
    must still name the same scan (it used to store ``configs/../scans/...``, then resolve that
    against the run folder)."""
    scans, configs = tmp_path / "scans", tmp_path / "project" / "configs"
    scans.mkdir()
    configs.mkdir(parents=True)
    for name in ("t1.nii.gz", "ref.nii.gz"):
        (scans / name).write_bytes(b"")
    (configs / "c.yaml").write_text(yaml.safe_dump({"synth": {"validation": [
        {"image": "../../scans/t1.nii.gz", "label": "../../scans/ref.nii.gz"}]}}))
    monkeypatch.chdir(tmp_path / "project")
    config = load_config("configs/c.yaml")
    run = tmp_path / "runs" / "deep" / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    monkeypatch.chdir(tmp_path / "runs")
    resumed = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()), source=run / "config.yaml")
    assert resumed == config
    assert resumed.synth is not None
    scan = resumed.synth.validation[0]
    assert (Path(scan.image), Path(scan.label)) == (scans / "t1.nii.gz", scans / "ref.nii.gz")

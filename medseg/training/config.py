"""Training configuration: YAML → typed, frozen dataclasses; unknown keys are errors.

A config file (see ``configs/*.yaml``) has these top-level sections::

    model:     ModelConfig      (medseg.models.registry)
    optim:     OptimConfig
    loop:      LoopConfig       (epochs, iterations, batch size, validation, AMP...)
    plan:      PlanOverrides    (memory budget, or fixed spacing/patch instead of the planner's)
    augment:   mapping          (medseg.transforms.augment.AugmentConfig fields)
    synth:     SynthTrainConfig | null   (label-maps-only training with synthetic images)

CLI flags override single fields (``--epochs 5`` → ``loop.epochs``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from medseg.errors import ConfigError, InvalidInputError, check_keys, check_option
from medseg.models.registry import ModelConfig
from medseg.serialize import plain_data

Amp = Literal["auto", "bf16", "fp16", "off"]


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule.

    ``sgd`` + ``poly`` are nnU-Net's defaults (lr 0.01, Nesterov momentum 0.99, weight decay 3e-5,
    lr · (1 − epoch/epochs)^0.9); ``adamw`` + ``cosine`` the common alternative.
    """

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.99
    weight_decay: float = 3e-5
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    poly_exponent: float = 0.9
    warmup_epochs: int = 0
    grad_clip: float = 12.0

    def __post_init__(self) -> None:
        check_option(self.name, ("sgd", "adamw"), name="optim.name")
        check_option(self.schedule, ("poly", "cosine", "constant"), name="optim.schedule")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class LoopConfig:
    """The training loop.

    Attributes:
        epochs: total epochs (``--epochs`` on a finished run extends it).
        iterations_per_epoch: optimiser steps per epoch.
        batch_size: patches per step (per process under DDP).
        val_every: validate every N epochs (and after the last).
        val_max_cases: validate on at most this many cases (None: all of the fold's).
        num_workers: data-loading worker processes.
        foreground_fraction: share of patches centred on a foreground voxel.
        folds: number of cross-validation folds.
        amp: ``auto`` (bf16 on CUDA if supported else fp16; bf16 on CPUs with bf16 support),
            ``bf16``, ``fp16`` (CUDA only) or ``off``.
        sw_overlap: sliding-window overlap for validation.
    """

    epochs: int = 100
    iterations_per_epoch: int = 250
    batch_size: int = 2
    val_every: int = 5
    val_max_cases: int | None = None
    num_workers: int = 2
    foreground_fraction: float = 0.33
    folds: int = 5
    amp: Amp = "auto"
    sw_overlap: float = 0.5

    def __post_init__(self) -> None:
        check_option(self.amp, ("auto", "bf16", "fp16", "off"), name="loop.amp")
        for name in ("epochs", "iterations_per_epoch", "batch_size", "val_every", "folds"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"loop.{name} must be ≥ 1, got {getattr(self, name)}")
        if not 0 <= self.foreground_fraction <= 1:
            raise ConfigError(f"loop.foreground_fraction must be in [0, 1], got {self.foreground_fraction}")


@dataclass(frozen=True)
class PlanOverrides:
    """What the automatic planner may not decide on its own.

    Attributes:
        gpu_memory_gb: memory budget for the patch size.
        target_spacing_mm: fixed spacing (RAS axis order) instead of the dataset median.
        patch_size: fixed patch size instead of the budget-derived one.
    """

    gpu_memory_gb: float = 8.0
    target_spacing_mm: tuple[float, float, float] | None = None
    patch_size: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class ValidationScan:
    """A real scan for validating a label-maps-only model.

    Attributes:
        image: path of the scan (relative paths in a config file are relative to that file; stored
            absolute, so a run's saved ``config.yaml`` finds the scan on ``--resume`` from anywhere).
        label: reference label map on the scan's grid.
        label_mapping: how the reference's values map to the model's classes
            (``identity`` or ``freesurfer`` — FreeSurfer aseg/aparc values → the brain classes).
    """

    image: str
    label: str
    label_mapping: Literal["identity", "freesurfer"] = "identity"


@dataclass(frozen=True)
class SynthTrainConfig:
    """Label-maps-only training: a synthetic image is generated from a label map every iteration.

    Attributes:
        classes: ``brain16`` (the default model's 16 brain structures from FreeSurfer labels).
        target_spacing_mm: working resolution (isotropic is typical).
        patch_size: generated patch size in voxels.
        label_map_spacing_mm: isotropic spacing the label maps are kept at (default: the working
            spacing). A whole fraction of it (e.g. 1 mm maps for 2 mm patches) renders partial
            volume: each working voxel averages the intensities of its sub-voxels.
        generator: overrides of ``medseg.transforms.synth.SynthConfig`` fields.
        validation: real scans with reference label maps.
    """

    classes: Literal["brain16"] = "brain16"
    target_spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    patch_size: tuple[int, int, int] = (64, 64, 64)
    label_map_spacing_mm: float | None = None
    generator: Mapping[str, Any] = field(default_factory=dict)
    validation: tuple[ValidationScan, ...] = ()

    @property
    def map_spacing_mm(self) -> tuple[float, float, float]:
        """Spacing of the prepared label maps, mm (RAS axis order)."""
        if self.label_map_spacing_mm is None:
            return self.target_spacing_mm
        s = float(self.label_map_spacing_mm)
        return (s, s, s)


@dataclass(frozen=True)
class TrainConfig:
    """A whole training configuration (see module docstring)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    plan: PlanOverrides = field(default_factory=PlanOverrides)
    augment: Mapping[str, Any] = field(default_factory=dict)
    synth: SynthTrainConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["synth"] = None if self.synth is None else plain_data(asdict(self.synth))
        return plain_data(out)


_SECTIONS = {"model": ModelConfig, "optim": OptimConfig, "loop": LoopConfig, "plan": PlanOverrides}


def config_from_dict(data: Mapping[str, Any], *, source: str | Path | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig`; unknown keys anywhere raise :class:`ConfigError` naming them."""
    try:
        check_keys(data, {f.name for f in fields(TrainConfig)}, where="config")
        kwargs: dict[str, Any] = {}
        for name, cls in _SECTIONS.items():
            section = data.get(name) or {}
            if not isinstance(section, Mapping):
                raise ConfigError(f"section {name!r} must be a mapping")
            check_keys(section, {f.name for f in fields(cls)}, where=name)
            kwargs[name] = cls(**_tuples(section))
        kwargs["augment"] = _augment_from_dict(data.get("augment") or {})
        if data.get("synth") is not None:
            base = Path(source).parent if source is not None else Path.cwd()
            kwargs["synth"] = _synth_from_dict(data["synth"], base=base)
        return TrainConfig(**kwargs)
    except ConfigError as exc:
        if exc.path or source is None:
            raise
        raise ConfigError(exc.message, path=source) from exc
    except TypeError as exc:
        raise ConfigError(f"malformed config: {exc}", path=source) from exc


def _augment_from_dict(data: Any) -> dict[str, Any]:
    """The ``augment:`` mapping, checked now (unknown keys, bad ranges) rather than when training starts."""
    from medseg.transforms.augment import AugmentConfig

    if not isinstance(data, Mapping):
        raise ConfigError("section 'augment' must be a mapping")
    AugmentConfig.from_dict(data)
    return dict(data)


def _synth_from_dict(data: Mapping[str, Any], *, base: Path) -> SynthTrainConfig:
    check_keys(data, {f.name for f in fields(SynthTrainConfig)}, where="synth")
    generator = data.get("generator") or {}
    if not isinstance(generator, Mapping):
        raise ConfigError("synth.generator must be a mapping")
    from medseg.transforms.synth_params import SynthConfig

    check_keys(generator, {f.name for f in fields(SynthConfig)}, where="synth.generator")
    scans = []
    for entry in data.get("validation") or []:
        check_keys(entry, {f.name for f in fields(ValidationScan)}, where="synth.validation")
        resolved = {**entry, "image": os.path.abspath(base / entry["image"]),
                    "label": os.path.abspath(base / entry["label"])}
        scans.append(ValidationScan(**resolved))
    rest = {k: v for k, v in data.items() if k != "validation"}
    return SynthTrainConfig(**_tuples(rest), validation=tuple(scans))


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a training config YAML, then apply ``overrides`` (see :func:`apply_overrides`)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("config file not found; see configs/ for examples (e.g. configs/tiny.yaml)", path=p)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=p) from exc
    if not isinstance(data, Mapping):
        raise ConfigError("a training config must be a YAML mapping", path=p)
    return config_from_dict(apply_overrides(data, overrides, source=p), source=p)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], *,
                    source: str | Path | None = None) -> dict[str, Any]:
    """A copy of the raw config mapping with ``SECTION.FIELD=VALUE`` items set (``medseg train --set``).

    Keys may nest (``synth.generator.bias_std=0.2``); values are read as YAML (``[80, 80, 80]``,
    ``true``), and a number YAML keeps as text (``3e-4``) as a float. The result still goes through
    :func:`config_from_dict`, so an unknown field is named as in a config file.
    """
    import copy

    out = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r} is not SECTION.FIELD=VALUE (e.g. --set optim.lr=3e-4)", path=source)
        node = out
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is a value, not a section", path=source)
        node[parts[-1]] = _yaml_scalar(text, item=item, source=source)
    return out


def _yaml_scalar(text: str, *, item: str, source: str | Path | None) -> Any:
    """``text`` parsed as YAML; numbers PyYAML leaves as strings (``3e-4``) become floats."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})", path=source) from exc
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def override(config: TrainConfig, **loop_fields: Any) -> TrainConfig:
    """Replace ``loop`` fields given as keywords (``None`` values are ignored)."""
    changes = {k: v for k, v in loop_fields.items() if v is not None}
    return replace(config, loop=replace(config.loop, **changes)) if changes else config


def _tuples(section: Mapping[str, Any]) -> dict[str, Any]:
    """YAML lists → tuples (frozen dataclasses keep tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}

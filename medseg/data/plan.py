"""The preprocessing and network plan: a typed, editable YAML file.

A :class:`Plan` says how every case is brought onto the network's grid (target spacing in the
canonical RAS axis order, crop, interpolation, per-channel normalisation), what patch the network
sees, and the network topology that patch implies. ``medseg plan`` writes it from a dataset
fingerprint; users may edit it; checkpoints carry it so inference repeats exactly the same steps.

Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast

from medseg.errors import ConfigError, InvalidInputError, check_keys, check_option
from medseg.labels import LabelSpec
from medseg.serialize import plain_data

Triple = tuple[int, int, int]
NormScheme = Literal["ct", "zscore", "percentile", "none"]
ImageInterpolation = Literal["spline3", "linear"]
LabelInterpolation = Literal["nearest", "linear_onehot"]

NORM_SCHEMES: tuple[NormScheme, ...] = ("ct", "zscore", "percentile", "none")
IMAGE_INTERPOLATIONS: tuple[ImageInterpolation, ...] = ("spline3", "linear")
LABEL_INTERPOLATIONS: tuple[LabelInterpolation, ...] = ("nearest", "linear_onehot")


@dataclass(frozen=True)
class ChannelNorm:
    """How one input channel is normalised.

    Attributes:
        name: channel name from the dataset (``"CT"``, ``"T1"``, ``"FLAIR"``...).
        scheme: ``"ct"``: clip to ``[clip_low, clip_high]`` (dataset foreground 0.5/99.5
            percentiles, in the image's units, e.g. HU) then ``(x - mean) / std`` with dataset
            foreground statistics; ``"zscore"``: per case, ``(x - mean) / std`` over the case's
            nonzero (foreground) voxels; ``"percentile"``: per case, rescale so that the
            ``percentile_low`` / ``percentile_high`` percentiles of the nonzero voxels map to 0 / 1,
            then clip to [0, 1] (for contrast-agnostic models trained on synthetic images);
            ``"none"``: unchanged.
        clip_low, clip_high, mean, std: dataset statistics used by ``"ct"``.
        percentile_low, percentile_high: used by ``"percentile"`` (0–100).
    """

    name: str
    scheme: NormScheme = "zscore"
    clip_low: float | None = None
    clip_high: float | None = None
    mean: float | None = None
    std: float | None = None
    percentile_low: float | None = None
    percentile_high: float | None = None

    def __post_init__(self) -> None:
        check_option(self.scheme, NORM_SCHEMES, name=f"normalisation scheme of channel {self.name!r}")
        if self.scheme == "ct":
            missing = [f for f in ("clip_low", "clip_high", "mean", "std") if getattr(self, f) is None]
            if missing:
                raise ConfigError(f"channel {self.name!r} uses scheme 'ct' but lacks {', '.join(missing)}")
            if not (self.std and self.std > 0):
                raise ConfigError(f"channel {self.name!r}: std must be > 0, got {self.std}")
        if self.scheme == "percentile":
            lo, hi = self.percentile_low, self.percentile_high
            if lo is None or hi is None or not 0 <= lo < hi <= 100:
                raise ConfigError(f"channel {self.name!r} uses scheme 'percentile' and needs "
                                  f"0 ≤ percentile_low < percentile_high ≤ 100; got {lo}, {hi}")


@dataclass(frozen=True)
class Topology:
    """A DynUNet topology: per-stage convolution kernel sizes and strides, and feature counts.

    ``strides[0]`` is the stride of the input block (normally ``(1, 1, 1)``); the product of the
    strides along each axis must divide the patch size.
    """

    kernel_sizes: tuple[Triple, ...]
    strides: tuple[Triple, ...]
    filters: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.kernel_sizes)
        if not (n == len(self.strides) == len(self.filters)) or n < 2:
            raise ConfigError(
                "topology needs as many kernel_sizes, strides and filters (≥ 2 stages); got "
                f"{len(self.kernel_sizes)}, {len(self.strides)}, {len(self.filters)}"
            )

    @property
    def downsampling(self) -> Triple:
        """Total stride along each axis (the patch size must be divisible by it)."""
        return cast(Triple, tuple(math.prod(s[a] for s in self.strides) for a in range(3)))


@dataclass(frozen=True)
class Plan:
    """Everything that turns a case into network input and back.

    Attributes:
        target_spacing_mm: voxel size after resampling, in the canonical RAS axis order
            (x = left→right, y = posterior→anterior, z = inferior→superior), millimetres.
        patch_size: network input size in voxels, same axis order.
        channels: normalisation per input channel, in channel order.
        labels: the foreground classes (values 1..N as the network predicts them).
        topology: the DynUNet topology implied by the patch size and spacing.
        crop_to_nonzero: crop each case to the bounding box of its nonzero voxels first.
        image_interpolation: ``"spline3"`` (3rd-order B-spline, nnU-Net's default) or ``"linear"``.
        label_interpolation: ``"nearest"`` or ``"linear_onehot"`` (linear on one-hot, then argmax).
        anisotropy_threshold: if a case's largest/smallest spacing ratio exceeds this, its slow
            axis is resampled separately with nearest neighbour (nnU-Net's "separate z").
        fingerprint: a summary of the dataset the plan was made from (for the record only).
    """

    target_spacing_mm: tuple[float, float, float]
    patch_size: Triple
    channels: tuple[ChannelNorm, ...]
    labels: LabelSpec
    topology: Topology
    crop_to_nonzero: bool = True
    image_interpolation: ImageInterpolation = "spline3"
    label_interpolation: LabelInterpolation = "linear_onehot"
    anisotropy_threshold: float = 3.0
    fingerprint: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.target_spacing_mm) != 3 or any(not (s > 0) for s in self.target_spacing_mm):
            raise ConfigError(f"target_spacing_mm must be 3 positive numbers, got {list(self.target_spacing_mm)}")
        if len(self.patch_size) != 3 or any(int(p) < 1 for p in self.patch_size):
            raise ConfigError(f"patch_size must be 3 positive integers, got {list(self.patch_size)}")
        if not self.channels:
            raise ConfigError("a plan needs at least one input channel")
        check_option(self.image_interpolation, IMAGE_INTERPOLATIONS, name="image_interpolation")
        check_option(self.label_interpolation, LABEL_INTERPOLATIONS, name="label_interpolation")
        down = self.topology.downsampling
        bad = [a for a in range(3) if self.patch_size[a] % down[a]]
        if bad:
            raise ConfigError(
                f"patch_size {list(self.patch_size)} is not divisible by the topology's total stride "
                f"{list(down)} along axis {bad[0]}; pick a multiple of {down[bad[0]]}"
            )

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_classes(self) -> int:
        """Network output channels: background plus one per label value 1..max."""
        return self.labels.max_value + 1


# --- YAML ---------------------------------------------------------------------------------------
_HEADER = """\
# medseg plan: how cases are preprocessed and what the network sees.
# Edit freely; unknown keys are errors. Axis order of every triple: canonical RAS (x, y, z).
#   target_spacing_mm    voxel size after resampling (mm)
#   patch_size           network input in voxels (divisible by the topology's total stride)
#   channels             normalisation per input channel: ct (clip + dataset z-score),
#                        zscore (per case, over nonzero voxels) or none
#   labels               foreground classes (value, name, colour 0-255, optional terminology)
#   topology             DynUNet kernel sizes / strides / filters per stage
#   crop_to_nonzero      crop to the nonzero bounding box before resampling
#   image_interpolation  spline3 | linear;  label_interpolation: nearest | linear_onehot
#   anisotropy_threshold spacing ratio above which the slow axis is resampled with nearest
"""


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """Plain, YAML/JSON-safe dictionary of ``plan`` (round-trips through :func:`plan_from_dict`)."""
    out = {f.name: getattr(plan, f.name) for f in fields(plan)}
    out["target_spacing_mm"] = [float(s) for s in plan.target_spacing_mm]
    out["patch_size"] = [int(p) for p in plan.patch_size]
    out["channels"] = [{k: v for k, v in asdict(c).items() if v is not None} for c in plan.channels]
    out["labels"] = plan.labels.to_dict()["labels"]
    out["topology"] = {
        "kernel_sizes": [list(k) for k in plan.topology.kernel_sizes],
        "strides": [list(s) for s in plan.topology.strides],
        "filters": list(plan.topology.filters),
    }
    out["fingerprint"] = plain_data(plan.fingerprint)
    return out


def plan_from_dict(data: Mapping[str, Any], *, source: str | Path | None = None) -> Plan:
    """Build a :class:`Plan` from a dictionary; unknown keys raise :class:`ConfigError`."""
    try:
        check_keys(data, {f.name for f in fields(Plan)}, where="plan")
        topo = data.get("topology")
        if not isinstance(topo, Mapping):
            raise ConfigError("plan needs a 'topology' mapping (kernel_sizes, strides, filters)")
        check_keys(topo, {"kernel_sizes", "strides", "filters"}, where="topology")
        channels = []
        for c in data.get("channels") or []:
            check_keys(c, {f.name for f in fields(ChannelNorm)}, where=f"channel {c.get('name', '?')!r}")
            channels.append(ChannelNorm(**c))
        return Plan(
            target_spacing_mm=_triple(data, "target_spacing_mm", float),
            patch_size=_triple(data, "patch_size", int),
            channels=tuple(channels),
            labels=LabelSpec.from_dict({"labels": data.get("labels") or []}),
            topology=Topology(
                kernel_sizes=tuple(tuple(int(x) for x in k) for k in topo.get("kernel_sizes", [])),  # type: ignore[misc]
                strides=tuple(tuple(int(x) for x in s) for s in topo.get("strides", [])),  # type: ignore[misc]
                filters=tuple(int(f) for f in topo.get("filters", [])),
            ),
            crop_to_nonzero=bool(data.get("crop_to_nonzero", True)),
            image_interpolation=data.get("image_interpolation", "spline3"),
            label_interpolation=data.get("label_interpolation", "linear_onehot"),
            anisotropy_threshold=float(data.get("anisotropy_threshold", 3.0)),
            fingerprint=dict(data.get("fingerprint") or {}),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"malformed plan: {exc}", path=source) from exc
    except ConfigError as exc:
        if exc.path or source is None:
            raise
        raise ConfigError(exc.message, path=source) from exc


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` as commented YAML, atomically."""
    import yaml

    from medseg.io import atomic_write_text

    body = yaml.safe_dump(plan_to_dict(plan), sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
    atomic_write_text(path, _HEADER + body)
    return Path(path)


def load_plan(path: str | Path) -> Plan:
    """Read a plan YAML written by :func:`save_plan` (possibly edited by hand)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("plan file not found; create one with `medseg plan DATASET -o plan.yaml`", path=p)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=p) from exc
    if not isinstance(data, Mapping):
        raise ConfigError("a plan must be a YAML mapping", path=p)
    return plan_from_dict(data, source=p)


def _triple(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ConfigError(f"{key} must be a list of 3 numbers, got {value!r}")
    return tuple(kind(v) for v in value)

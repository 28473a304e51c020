"""Random parameters of one synthetic image: :class:`SynthConfig` (ranges) → :class:`SynthParams` (draws).

:func:`sample_synth_params` draws every random quantity of one image from a ``torch.Generator``
(the per-voxel noise as a seed), so :func:`medseg.transforms.synth.render_synth` is deterministic
and a sample can be replayed or edited (``dataclasses.replace(params, skull_strip=True)``).
Defaults follow SynthSeg (Billot et al., Medical Image Analysis 2023), in millimetres where the
original counts 1 mm voxels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from medseg.errors import ConfigError
from medseg.transforms.warp import warp_matrix

Range = tuple[float, float]
Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class SynthConfig:
    """Ranges of the random generative model; each image draws its parameters uniformly within them.

    Spatial (applied to the label map, one nearest-neighbour sampling):
        rotation_deg: rotation about each axis in ``[-r, r]`` degrees.
        scaling: scale factor along each axis in ``[1 - s, 1 + s]``.
        shear: each off-diagonal shear term in ``[-s, s]``.
        flip_probability: chance of a left-right flip (labels unchanged: the classes are bilateral).
        elastic_std_mm: the displacement std at the control points is drawn in ``[0, std]`` mm.
        elastic_spacing_mm: distance between control points of the elastic field, mm.
        Translation is the random crop: the patch centre is a random brain voxel.

    Intensity:
        mean_range: mean intensity of each label group (left/right merged), arbitrary units.
        std_range: within-label standard deviation (texture), same units.
        tissue_probability: chance that an image follows the tissue prior: one random mean each
            for white matter, grey matter and CSF (from ``mean_range``), every structure of a
            tissue at its tissue's mean plus a Gaussian deviation of std ``[0, tissue_jitter]``,
            deep nuclei and brainstem between white and grey matter (a random 20-80 % of the
            way), other labels independent as usual. Real scans look like this; fully
            independent means (SynthSeg) let the network tell apart structures by intensity that
            real scans show alike (hippocampus and cortex).
        tissue_jitter: upper bound of that deviation's std (intensity units).
        dark_background_probability: chance that the background label's mean is 0 (air in MRI
            is dark; its texture and the noise remain).
        skull_strip_probability: chance that everything outside the brain and CSF is set to 0.
        strip_outer_csf_probability: when stripping, chance that CSF more than one voxel away from
            the brain is set to 0 too (a tight mask that keeps sulcal CSF).
        bias_std: std of the log bias field at its control points is drawn in ``[0, bias_std]``.
        bias_spacing_mm: distance between control points of the bias field, mm.

    Acquisition:
        resolution_mm: isotropic acquisition voxel size; values below the working spacing mean
            "no downsampling" (blur only).
        thick_slice_probability: chance that one random axis gets a thick-slice voxel size.
        thick_slice_mm: that axis's voxel size, mm.
        blur_fraction: Gaussian blur sigma as a fraction of the acquisition voxel size (at least
            the working spacing, so that images at working resolution have partial volume too).
        noise_std_range: std of Gaussian noise added at acquisition resolution (intensity units).
        gamma_std: the image (scaled to [0, 1]) is raised to ``exp(N(0, gamma_std))``.
    """

    rotation_deg: float = 15.0
    scaling: float = 0.2
    shear: float = 0.012
    flip_probability: float = 0.5
    elastic_std_mm: float = 4.0
    elastic_spacing_mm: float = 32.0
    mean_range: Range = (0.0, 225.0)
    std_range: Range = (0.0, 25.0)
    tissue_probability: float = 0.0
    tissue_jitter: float = 10.0
    dark_background_probability: float = 0.5
    skull_strip_probability: float = 0.5
    strip_outer_csf_probability: float = 0.5
    bias_std: float = 0.5
    bias_spacing_mm: float = 48.0
    resolution_mm: Range = (1.0, 3.5)
    thick_slice_probability: float = 0.3
    thick_slice_mm: Range = (3.0, 8.0)
    blur_fraction: Range = (0.25, 0.5)
    noise_std_range: Range = (0.0, 10.0)
    gamma_std: float = 0.4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(not math.isfinite(v) or v < 0 for v in values):
                raise ConfigError(f"synth config {f.name} must be finite and ≥ 0, got {value!r}")
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ConfigError(
                    f"synth config {f.name} must be a (low, high) range with low ≤ high, got {value!r}"
                )
            if f.name.endswith("probability") and value > 1:
                raise ConfigError(f"synth config {f.name} is a probability in [0, 1], got {value!r}")
        if self.elastic_spacing_mm <= 0 or self.bias_spacing_mm <= 0:
            raise ConfigError("synth config elastic_spacing_mm and bias_spacing_mm must be > 0")

    @classmethod
    def identity(cls) -> SynthConfig:
        """No deformation, flip, bias, blur, resampling, noise or gamma: only per-label intensities
        (with ``std_range=(0, 0)`` the image is piecewise constant) and the crop."""
        return cls(
            rotation_deg=0.0, scaling=0.0, shear=0.0, flip_probability=0.0, elastic_std_mm=0.0,
            dark_background_probability=0.0, skull_strip_probability=0.0, bias_std=0.0,
            resolution_mm=(0.0, 0.0), thick_slice_probability=0.0, blur_fraction=(0.0, 0.0),
            noise_std_range=(0.0, 0.0), gamma_std=0.0,
        )


@dataclass(frozen=True, eq=False)
class SynthParams:
    """Everything random about one synthetic image.

    Attributes:
        centre_vox: label-map voxel ``(i, j, k)`` that patch voxel ``patch_size // 2`` samples
            (before the elastic displacement).
        linear: float64 ``[3, 3]``, patch offset (mm, RAS axes) → label-map offset (mm):
            rotation, scaling, shear and flip.
        elastic_mm: float32 ``[n0, n1, n2, 3]``, displacement (mm along ``i, j, k``) at control
            points spanning the patch end to end.
        means, stds: float32 ``[G]``, intensity of each label group.
        skull_strip, strip_outer_csf: zero everything outside the brain and CSF (and CSF more
            than one voxel from the brain).
        bias_log: float32 ``[m0, m1, m2]``, log of the multiplicative bias at its control points.
        resolution_mm: acquisition voxel size along ``i, j, k`` (≤ working spacing: none).
        blur_sigma_mm: Gaussian blur sigma along ``i, j, k``, mm.
        noise_std: std of the acquisition noise (intensity units).
        gamma: exponent applied to the [0, 1] image.
        noise_seed: seed of the per-voxel noise.
    """

    centre_vox: tuple[int, int, int]
    linear: torch.Tensor
    elastic_mm: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor
    skull_strip: bool
    strip_outer_csf: bool
    bias_log: torch.Tensor
    resolution_mm: Vec3
    blur_sigma_mm: Vec3
    noise_std: float
    gamma: float
    noise_seed: int


def sample_synth_params(
    config: SynthConfig,
    *,
    centre_candidates: torch.Tensor,
    patch_size: Sequence[int],
    spacing_mm: Vec3,
    n_groups: int,
    background_group: int,
    generator: torch.Generator,
    tissue: torch.Tensor | None = None,
) -> SynthParams:
    """Draw the parameters of one image.

    Args:
        config: the ranges.
        centre_candidates: int64 ``[N, 3]`` label-map voxels ``(i, j, k)``, N ≥ 1; the patch centre
            is one of them, uniformly.
        patch_size: output ``(X, Y, Z)`` voxels.
        spacing_mm: voxel size of the label map (and of the patch), mm.
        n_groups: number of intensity groups (length of the intensity lookup tables' range).
        background_group: intensity group of the background (dark with ``dark_background_probability``).
        generator: the only source of randomness.
        tissue: int64 ``[G]`` tissue class per group for ``config.tissue_probability`` (``None``: off).
    """
    g = generator
    i, j, k = (int(v) for v in centre_candidates[_randint(0, len(centre_candidates), g)])
    linear = _linear(config, g)
    extent_mm = [p * s for p, s in zip(patch_size, spacing_mm, strict=True)]
    elastic_shape = [_n_control(e, config.elastic_spacing_mm) for e in extent_mm]
    elastic = torch.randn((*elastic_shape, 3), generator=g) * _uniform(0.0, config.elastic_std_mm, g)
    means = _uniform_tensor(config.mean_range, n_groups, g)
    stds = _uniform_tensor(config.std_range, n_groups, g)
    if _chance(config.dark_background_probability, g):
        means[background_group] = 0.0
    skull_strip = _chance(config.skull_strip_probability, g)
    strip_outer_csf = _chance(config.strip_outer_csf_probability, g)
    bias_shape = [_n_control(e, config.bias_spacing_mm) for e in extent_mm]
    bias = torch.randn(bias_shape, generator=g) * _uniform(0.0, config.bias_std, g)
    resolution = _resolution(config, g)
    blur = [max(r, s) * _uniform(*config.blur_fraction, g)
            for r, s in zip(resolution, spacing_mm, strict=True)]
    noise_std = _uniform(*config.noise_std_range, g)
    gamma = math.exp(config.gamma_std * float(torch.randn((), generator=g)))
    noise_seed = int(torch.randint(0, 2**62, (), generator=g))
    # drawn last, and only when enabled, so that configs without it keep their random streams
    if tissue is not None and config.tissue_probability > 0 and _chance(config.tissue_probability, g):
        means = tissue_means(means, tissue, config, g)
    return SynthParams(
        centre_vox=(i, j, k),
        linear=linear,
        elastic_mm=elastic,
        means=means,
        stds=stds,
        skull_strip=skull_strip,
        strip_outer_csf=strip_outer_csf,
        bias_log=bias,
        resolution_mm=resolution,
        blur_sigma_mm=(blur[0], blur[1], blur[2]),
        noise_std=noise_std,
        gamma=gamma,
        noise_seed=noise_seed,
    )


def tissue_means(means: torch.Tensor, tissue: torch.Tensor, config: SynthConfig, g: torch.Generator) -> torch.Tensor:
    """``means`` ``[G]`` with every group of a tissue (``tissue`` ``[G]``: 1 white, 2 grey matter,
    3 CSF, 4 deep) moved to its tissue's random mean plus a Gaussian deviation; deep groups lie a
    random fraction of the way from the white to the grey matter mean. Clipped at 0."""
    wm, gm, csf = (_uniform(*config.mean_range, g) for _ in range(3))
    jitter = _uniform(0.0, config.tissue_jitter, g)
    deviation = torch.randn(means.shape, generator=g) * jitter
    mix = _uniform_tensor(_DEEP_MIX, means.shape[0], g)
    centre = torch.stack([means, torch.full_like(means, wm), torch.full_like(means, gm), torch.full_like(means, csf),
                          wm + mix * (gm - wm)])  # [5, G]: tissue class → mean
    moved = torch.gather(centre, 0, tissue.clamp(0, 4)[None])[0]
    return torch.where(tissue > 0, (moved + deviation).clamp_(min=0.0), means)


#: Where deep grey nuclei and brainstem lie between the white (0) and grey (1) matter means.
_DEEP_MIX = (0.2, 0.8)


def _linear(config: SynthConfig, g: torch.Generator) -> torch.Tensor:
    """Rotation @ zoom @ left-right flip (:func:`~medseg.transforms.warp.warp_matrix` in mm) @ shear,
    float64 3×3."""
    angles = [math.radians(_uniform(-config.rotation_deg, config.rotation_deg, g)) for _ in range(3)]
    zoom = [_uniform(1 - config.scaling, 1 + config.scaling, g) for _ in range(3)]
    shear = torch.eye(3, dtype=torch.float64)
    for r, c in ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)):
        shear[r, c] = _uniform(-config.shear, config.shear, g)
    flip = _chance(config.flip_probability, g)
    rigid = warp_matrix(angles_rad=angles, scale=zoom, flips=(flip, False, False))
    return torch.from_numpy(rigid) @ shear


def _resolution(config: SynthConfig, g: torch.Generator) -> Vec3:
    iso = _uniform(*config.resolution_mm, g)
    res = [iso, iso, iso]
    if _chance(config.thick_slice_probability, g):
        axis = int(torch.randint(0, 3, (), generator=g))
        res[axis] = max(iso, _uniform(*config.thick_slice_mm, g))
    return (res[0], res[1], res[2])


def _n_control(extent_mm: float, spacing_mm: float) -> int:
    """Control points spanning ``extent_mm`` at most ``spacing_mm`` apart (at least 2)."""
    return max(2, math.ceil(extent_mm / spacing_mm) + 1)


def _uniform(lo: float, hi: float, g: torch.Generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _uniform_tensor(bounds: Range, n: int, g: torch.Generator) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _chance(p: float, g: torch.Generator) -> bool:
    return bool(float(torch.rand((), generator=g, dtype=torch.float64)) < p)


def _randint(lo: int, hi: int, g: torch.Generator) -> int:
    return int(torch.randint(lo, max(hi, lo + 1), (), generator=g))

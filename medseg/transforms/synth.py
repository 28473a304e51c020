"""SynthSeg-style synthetic images from label maps: a new random contrast every training iteration.

Billot et al., "SynthSeg: segmentation of brain MRI scans of any contrast and resolution without
retraining", Medical Image Analysis 2023. From a label map (FreeSurfer values, RAS, at the working
resolution; see :func:`medseg.data.labelmaps.prepare_label_maps`) :class:`SynthGenerator` makes

1. a patch of the label map under a random affine (rotation, scaling, shear, left-right flip) and
   elastic deformation, centred at a random brain voxel: one sampling grid, one nearest-neighbour
   ``grid_sample``;
2. an image with a Gaussian intensity per label group (left/right merged; extra-cerebral labels
   too, so there are skull and background), sometimes zeroed outside the brain (skull stripping).
   With label maps finer than the patch (``map_spacing_mm``, e.g. 1 mm maps for 2 mm patches),
   each patch voxel's mean intensity is the average over its ``f³`` sub-voxels: partial volume as
   a real acquisition integrates it, so a 2 mm voxel straddling white matter and cortex has an
   intermediate intensity while its target is the label at its centre;
3. acquisition: a smooth multiplicative bias field, Gaussian blur and downsampling to a random
   (possibly thick-slice) resolution, noise, and back to the working resolution;
4. intensities clipped at 0, scaled to [0, 1], gamma;
5. the target: the patch's labels merged to the model's classes (16 brain classes by default).

Everything is torch on the CPU, separable matrix products instead of 3D convolutions (see
:mod:`medseg.transforms.synth_ops`), no per-voxel Python loops and no global state: the output
depends only on the label map and the ``torch.Generator`` passed in.

Example:
    >>> gen = SynthGenerator(patch_size=(96, 96, 96), spacing_mm=2.0)  # doctest: +SKIP
    >>> image, target = gen(torch.from_numpy(labels), torch.Generator().manual_seed(0))  # doctest: +SKIP
    >>> image.shape, target.dtype  # doctest: +SKIP
    (torch.Size([1, 96, 96, 96]), torch.int64)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from medseg.errors import ConfigError, InvalidInputError
from medseg.labels import freesurfer
from medseg.transforms.synth_ops import (
    Matrices,
    apply_separable,
    centre_interp_matrix,
    corner_interp_matrix,
    gaussian_resample_matrix,
    lookup,
)
from medseg.transforms.synth_params import SynthConfig, SynthParams, Vec3, sample_synth_params

__all__ = ["SynthConfig", "SynthGenerator", "SynthParams", "SynthSample", "SynthTables", "render_synth",
           "supersampling"]

#: Blur below this sigma (in working voxels) is skipped.
_MIN_SIGMA_VOX = 0.05
#: Patch centres are drawn from the brain voxels of every 2nd voxel along each axis.
_CENTRE_STRIDE = 2
#: Label maps whose check and brain voxels a generator remembers.
_MAX_CACHED_MAPS = 64


class SynthSample(NamedTuple):
    """One synthetic training pair.

    Attributes:
        image: float32 ``[1, X, Y, Z]`` in [0, 1].
        target: int64 ``[X, Y, Z]``, class values (0 = background).
    """

    image: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True, eq=False)
class SynthTables:
    """Lookup tables indexed by source label value (``0 .. L-1``).

    Attributes:
        target: int64 ``[L]``, source label → output class.
        group: int64 ``[L]``, source label → intensity group (``0 .. L-1``); labels of one group
            share one random intensity.
        strip: uint8 ``[L]``, source label → 0 outside the brain, 1 brain, 2 CSF (removed or kept
            at random when skull stripping).
        tissue: int64 ``[L]`` or ``None``, intensity group → tissue class for the tissue prior
            (:func:`medseg.labels.freesurfer.tissue_lut`: 0 none, 1 white, 2 grey matter, 3 CSF,
            4 deep nuclei); ``None`` switches the prior off.
    """

    target: torch.Tensor
    group: torch.Tensor
    strip: torch.Tensor
    tissue: torch.Tensor | None = None

    def __post_init__(self) -> None:
        tables = (self.target, self.group, self.strip) + (() if self.tissue is None else (self.tissue,))
        sizes = {t.shape for t in tables}
        if len(sizes) != 1 or self.target.ndim != 1:
            raise ConfigError(f"synth lookup tables must be 1D and equally long; got shapes {sorted(sizes)}")
        n = self.target.shape[0]
        if int(self.group.min()) < 0 or int(self.group.max()) >= n:
            raise ConfigError(f"synth intensity groups must lie in 0..{n - 1}")

    @property
    def size(self) -> int:
        """Number of source label values covered (valid values are ``0 .. size - 1``)."""
        return int(self.target.shape[0])

    @classmethod
    def from_arrays(
        cls, target: npt.ArrayLike, group: npt.ArrayLike, strip: npt.ArrayLike, tissue: npt.ArrayLike | None = None
    ) -> SynthTables:
        """Tables from three (or four) equally long integer arrays (see the attributes)."""
        return cls(
            target=torch.as_tensor(np.asarray(target, dtype=np.int64)),
            group=torch.as_tensor(np.asarray(group, dtype=np.int64)),
            strip=torch.as_tensor(np.asarray(strip, dtype=np.uint8)),
            tissue=None if tissue is None else torch.as_tensor(np.asarray(tissue, dtype=np.int64)),
        )

    @classmethod
    def freesurfer_brain16(cls) -> SynthTables:
        """FreeSurfer label maps → the 16 brain classes of :mod:`medseg.labels.freesurfer`."""
        return cls.from_arrays(
            freesurfer.brain16_lut(), freesurfer.intensity_group_lut(), freesurfer.skull_strip_lut(),
            freesurfer.tissue_lut(),
        )


class SynthGenerator:
    """Callable that turns a label map into a random synthetic image and its target.

    Args:
        config: ranges of the random model (SynthSeg defaults).
        patch_size: output ``(X, Y, Z)`` voxels, each ≥ 4.
        spacing_mm: voxel size of the patches, mm; one number if isotropic.
        map_spacing_mm: voxel size of the label maps, mm (default ``spacing_mm``); ``spacing_mm``
            divided by it must be a whole number per axis (partial volume from that many
            sub-voxels, see :func:`render_synth`).
        tables: label lookup tables; default FreeSurfer → 16 brain classes.
    """

    def __init__(
        self,
        config: SynthConfig | None = None,
        *,
        patch_size: Sequence[int],
        spacing_mm: float | Sequence[float],
        map_spacing_mm: float | Sequence[float] | None = None,
        tables: SynthTables | None = None,
    ) -> None:
        self.config = config if config is not None else SynthConfig()
        self.patch_size = _patch_size(patch_size)
        self.spacing_mm = _spacing(spacing_mm)
        self.map_spacing_mm = self.spacing_mm if map_spacing_mm is None else _spacing(map_spacing_mm)
        supersampling(self.spacing_mm, self.map_spacing_mm)  # validates
        self.tables = tables if tables is not None else SynthTables.freesurfer_brain16()
        self._checked: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, label_map: torch.Tensor, generator: torch.Generator) -> SynthSample:
        """A random (image, target) patch from ``label_map`` ``[I, J, K]`` (source label values,
        RAS, at ``map_spacing_mm``); all randomness comes from ``generator``."""
        return self._render(label_map, self._sample(label_map, generator))

    def sample_params(self, label_map: torch.Tensor, generator: torch.Generator) -> SynthParams:
        """Draw the random parameters for ``label_map`` (the crop centre depends on its brain)."""
        return self._sample(label_map, generator)

    def render(self, label_map: torch.Tensor, params: SynthParams) -> SynthSample:
        """Deterministic: the sample that ``params`` describe."""
        self._candidates(label_map)
        return self._render(label_map, params)

    def _candidates(self, label_map: torch.Tensor) -> torch.Tensor:
        """Check ``label_map`` and find its brain voxels, once per tensor object (label maps are
        not to be modified in place between calls)."""
        entry = self._checked.get(id(label_map))
        if entry is not None and entry[0] is label_map:
            return entry[1]
        _check_label_map(label_map, self.tables)
        if len(self._checked) >= _MAX_CACHED_MAPS:
            self._checked.clear()
        candidates = brain_voxels(label_map, self.tables)
        self._checked[id(label_map)] = (label_map, candidates)  # the reference keeps the id unique
        return candidates

    def _sample(self, label_map: torch.Tensor, generator: torch.Generator) -> SynthParams:
        return sample_synth_params(
            self.config,
            centre_candidates=self._candidates(label_map),
            patch_size=self.patch_size,
            spacing_mm=self.spacing_mm,
            n_groups=self.tables.size,
            background_group=int(self.tables.group[0]),
            generator=generator,
            tissue=self.tables.tissue,
        )

    def _render(self, label_map: torch.Tensor, params: SynthParams) -> SynthSample:
        return render_synth(label_map, params, patch_size=self.patch_size, spacing_mm=self.spacing_mm,
                            tables=self.tables, map_spacing_mm=self.map_spacing_mm)


def render_synth(
    label_map: torch.Tensor,
    params: SynthParams,
    *,
    patch_size: tuple[int, int, int],
    spacing_mm: Vec3,
    tables: SynthTables,
    map_spacing_mm: Vec3 | None = None,
) -> SynthSample:
    """Make the image and target that ``params`` describe (no randomness beyond ``params``).

    The target (and the texture and skull-stripping roles) come from the label at each patch
    voxel's centre. With a label map ``f`` times finer than the patch along an axis, a voxel's
    mean intensity averages its ``f_x f_y f_z`` sub-voxels' label means (partial volume).

    Args:
        label_map: ``[I, J, K]`` source label values (integer, or float holding whole numbers).
        params: from :func:`~medseg.transforms.synth_params.sample_synth_params`.
        patch_size: output ``(X, Y, Z)``.
        spacing_mm: voxel size of the patch, mm.
        tables: label lookup tables.
        map_spacing_mm: voxel size of the label map, mm (default ``spacing_mm``).
    """
    map_spacing = spacing_mm if map_spacing_mm is None else map_spacing_mm
    factors = supersampling(spacing_mm, map_spacing)
    grid = sampling_grid(label_map.shape, params, patch_size=patch_size, spacing_mm=spacing_mm,
                         map_spacing_mm=map_spacing)
    labels = label_map if label_map.dtype == torch.float32 else label_map.to(torch.float32)
    source = nearest_labels(labels, grid)
    noise = torch.Generator().manual_seed(params.noise_seed)
    group = lookup(tables.group, source)
    texture = torch.randn(patch_size, generator=noise)
    if factors == (1, 1, 1):
        mean = lookup(params.means, group)
    else:
        fine_grid = subvoxel_grid(grid, params.linear, factors=factors, spacing_mm=spacing_mm,
                                  map_spacing_mm=map_spacing, map_shape=label_map.shape)
        fine = lookup(lookup(params.means, tables.group), nearest_labels(labels, fine_grid))
        mean = F.avg_pool3d(fine[None, None], kernel_size=factors)[0, 0]
    image = mean + lookup(params.stds, group) * texture
    image = acquire(image, params, spacing_mm=spacing_mm, noise=noise)
    if params.skull_strip:
        image *= skull_strip_mask(lookup(tables.strip, source), tight=params.strip_outer_csf)
    low, high = torch.aminmax(image)
    image = (image - low) / torch.clamp(high - low, min=1e-6)
    if params.gamma != 1.0:
        image = image.pow_(params.gamma)
    return SynthSample(image=image[None], target=lookup(tables.target, source))


def sample_labels(
    label_map: torch.Tensor,
    params: SynthParams,
    *,
    patch_size: tuple[int, int, int],
    spacing_mm: Vec3,
    map_spacing_mm: Vec3 | None = None,
) -> torch.Tensor:
    """Source labels at the deformed patch's voxel centres, int64 ``[X, Y, Z]`` (0 outside the
    label map); ``spacing_mm`` is the patch's voxel size, ``map_spacing_mm`` the map's (default
    the same)."""
    grid = sampling_grid(label_map.shape, params, patch_size=patch_size, spacing_mm=spacing_mm,
                         map_spacing_mm=spacing_mm if map_spacing_mm is None else map_spacing_mm)
    labels = label_map if label_map.dtype == torch.float32 else label_map.to(torch.float32)
    return nearest_labels(labels, grid)


def sampling_grid(
    map_shape: Sequence[int],
    params: SynthParams,
    *,
    patch_size: tuple[int, int, int],
    spacing_mm: Vec3,
    map_spacing_mm: Vec3,
) -> torch.Tensor:
    """Where each patch voxel centre samples the label map: float32 ``[X, Y, Z, 3]``, ``grid_sample``
    coordinates (``(k, j, i)``, normalised to [-1, 1], ``align_corners=True``).

    The grid is the affine map plus the elastic displacement, both known at the elastic control
    points; linear interpolation between them reproduces the affine part exactly, so the whole
    grid is one separable upsampling of a small control grid.
    """
    grid = _control_grid(map_shape, params, patch_size=patch_size, spacing_mm=spacing_mm,
                         map_spacing_mm=map_spacing_mm)
    m = [corner_interp_matrix(p, n) for p, n in zip(patch_size, grid.shape[:3], strict=True)]
    return apply_separable(grid, (m[0], m[1], m[2]))


def nearest_labels(labels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour labels of float32 ``labels [I, J, K]`` at ``grid [X, Y, Z, 3]``
    (:func:`sampling_grid` coordinates): int64 ``[X, Y, Z]``, 0 outside the map."""
    sampled = F.grid_sample(labels[None, None], grid[None], mode="nearest", padding_mode="zeros",
                            align_corners=True)
    return sampled[0, 0].to(torch.int64)


def subvoxel_grid(
    grid: torch.Tensor,
    linear: torch.Tensor,
    *,
    factors: tuple[int, int, int],
    spacing_mm: Vec3,
    map_spacing_mm: Vec3,
    map_shape: Sequence[int],
) -> torch.Tensor:
    """The centres of each patch voxel's ``f_x f_y f_z`` equal sub-voxels: float32
    ``[f_x X, f_y Y, f_z Z, 3]`` in :func:`sampling_grid` coordinates.

    A sub-voxel's offset from its voxel centre is mapped by the affine part (``linear``, patch mm →
    label-map mm) only; the elastic field varies over tens of millimetres, so its change within
    one voxel (well under 0.1 mm for the default ranges) is neglected.
    """
    x, y, z = grid.shape[:3]
    size = torch.tensor([max(n - 1, 1) for n in map_shape], dtype=torch.float64)
    axes = [(torch.arange(f, dtype=torch.float64) - (f - 1) / 2) * (s / f)
            for f, s in zip(factors, spacing_mm, strict=True)]
    offsets_mm = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # [fx, fy, fz, 3] patch mm
    moved = (offsets_mm @ linear.T) / torch.tensor(map_spacing_mm, dtype=torch.float64)  # map voxels (i, j, k)
    delta = (2.0 * moved / size).flip(-1).to(torch.float32)  # normalised, (k, j, i)
    fx, fy, fz = factors
    fine = grid[:, None, :, None, :, None, :] + delta[None, :, None, :, None, :, :]
    return fine.reshape(x * fx, y * fy, z * fz, 3)


def supersampling(spacing_mm: Vec3, map_spacing_mm: Vec3) -> tuple[int, int, int]:
    """Sub-voxels per patch voxel along each axis: ``spacing_mm / map_spacing_mm``, which must be
    a whole number ≥ 1 (within 1 %); raises :class:`ConfigError` otherwise."""
    factors = []
    for s, m in zip(spacing_mm, map_spacing_mm, strict=True):
        f = round(s / m)
        if f < 1 or abs(s / m - f) > 0.01 * f:
            raise ConfigError(
                f"the patch spacing {list(spacing_mm)} mm must be a whole multiple of the label maps' "
                f"spacing {list(map_spacing_mm)} mm (e.g. 2 mm patches from 1 mm maps)"
            )
        factors.append(f)
    return (factors[0], factors[1], factors[2])


def _control_grid(
    map_shape: Sequence[int], params: SynthParams, *, patch_size: tuple[int, int, int], spacing_mm: Vec3,
    map_spacing_mm: Vec3,
) -> torch.Tensor:
    """``grid_sample`` coordinates at the elastic control points: float32 ``[n0, n1, n2, 3]``,
    last axis ``(k, j, i)`` normalised to [-1, 1] over the label map (``align_corners=True``)."""
    n = params.elastic_mm.shape[:3]
    spacing = torch.tensor(spacing_mm, dtype=torch.float64)
    map_spacing = torch.tensor(map_spacing_mm, dtype=torch.float64)
    axes = [torch.linspace(0, p - 1, c, dtype=torch.float64) - p // 2
            for p, c in zip(patch_size, n, strict=True)]
    offsets_mm = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1) * spacing  # [n0, n1, n2, 3]
    moved_mm = offsets_mm @ params.linear.T + params.elastic_mm.to(torch.float64)
    # With f sub-voxels per voxel (f even), centre the patch on a voxel corner of the map, so that
    # without deformation the sub-voxel centres fall on map voxel centres (exact box averages).
    half = torch.tensor([0.5 * (round(s / m) % 2 == 0) for s, m in zip(spacing_mm, map_spacing_mm, strict=True)],
                        dtype=torch.float64)
    vox = torch.tensor(params.centre_vox, dtype=torch.float64) + half + moved_mm / map_spacing
    size = torch.tensor([max(s - 1, 1) for s in map_shape], dtype=torch.float64)
    normalised = 2.0 * vox / size - 1.0
    return normalised.flip(-1).to(torch.float32).contiguous()


def acquire(
    image: torch.Tensor, params: SynthParams, *, spacing_mm: Vec3, noise: torch.Generator
) -> torch.Tensor:
    """Bias, blur, downsample to the acquisition resolution, add noise, upsample back, clip at 0.

    Args:
        image: float32 ``[X, Y, Z]`` at the working resolution.
        params: bias field, resolution, blur and noise level.
        spacing_mm: working voxel size, mm.
        noise: generator of the per-voxel noise.

    Returns:
        float32 ``[X, Y, Z]``, non-negative.
    """
    down: list[torch.Tensor | None] = []
    up: list[torch.Tensor | None] = []
    axes = zip(image.shape, spacing_mm, params.resolution_mm, params.blur_sigma_mm, strict=True)
    for n, s, res, sigma in axes:
        n_low = max(2, round(n * s / res)) if res > s * (1 + 1e-6) else n
        sigma_vox = sigma / s
        if n_low == n and sigma_vox < _MIN_SIGMA_VOX:
            down.append(None)
            up.append(None)
            continue
        down.append(gaussian_resample_matrix(n_low, n, sigma_vox=sigma_vox))
        up.append(centre_interp_matrix(n, n_low) if n_low != n else None)
    low = apply_separable(image, (down[0], down[1], down[2]))
    bias_mats = [corner_interp_matrix(n, c) for n, c in zip(low.shape, params.bias_log.shape, strict=True)]
    low = low * torch.exp(apply_separable(params.bias_log, (bias_mats[0], bias_mats[1], bias_mats[2])))
    if params.noise_std > 0:
        low = low + params.noise_std * torch.randn(low.shape, generator=noise)
    up_mats: Matrices = (up[0], up[1], up[2])
    return apply_separable(low, up_mats).clamp_(min=0.0)


def skull_strip_mask(role: torch.Tensor, *, tight: bool) -> torch.Tensor:
    """Voxels a skull-stripping mask keeps: brain (``role == 1``) and CSF (``role == 2``); with
    ``tight``, only CSF within one voxel (26-neighbourhood) of the brain. Bool ``[X, Y, Z]``."""
    brain = role == 1
    csf = role == 2
    return brain | (csf & dilate_box(brain)) if tight else brain | csf


def dilate_box(mask: torch.Tensor) -> torch.Tensor:
    """Binary dilation of a bool ``[X, Y, Z]`` mask by a 3×3×3 box (separable shifted ORs)."""
    out = mask.clone()
    for axis in range(3):
        src = out.clone()
        n = src.shape[axis]
        out.narrow(axis, 1, n - 1).logical_or_(src.narrow(axis, 0, n - 1))
        out.narrow(axis, 0, n - 1).logical_or_(src.narrow(axis, 1, n - 1))
    return out


def brain_voxels(label_map: torch.Tensor, tables: SynthTables) -> torch.Tensor:
    """Voxels ``(i, j, k)`` with a non-zero target class on every ``_CENTRE_STRIDE``-th voxel along each
    axis (int64 ``[N, 3]``); the map's centre if there are none."""
    s = _CENTRE_STRIDE
    coarse = lookup(tables.target, label_map[::s, ::s, ::s].to(torch.int64)) > 0
    voxels = torch.nonzero(coarse) * s
    if len(voxels) == 0:
        return torch.tensor([[n // 2 for n in label_map.shape]], dtype=torch.int64)
    return voxels


def _check_label_map(label_map: torch.Tensor, tables: SynthTables) -> None:
    if label_map.ndim != 3:
        raise InvalidInputError(
            f"a label map for synthesis must be [I, J, K]; got shape {tuple(label_map.shape)}"
        )
    if label_map.dtype.is_complex or label_map.dtype == torch.bool:
        raise InvalidInputError(
            f"a label map for synthesis must hold label numbers; got dtype {label_map.dtype}"
        )
    low, high = (int(v) for v in torch.aminmax(label_map))
    if low < 0 or high >= tables.size:
        raise InvalidInputError(
            f"label values span {low}..{high}; the synthesis lookup tables cover 0..{tables.size - 1}"
        )
    if label_map.dtype.is_floating_point and not bool(torch.equal(label_map, torch.round(label_map))):
        raise InvalidInputError(
            "label map holds fractional values; resample label maps with nearest neighbour or majority vote"
        )


def _patch_size(patch_size: Sequence[int]) -> tuple[int, int, int]:
    p = tuple(int(v) for v in patch_size)
    if len(p) != 3 or min(p) < 4:
        raise ConfigError(f"patch_size must be three sizes ≥ 4 voxels, got {tuple(patch_size)!r}")
    return (p[0], p[1], p[2])


def _spacing(spacing_mm: float | Sequence[float]) -> Vec3:
    if isinstance(spacing_mm, int | float):
        spacing_mm = (spacing_mm, spacing_mm, spacing_mm)
    s = tuple(float(v) for v in spacing_mm)
    if len(s) != 3 or min(s) <= 0:
        raise ConfigError(f"spacing_mm must be one or three positive sizes in mm, got {spacing_mm!r}")
    return (s[0], s[1], s[2])

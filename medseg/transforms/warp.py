"""Deterministic spatial warps of training patches: rotation, scaling, mirroring and elastic
deformation applied together with ONE ``grid_sample`` per tensor.

Conventions: arrays are ``[c, x, y, z]``; a warp maps each output voxel ``o`` of the patch to the
source position ``centre + M @ (o - (P - 1) / 2) + d(o)`` (voxels), where ``M`` is a 3×3 matrix
(:func:`warp_matrix`), ``centre`` the source point the patch centre comes from and ``d`` an
optional displacement field ``[3, *P]`` in voxels. Rotations act in millimetres (``spacing_mm``), so
anisotropic voxels are rotated without shear. Images use trilinear and labels nearest-neighbour
interpolation; positions outside the source read 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Triple = tuple[int, int, int]


def warp_matrix(
    *,
    angles_rad: Sequence[float] = (0.0, 0.0, 0.0),
    scale: Sequence[float] = (1.0, 1.0, 1.0),
    flips: Sequence[bool] = (False, False, False),
    spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
) -> npt.NDArray[np.float64]:
    """Matrix from output voxel offsets to source voxel offsets.

    Args:
        angles_rad: rotation about the x, y and z axes (applied x, then y, then z), radians.
        scale: zoom per axis; > 1 enlarges the content (samples a smaller source region).
        flips: mirror the output along each axis.
        spacing_mm: voxel size, so rotations are rigid in millimetres.
    """
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    d = np.diag(np.asarray(spacing_mm, dtype=np.float64))
    rotation = np.linalg.inv(d) @ (rz @ ry @ rx) @ d
    flip = np.diag([-1.0 if f else 1.0 for f in flips])
    return rotation @ np.diag(1.0 / np.asarray(scale, dtype=np.float64)) @ flip


def source_box(
    matrix: npt.NDArray[np.float64], patch_size: Sequence[int], centre: Sequence[float], *, margin_vox: float = 0.0
) -> tuple[Triple, Triple]:
    """Integer box ``(start, size)`` of source voxels a warp reads (one voxel extra for interpolation).

    Args:
        matrix: from :func:`warp_matrix`.
        patch_size: output patch size.
        centre: source position of the patch centre (voxels).
        margin_vox: largest displacement magnitude per axis (elastic), voxels.
    """
    half = (np.asarray(patch_size, dtype=np.float64) - 1) / 2
    reach = np.abs(matrix) @ half + margin_vox
    lo = np.floor(np.asarray(centre) - reach).astype(int) - 1
    hi = np.ceil(np.asarray(centre) + reach).astype(int) + 2
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0] - lo[0]), int(hi[1] - lo[1]), int(hi[2] - lo[2]))


def elastic_displacement(
    patch_size: Sequence[int], *, magnitude_vox: float, control_spacing_vox: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Smooth random displacement ``[3, *patch_size]`` (voxels): Gaussian noise of standard deviation
    ``magnitude_vox`` on a coarse control grid (one point every ``control_spacing_vox``), trilinearly
    upsampled."""
    import torch
    import torch.nn.functional as F

    coarse_shape = [max(2, int(np.ceil(p / control_spacing_vox)) + 1) for p in patch_size]
    coarse = rng.normal(0.0, magnitude_vox, size=(1, 3, *coarse_shape)).astype(np.float32)
    with torch.inference_mode():
        fine = F.interpolate(torch.from_numpy(coarse), size=tuple(int(p) for p in patch_size), mode="trilinear",
                             align_corners=True)
    return fine[0].numpy()


def warp_patch(
    image: npt.NDArray[np.float32],
    label: npt.NDArray[Any] | None,
    matrix: npt.NDArray[np.float64],
    centre: Sequence[float],
    patch_size: Sequence[int],
    *,
    displacement: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any] | None]:
    """Resample ``image [c, *S]`` (trilinear) and ``label [*S]`` (nearest) onto the warped patch.

    Args:
        image, label: the source region; ``centre`` is given in its voxel coordinates.
        matrix: output → source offset matrix (:func:`warp_matrix`).
        centre: source position of the patch centre.
        patch_size: output size ``P``.
        displacement: optional ``[3, *P]`` extra source offsets (voxels).

    Returns:
        ``image [c, *P]`` float32 and ``label [*P]`` (same dtype as ``label``), or ``None``.
    """
    import torch
    import torch.nn.functional as F

    grid = _sampling_grid(matrix, centre, patch_size, image.shape[-3:], displacement)
    with torch.inference_mode():
        src = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0].numpy()
        warped_label = None
        if label is not None:
            lab = torch.from_numpy(np.ascontiguousarray(label).astype(np.float32))[None, None]
            warped = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
            warped_label = warped[0, 0].numpy().astype(label.dtype)
    return out, warped_label


def _sampling_grid(
    matrix: npt.NDArray[np.float64],
    centre: Sequence[float],
    patch_size: Sequence[int],
    source_shape: Sequence[int],
    displacement: npt.NDArray[np.float32] | None,
) -> Any:
    """``grid_sample`` grid ``[1, *P, 3]`` (normalised, last axis ordered z, y, x as PyTorch wants)."""
    import torch

    axes = [torch.arange(p, dtype=torch.float32) - (p - 1) / 2 for p in patch_size]
    q = [axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]]
    m = torch.as_tensor(matrix, dtype=torch.float32)
    coords = []
    for i in range(3):
        c = m[i, 0] * q[0] + m[i, 1] * q[1] + m[i, 2] * q[2] + float(centre[i])
        if displacement is not None:
            c = c + torch.from_numpy(displacement[i])
        # voxel index -> normalised coordinate (align_corners=False)
        coords.append(c * (2.0 / source_shape[i]) + (1.0 / source_shape[i] - 1.0))
    return torch.stack(coords[::-1], dim=-1)[None]

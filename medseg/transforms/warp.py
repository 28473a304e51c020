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

    The sources may be whole cases (memory-mapped): only the voxels the warp reads are touched, and
    positions outside them read 0, so no source region needs to be cut first.

    Args:
        image, label: the source; ``centre`` is given in its voxel coordinates. A C-contiguous
            float32 ``image`` is used without a copy (a memory map must be writable, e.g. mode ``"c"``).
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
    warped_label = None if label is None else nearest_gather(label, matrix, centre, patch_size, displacement)
    return out, warped_label


def nearest_gather(
    label: npt.NDArray[Any],
    matrix: npt.NDArray[np.float64],
    centre: Sequence[float],
    patch_size: Sequence[int],
    displacement: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[Any]:
    """Nearest-neighbour warp of ``label [*S]`` (any integer dtype, 0 outside): the value at the
    rounded source position of each output voxel, gathered by flat index (half the CPU time of
    ``grid_sample(mode="nearest")`` on a float copy, and no copy of the source)."""
    shape = label.shape[-3:]
    strides = (shape[1] * shape[2], shape[2], 1)
    if np.prod(shape, dtype=np.int64) >= 2**32:
        raise ValueError(f"label map of {shape} voxels is too large for 32-bit voxel indices")
    q = [np.arange(p, dtype=np.float32) - np.float32((p - 1) / 2) for p in patch_size]
    size = tuple(int(p) for p in patch_size)
    flat = np.zeros(size, np.uint32)
    inside = np.ones(size, bool)
    pos = np.empty(size, np.float32)
    index = np.empty(size, np.int32)
    unsigned = index.view(np.uint32)  # negative indices become huge: one comparison checks both bounds
    for i in range(3):
        m = matrix[i].astype(np.float32)
        np.add((m[0] * q[0])[:, None, None] + (m[1] * q[1])[None, :, None],
               (m[2] * q[2] + np.float32(centre[i]))[None, None, :], out=pos)
        if displacement is not None:
            pos += displacement[i]
        np.rint(pos, out=pos)
        index[...] = pos
        inside &= unsigned < shape[i]
        np.minimum(unsigned, shape[i] - 1, out=unsigned)
        unsigned *= strides[i]
        flat += unsigned
    out = np.take(np.asarray(label).reshape(-1), flat)
    out[~inside] = 0
    return out


def _sampling_grid(
    matrix: npt.NDArray[np.float64],
    centre: Sequence[float],
    patch_size: Sequence[int],
    source_shape: Sequence[int],
    displacement: npt.NDArray[np.float32] | None,
) -> Any:
    """``grid_sample`` grid ``[1, *P, 3]`` (normalised, last axis ordered z, y, x as PyTorch wants).

    The normalised coordinate is affine in the output index, ``A @ q + b`` with
    ``A = diag(2 / S) @ matrix`` and ``b = (2 centre + 1) / S - 1`` (``align_corners=False``), so the
    grid is the broadcast sum of an ``[X, Y, 1, 3]`` and a ``[1, 1, Z, 3]`` term: one full-size pass.
    """
    import torch

    size = np.asarray(source_shape, dtype=np.float64)
    a = (2.0 / size)[:, None] * np.asarray(matrix, dtype=np.float64)
    b = (2.0 * np.asarray(centre, dtype=np.float64) + 1.0) / size - 1.0
    a, b = a[::-1], b[::-1]  # PyTorch orders the grid's last axis (z, y, x)
    q = [torch.arange(p, dtype=torch.float64) - (p - 1) / 2 for p in patch_size]
    cols = torch.as_tensor(a.T.copy())  # cols[j] = contribution of output axis j to (z, y, x)
    xy = q[0][:, None, None, None] * cols[0] + q[1][None, :, None, None] * cols[1]
    z = q[2][None, None, :, None] * cols[2] + torch.as_tensor(b.copy())
    grid = xy.float() + z.float()
    if displacement is not None:
        scale = torch.as_tensor((2.0 / size)[::-1].copy(), dtype=torch.float32)
        grid += torch.from_numpy(displacement[::-1].copy()).permute(1, 2, 3, 0) * scale
    return grid[None]

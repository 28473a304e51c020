"""Pure spatial functions on voxel arrays and their affines: reorient, crop, pad, resample.

Resampling uses the "voxel centres" convention (PyTorch ``align_corners=False``, SciPy
``grid_mode=True``): an axis of ``n`` voxels resampled to ``m`` voxels keeps the same physical
extent, and output voxel ``x`` samples input position ``(x + 0.5) * n / m - 0.5``. The matching
affine is :func:`resampled_affine`, so geometry stays exact and every step is invertible.

Arrays are ``[i, j, k]`` or ``[c, i, j, k]``; bounding boxes are ``((lo, hi), ...)`` per spatial
axis with ``hi`` exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import nibabel as nib
import numpy as np
import numpy.typing as npt

Shape3 = tuple[int, int, int]
BBox = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
Array = npt.NDArray[Any]
Interpolation = Literal["nearest", "linear", "spline3"]


# --- orientation ------------------------------------------------------------------------------
def ras_orientation(affine: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """nibabel orientation transform that permutes/flips voxel axes to the closest RAS order."""
    return nib.orientations.io_orientation(affine)


def reorient_array(array: Array, ornt: npt.NDArray[np.float64]) -> Array:
    """Apply an orientation transform to the spatial axes of ``[i,j,k]`` or ``[c,i,j,k]``."""
    if array.ndim == 4:
        return np.stack([nib.orientations.apply_orientation(a, ornt) for a in array])
    return nib.orientations.apply_orientation(array, ornt)


def reoriented_affine(
    affine: npt.NDArray[np.float64], ornt: npt.NDArray[np.float64], shape: Shape3
) -> npt.NDArray[np.float64]:
    """Affine of an array of spatial ``shape`` after :func:`reorient_array` with ``ornt``."""
    return affine @ nib.orientations.inv_ornt_aff(ornt, shape)


def inverse_orientation(ornt: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The orientation transform that undoes ``ornt``."""
    identity = np.array([[0, 1], [1, 1], [2, 1]], dtype=np.float64)
    return nib.orientations.ornt_transform(identity, ornt)


def oriented_shape(shape: Shape3, ornt: npt.NDArray[np.float64]) -> Shape3:
    """Spatial shape after reorienting an array of ``shape`` with ``ornt``."""
    out = [0, 0, 0]
    for src, (dst, _) in enumerate(ornt):
        out[int(dst)] = shape[src]
    return (out[0], out[1], out[2])


# --- cropping ---------------------------------------------------------------------------------
def nonzero_bbox(array: Array) -> BBox:
    """Bounding box of voxels that are nonzero in any channel (the full array if all are zero)."""
    mask = np.any(array != 0, axis=0) if array.ndim == 4 else array != 0
    if not mask.any():
        return _full_bbox(mask.shape)
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append((int(hits[0]), int(hits[-1]) + 1))
    return (box[0], box[1], box[2])


def _full_bbox(shape: Sequence[int]) -> BBox:
    return ((0, int(shape[0])), (0, int(shape[1])), (0, int(shape[2])))


def crop(array: Array, bbox: BBox) -> Array:
    """Crop the spatial axes of ``array`` to ``bbox``."""
    sl = tuple(slice(lo, hi) for lo, hi in bbox)
    return array[(Ellipsis, *sl)]


def cropped_affine(affine: npt.NDArray[np.float64], bbox: BBox) -> npt.NDArray[np.float64]:
    """Affine of ``crop(array, bbox)``: the origin moves to the box's first voxel."""
    shift = np.eye(4)
    shift[:3, 3] = [lo for lo, _ in bbox]
    return affine @ shift


def uncrop(array: Array, bbox: BBox, shape: Shape3, *, fill: float | Sequence[float] = 0) -> Array:
    """Place ``array`` (cropped by ``bbox``) back into an array of spatial ``shape``.

    Args:
        fill: value outside the box; for ``[c, ...]`` arrays, one value per channel allowed.
    """
    lead = array.shape[:-3]
    out = np.empty((*lead, *shape), dtype=array.dtype)
    if array.ndim == 4 and not np.isscalar(fill):
        for c, value in enumerate(fill):  # type: ignore[union-attr]
            out[c] = value
    else:
        out[...] = fill
    sl = tuple(slice(lo, hi) for lo, hi in bbox)
    out[(Ellipsis, *sl)] = array
    return out


# --- resampling -------------------------------------------------------------------------------
def shape_for_spacing(shape: Shape3, spacing_mm: Sequence[float], target_mm: Sequence[float]) -> Shape3:
    """Voxel count along each axis that keeps the physical extent at ``target_mm`` spacing."""
    out = [max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing_mm, target_mm, strict=True)]
    return (out[0], out[1], out[2])


def resampled_affine(affine: npt.NDArray[np.float64], old_shape: Shape3, new_shape: Shape3) -> npt.NDArray[np.float64]:
    """Affine after resampling ``old_shape`` → ``new_shape`` with the voxel-centres convention."""
    scale = np.asarray(old_shape, dtype=np.float64) / np.asarray(new_shape, dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = np.diag(scale)
    m[:3, 3] = 0.5 * scale - 0.5
    return affine @ m


def source_indices(old: int, new: int) -> npt.NDArray[np.int64]:
    """Nearest-neighbour source index of each of ``new`` output voxels along one axis."""
    idx = np.floor((np.arange(new) + 0.5) * (old / new)).astype(np.int64)
    return np.clip(idx, 0, old - 1)


def resample_array(
    array: Array, new_shape: Shape3, *, interpolation: Interpolation, slow_axis: int | None = None
) -> Array:
    """Resample the spatial axes of ``[i,j,k]`` or ``[c,i,j,k]`` to ``new_shape``.

    Args:
        interpolation: ``"nearest"`` (exact index lookup, any dtype), ``"linear"`` (PyTorch
            trilinear) or ``"spline3"`` (SciPy cubic B-spline); the last two return float32.
        slow_axis: if given, that axis is resampled with nearest neighbour and the other two with
            ``interpolation`` (nnU-Net's treatment of strongly anisotropic data).
    """
    old_shape = tuple(int(s) for s in array.shape[-3:])
    if old_shape == tuple(new_shape):
        return array
    if interpolation == "nearest":
        return _nearest(array, new_shape)
    if slow_axis is not None:
        in_plane = list(new_shape)
        in_plane[slow_axis] = old_shape[slow_axis]
        array = resample_array(array, (in_plane[0], in_plane[1], in_plane[2]), interpolation=interpolation)
        return _nearest(array, new_shape)
    if array.ndim == 4:
        return np.stack([resample_array(a, new_shape, interpolation=interpolation) for a in array])
    if interpolation == "linear":
        return _linear(array, new_shape)
    return _spline3(array, new_shape)


def _nearest(array: Array, new_shape: Shape3) -> Array:
    old = array.shape[-3:]
    ii, jj, kk = (source_indices(o, n) for o, n in zip(old, new_shape, strict=True))
    return array[..., ii[:, None, None], jj[None, :, None], kk[None, None, :]]


def _linear(array: Array, new_shape: Shape3) -> Array:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    with torch.inference_mode():
        out = F.interpolate(t, size=tuple(new_shape), mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


def _spline3(array: Array, new_shape: Shape3) -> Array:
    from scipy import ndimage

    zoom = [n / o for n, o in zip(new_shape, array.shape, strict=True)]
    out = ndimage.zoom(array.astype(np.float32, copy=False), zoom, order=3, mode="nearest", grid_mode=True,
                       output=np.float32)
    return out


def resample_labels_onehot(labels: Array, new_shape: Shape3, *, n_classes: int, slow_axis: int | None = None) -> Array:
    """Resample an integer label map by linear interpolation of each class's one-hot mask, then
    argmax (nnU-Net's default for segmentations). Returns ``uint8``/``int16`` labels of ``new_shape``.

    The result equals interpolating every one-hot mask over the whole grid (PyTorch trilinear,
    ``align_corners=False``; nearest along ``slow_axis``) and taking the argmax with ties going to
    the lower value, but each class is interpolated only inside its own bounding box (one voxel of
    margin) and background's share is ``1 - sum`` of the others, so the cost follows the structures'
    size rather than ``n_classes × volume``. Values ``≥ n_classes`` become background.
    """
    from scipy import ndimage

    old_shape = tuple(int(s) for s in labels.shape)
    tables = [_axis_weights(o, n, nearest=(a == slow_axis))
              for a, (o, n) in enumerate(zip(old_shape, new_shape, strict=True))]
    out = np.zeros(new_shape, dtype=np.uint8 if n_classes <= 256 else np.int16)
    best = np.zeros(new_shape, dtype=np.float32)
    total = np.zeros(new_shape, dtype=np.float32)
    lab = np.asarray(labels)
    boxes = ndimage.find_objects(np.where((lab > 0) & (lab < n_classes), lab, 0).astype(np.int32, copy=False))
    for value, box in enumerate(boxes, start=1):
        if box is None:
            continue
        out_sl, src_sl, weights = _class_window(box, tables)
        mask = (lab[src_sl] == value).astype(np.float32)
        prob = _separable_interpolate(mask, weights)
        total[out_sl] += prob
        region_best = best[out_sl]
        better = prob > region_best
        region_best[better] = prob[better]
        out[out_sl][better] = value
    out[best <= 1.0 - total] = 0
    return out


_AxisTable = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]


def _axis_weights(old: int, new: int, *, nearest: bool) -> _AxisTable:
    """Per output voxel along one axis: the two source indices and the weight of the second
    (PyTorch ``align_corners=False`` linear, or nearest as :func:`source_indices`)."""
    if old == new:
        idx = np.arange(new)
        return idx, idx, np.zeros(new, np.float32)
    if nearest:
        idx = source_indices(old, new)
        return idx, idx, np.zeros(new, np.float32)
    src = np.maximum((np.arange(new) + 0.5) * (old / new) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), old - 1)
    i1 = np.minimum(i0 + 1, old - 1)
    return i0, i1, (src - i0).astype(np.float32)


def _class_window(
    box: tuple[slice, ...], tables: list[_AxisTable]
) -> tuple[tuple[slice, ...], tuple[slice, ...], list[_AxisTable]]:
    """Output voxels a class box can reach, the source window they read, and local weight tables."""
    out_sl, src_sl, local = [], [], []
    for sl, (i0, i1, w) in zip(box, tables, strict=True):
        reach = np.flatnonzero(((i0 >= sl.start) & (i0 < sl.stop)) | ((i1 >= sl.start) & (i1 < sl.stop)))
        lo, hi = int(reach[0]), int(reach[-1]) + 1
        s_lo, s_hi = int(i0[lo:hi].min()), int(i1[lo:hi].max()) + 1
        out_sl.append(slice(lo, hi))
        src_sl.append(slice(s_lo, s_hi))
        local.append((i0[lo:hi] - s_lo, i1[lo:hi] - s_lo, w[lo:hi]))
    return tuple(out_sl), tuple(src_sl), local


def _separable_interpolate(values: npt.NDArray[np.float32], tables: list[_AxisTable]) -> npt.NDArray[np.float32]:
    """Linear interpolation of a 3D array, one axis at a time, with per-axis weight tables."""
    out = values
    for axis, (i0, i1, w) in enumerate(tables):
        shape = [1, 1, 1]
        shape[axis] = len(w)
        a = np.take(out, i0, axis=axis)
        if np.any(w):
            b = np.take(out, i1, axis=axis)
            wr = w.reshape(shape)
            a = a * (1.0 - wr) + b * wr
        out = a
    return out.astype(np.float32, copy=False)

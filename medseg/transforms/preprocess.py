"""Plan-driven preprocessing that records what it did, and its exact inverse.

Forward (image): reorient to the closest RAS axis order (a permutation/flip, no interpolation) →
crop to the nonzero bounding box → normalise each channel → resample to the plan's spacing
(slow axis separately for strongly anisotropic cases). Labels follow the same record.

Inverse: resample back to the cropped grid → pad to the canonical grid → undo the reorientation,
giving an array on exactly the original voxel grid. A :class:`PreprocessRecord` holds everything
needed, and the affines of every intermediate grid are derived from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from medseg.data.plan import Plan
from medseg.errors import InvalidInputError
from medseg.io.volume import Volume, VolumeMeta, grid_difference
from medseg.transforms import spatial
from medseg.transforms.intensity import normalize_channel
from medseg.transforms.spatial import BBox, Shape3


@dataclass(frozen=True)
class PreprocessRecord:
    """What preprocessing did to one case.

    Attributes:
        original_shape: spatial shape of the input, file axis order.
        original_affine: voxel → RAS affine of the input.
        ornt: nibabel orientation transform from the input axes to the closest RAS axes.
        bbox: crop box in the canonical (reoriented) grid, ``hi`` exclusive.
        resampled_shape: spatial shape on the network grid.
        slow_axis: canonical axis resampled separately with nearest neighbour, if any.
    """

    original_shape: Shape3
    original_affine: npt.NDArray[np.float64]
    ornt: npt.NDArray[np.float64]
    bbox: BBox
    resampled_shape: Shape3
    slow_axis: int | None

    @property
    def canonical_shape(self) -> Shape3:
        return spatial.oriented_shape(self.original_shape, self.ornt)

    @property
    def canonical_affine(self) -> npt.NDArray[np.float64]:
        return spatial.reoriented_affine(self.original_affine, self.ornt, self.original_shape)

    @property
    def cropped_shape(self) -> Shape3:
        (a, b), (c, d), (e, f) = self.bbox
        return (b - a, d - c, f - e)

    @property
    def cropped_affine(self) -> npt.NDArray[np.float64]:
        return spatial.cropped_affine(self.canonical_affine, self.bbox)

    @property
    def network_affine(self) -> npt.NDArray[np.float64]:
        """Voxel → RAS affine of the preprocessed (network) grid."""
        return spatial.resampled_affine(self.cropped_affine, self.cropped_shape, self.resampled_shape)


def plan_record(volume: Volume, plan: Plan, *, bbox: BBox | None = None) -> PreprocessRecord:
    """Decide orientation, crop and target shape for ``volume`` under ``plan`` (no voxel work)."""
    ornt = spatial.ras_orientation(volume.affine)
    canonical_shape = spatial.oriented_shape(volume.shape, ornt)
    canonical_affine = spatial.reoriented_affine(volume.affine, ornt, volume.shape)
    if bbox is None:
        bbox = ((0, canonical_shape[0]), (0, canonical_shape[1]), (0, canonical_shape[2]))
    cropped = tuple(hi - lo for lo, hi in bbox)
    spacing = np.linalg.norm(canonical_affine[:3, :3], axis=0)
    new_shape = spatial.shape_for_spacing(cropped, spacing, plan.target_spacing_mm)  # type: ignore[arg-type]
    return PreprocessRecord(
        original_shape=volume.shape,
        original_affine=volume.affine,
        ornt=ornt,
        bbox=bbox,
        resampled_shape=new_shape,
        slow_axis=_slow_axis(spacing, plan.target_spacing_mm, plan.anisotropy_threshold),
    )


def _slow_axis(spacing: npt.NDArray[np.float64], target: Sequence[float], threshold: float) -> int | None:
    """nnU-Net's rule: resample the slow axis separately if the case or the target is anisotropic."""
    for s in (np.asarray(spacing), np.asarray(target)):
        if s.max() / s.min() > threshold:
            return int(np.argmax(s))
    return None


def preprocess_image(volume: Volume, plan: Plan) -> tuple[Volume, PreprocessRecord]:
    """Bring an image onto the plan's network grid.

    Args:
        volume: ``[i, j, k]`` or ``[c, i, j, k]`` with ``c == plan.n_channels``.
        plan: the plan.

    Returns:
        A float32 ``[c, x, y, z]`` volume on the network grid (RAS axis order, plan spacing)
        and the record for :func:`invert`.

    Raises:
        InvalidInputError: wrong number of channels.
    """
    if volume.n_channels != plan.n_channels:
        raise InvalidInputError(
            f"the model expects {plan.n_channels} channel(s) "
            f"({', '.join(c.name for c in plan.channels)}) but the image has {volume.n_channels}",
            path=volume.meta.source,
        )
    ornt = spatial.ras_orientation(volume.affine)
    source = volume.array if volume.is_multichannel else volume.array[None]
    # per-channel views (flips and transposes, no copies): a 512×512×800 CT is not duplicated here
    views = [spatial.reorient_array(source[c], ornt) for c in range(source.shape[0])]
    mask = None
    if plan.crop_to_nonzero:
        mask = views[0] != 0
        for view in views[1:]:
            mask |= view != 0
    bbox = spatial.nonzero_bbox(mask) if mask is not None else None
    record = plan_record(volume, plan, bbox=bbox)
    if mask is not None:
        mask = spatial.crop(mask, record.bbox)
    out = np.stack([
        spatial.resample_array(normalize_channel(spatial.crop(view, record.bbox), norm, mask=mask),
                               record.resampled_shape, interpolation=plan.image_interpolation,
                               slow_axis=record.slow_axis)
        for view, norm in zip(views, plan.channels, strict=True)
    ]).astype(np.float32, copy=False)
    meta = VolumeMeta(source=volume.meta.source, modality=volume.meta.modality)
    return Volume(out, record.network_affine, meta), record


def preprocess_label(label: Volume, record: PreprocessRecord, plan: Plan) -> Volume:
    """Bring a label map onto the network grid of its image (``record`` from :func:`preprocess_image`).

    Raises:
        InvalidInputError: the label map is not on the image's grid.
    """
    problem = grid_difference(label, _original_grid(record), atol_mm=1e-2, atol_dir=1e-3)
    if problem:
        raise InvalidInputError(f"label map and image differ in {problem}; resample the label or fix the header",
                                path=label.meta.source)
    data = spatial.crop(spatial.reorient_array(np.asarray(label.array), record.ornt), record.bbox)
    if plan.label_interpolation == "linear_onehot" and data.shape != record.resampled_shape:
        out = spatial.resample_labels_onehot(data, record.resampled_shape, n_classes=int(data.max()) + 1,
                                             slow_axis=record.slow_axis)
    else:
        out = spatial.resample_array(data, record.resampled_shape, interpolation="nearest")
    return Volume(out, record.network_affine, VolumeMeta(source=label.meta.source))


def invert(
    array: npt.NDArray[Any],
    record: PreprocessRecord,
    *,
    kind: Literal["labels", "continuous"],
    fill: float | Sequence[float] = 0,
) -> npt.NDArray[Any]:
    """Map an array on the network grid back onto the original voxel grid.

    Args:
        array: ``[x, y, z]`` or ``[c, x, y, z]`` with spatial shape ``record.resampled_shape``.
        kind: ``"labels"`` (linear on one-hot then argmax, dtype kept) or ``"continuous"``
            (linear, float32: probabilities or logits). The slow axis of anisotropic cases is
            resampled with nearest neighbour, as in the forward direction.
        fill: value outside the crop box (per channel allowed, e.g. high background logit).

    Returns:
        Array ``[..., I, J, K]`` in the original file axis order and shape.
    """
    if kind == "labels" and array.ndim == 3 and array.shape != record.cropped_shape:
        out = spatial.resample_labels_onehot(array, record.cropped_shape, n_classes=int(array.max()) + 1,
                                             slow_axis=record.slow_axis)
        out = out.astype(array.dtype, copy=False)
    else:
        out = spatial.resample_array(array, record.cropped_shape,
                                     interpolation="nearest" if kind == "labels" else "linear",
                                     slow_axis=record.slow_axis)
    out = spatial.uncrop(out, record.bbox, record.canonical_shape, fill=fill)
    return spatial.reorient_array(out, spatial.inverse_orientation(record.ornt))


def _original_grid(record: PreprocessRecord) -> Volume:
    """A zero-size stand-in carrying only the original grid, for geometry comparisons."""
    return Volume(np.broadcast_to(np.zeros((), np.uint8), record.original_shape), record.original_affine)

"""Quality-control preview: a PNG with axial, coronal and sagittal slices through the largest structure,
the label map overlaid in each structure's colour, and a legend.

The display (only) is reoriented to the closest RAS axes so that every preview looks the same whatever
the file's voxel order: radiological convention (patient's right on the image's left), anterior up in
the axial view, superior up in the coronal and sagittal views, pixels shown at their physical aspect
ratio. Nothing is resampled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.errors import GeometryError
from medseg.export.labelmap import label_array, present_values, reconcile_labels
from medseg.io import Volume, atomic_path, grid_difference
from medseg.labels import LabelSpec

#: Opacity of the label overlay.
OVERLAY_ALPHA = 0.55
#: Most structures listed in the legend (largest first).
LEGEND_MAX = 24


def write_preview(
    label: Volume,
    image: Volume | None,
    path: str | os.PathLike[str],
    *,
    labels: LabelSpec | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Write a PNG preview of ``label`` over ``image`` (atomically).

    Args:
        label: label map ``[i, j, k]``.
        image: the image it was made on (same grid), or ``None`` for the labels on black.
        path: output ``.png``.
        labels: names and colours (default: numbered labels, palette colours).
        title: text above the slices (default: the label map's file name).
        dpi: resolution; the figure is 12 × 4.6 inches.

    Returns:
        The path written.

    Raises:
        GeometryError: ``image`` is on another grid.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    labels_ras, image_ras, spacing = _canonical_arrays(label, image)
    spec = reconcile_labels(present_values(labels_ras), labels, source=label.meta.source)
    centre = _centre_of_largest(labels_ras)
    lut = _colour_lut(spec)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), facecolor="black")
    for ax, (name, background, overlay, aspect) in zip(
        axes, _views(image_ras, labels_ras, centre, spacing), strict=True
    ):
        ax.imshow(
            background,
            cmap="gray",
            origin="lower",
            aspect=aspect,
            interpolation="nearest",
            vmin=0.0,
            vmax=1.0,
        )
        ax.imshow(lut[overlay], origin="lower", aspect=aspect, interpolation="nearest")
        ax.set_title(name, color="white", fontsize=10)
        ax.axis("off")
    handles = [
        Patch(facecolor=tuple(c / 255 for c in lab.color), label=lab.name)
        for lab in _largest(spec, labels_ras)
    ]
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=min(len(handles), 6),
            fontsize=8,
            frameon=False,
            labelcolor="white",
        )
    fig.suptitle(title or Path(label.meta.source or "label map").name, color="white", fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.05 + 0.04 * ((len(handles) + 5) // 6))
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=dpi, facecolor="black", format="png")
    plt.close(fig)
    return p


def _canonical_arrays(label: Volume, image: Volume | None) -> tuple[Any, Any, tuple[float, float, float]]:
    """Label and normalised image (0-1) flipped/permuted to RAS voxel axes, with the RAS-axis spacing."""
    import nibabel as nib

    array = label_array(label)
    if image is not None:
        if image.is_multichannel:
            image = image.with_array(np.asarray(image.array)[0])
        diff = grid_difference(label, image)
        if diff is not None:
            raise GeometryError(
                f"image and label map are on different grids ({diff})", path=image.meta.source
            )
    ornt = nib.orientations.io_orientation(label.affine)
    spacing = np.asarray(label.spacing)[ornt[:, 0].astype(int).argsort()]
    labels_ras = nib.orientations.apply_orientation(array, ornt)
    if image is None:
        background = np.zeros(labels_ras.shape, dtype=np.float32)
    else:
        background = _normalise(nib.orientations.apply_orientation(np.asarray(image.array), ornt))
    return labels_ras, background, (float(spacing[0]), float(spacing[1]), float(spacing[2]))


def _normalise(image: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    values = np.asarray(image, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, np.float32)
    lo, hi = np.percentile(finite, [1.0, 99.0])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _centre_of_largest(labels_ras: npt.NDArray[Any]) -> tuple[int, int, int]:
    """Voxel (RAS axes) at the centre of mass of the largest structure; the image centre if empty."""
    counts = np.bincount(labels_ras.ravel().astype(np.int64))
    counts[0] = 0
    if counts.sum() == 0:
        return tuple(int(n // 2) for n in labels_ras.shape)  # type: ignore[return-value]
    idx = np.nonzero(labels_ras == int(np.argmax(counts)))
    return tuple(int(round(float(np.mean(a)))) for a in idx)  # type: ignore[return-value]


def _views(
    background: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    centre: tuple[int, int, int],
    spacing: tuple[float, float, float],
) -> list[tuple[str, Any, Any, float]]:
    """(title, background 2D, labels 2D, aspect) for axial, coronal, sagittal; rows go up (origin lower)."""
    i, j, k = centre
    sx, sy, sz = spacing
    # axial: x → right of the image is patient's left (radiological): flip x; rows = anterior (y)
    axial = (background[::-1, :, k].T, labels[::-1, :, k].T, sy / sx)
    coronal = (background[::-1, j, :].T, labels[::-1, j, :].T, sz / sx)
    # sagittal: anterior on the left of the image, superior up
    sagittal = (background[i, ::-1, :].T, labels[i, ::-1, :].T, sz / sy)
    return [(f"axial k={k}", *axial), (f"coronal j={j}", *coronal), (f"sagittal i={i}", *sagittal)]


def _colour_lut(spec: LabelSpec) -> npt.NDArray[np.float32]:
    """RGBA per label value (row 0 transparent)."""
    lut = np.zeros((spec.max_value + 1, 4), dtype=np.float32)
    for lab in spec:
        lut[lab.value, :3] = np.asarray(lab.color) / 255.0
        lut[lab.value, 3] = OVERLAY_ALPHA
    return lut


def _largest(spec: LabelSpec, labels_ras: npt.NDArray[Any]) -> list[Any]:
    counts = np.bincount(labels_ras.ravel().astype(np.int64), minlength=spec.max_value + 1)
    present = [lab for lab in spec if counts[lab.value] > 0]
    return sorted(present, key=lambda lab: -counts[lab.value])[:LEGEND_MAX]

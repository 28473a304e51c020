"""Tiny synthetic datasets with clearly learnable structures, for tests, demos and smoke training.

:func:`make_phantom_dataset` writes an MSD / nnU-Net layout folder::

    root/dataset.json
    root/imagesTr/phantom_000_0000.nii.gz   (one file per channel: _0000, _0001, ...)
    root/labelsTr/phantom_000.nii.gz

Each case is a noisy "body" (an ellipsoid of intensity ~100 on a zero background) holding one
ellipsoidal blob per foreground class, each with its own intensity, size, position and
orientation. A small network separates them within a few epochs; nothing here is patient data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medseg.io import Volume, VolumeMeta, atomic_write_text, write_volume

#: Mean intensity of the body; class ``c`` in channel ``k`` gets ``BODY + STEP * (((c - 1 + k) % n) + 1)``.
BODY_INTENSITY = 100.0
CLASS_STEP = 70.0
NOISE_SD = 12.0


def make_phantom_dataset(
    root: str | Path,
    *,
    n_cases: int = 6,
    shape: tuple[int, int, int] = (48, 48, 48),
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 2.5),
    n_classes: int = 2,
    channel_names: Sequence[str] = ("MR",),
    seed: int = 0,
) -> Path:
    """Write a synthetic MSD-layout dataset and return its folder.

    Args:
        root: target folder (created; existing phantom files are overwritten).
        n_cases: number of cases, named ``phantom_000``, ``phantom_001``, ...
        shape: voxel grid ``(i, j, k)`` of every case.
        spacing_mm: voxel size along ``i, j, k`` (RAS-aligned grid, so also x, y, z), millimetres.
        n_classes: foreground classes (label values ``1..n_classes``, names ``blob1``...).
        channel_names: one name per input channel (``"CT"`` makes the planner use CT normalisation);
            the classes have a different intensity order in each channel.
        seed: random seed; the same arguments give byte-identical voxels.

    Returns:
        ``Path(root)``.
    """
    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = np.diag([*map(float, spacing_mm), 1.0])
    affine[:3, 3] = (-0.5 * shape[0] * spacing_mm[0], -0.5 * shape[1] * spacing_mm[1], -30.0)
    for n in range(n_cases):
        case = f"phantom_{n:03d}"
        label = phantom_label(shape, spacing_mm, n_classes=n_classes, rng=rng)
        for k in range(len(channel_names)):
            image = phantom_image(label, channel=k, n_classes=n_classes, rng=rng)
            write_volume(Volume(image, affine, VolumeMeta(modality=channel_names[k])),
                         root / "imagesTr" / f"{case}_{k:04d}.nii.gz")
        write_volume(Volume(label, affine), root / "labelsTr" / f"{case}.nii.gz")
    meta = {
        "name": "phantom",
        "description": "synthetic ellipsoid phantoms made by medseg.data.synthetic (not patient data)",
        "channel_names": {str(k): name for k, name in enumerate(channel_names)},
        "labels": {"background": 0, **{f"blob{c}": c for c in range(1, n_classes + 1)}},
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    atomic_write_text(root / "dataset.json", json.dumps(meta, indent=2) + "\n")
    return root


def phantom_label(
    shape: tuple[int, int, int], spacing_mm: Sequence[float], *, n_classes: int, rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """Label map ``[i, j, k]`` uint8: body = 0 (with the image nonzero there), blobs ``1..n_classes``.

    Blobs are rotated ellipsoids with semi-axes 12-25% of the smallest physical extent, placed
    inside the body without overlapping one another.
    """
    extent = np.asarray(shape) * np.asarray(spacing_mm, dtype=np.float64)
    pos = _voxel_centres_mm(shape, spacing_mm)
    label = np.zeros(shape, np.uint8)
    centres: list[tuple[npt.NDArray[np.float64], float]] = []
    for c in range(1, n_classes + 1):
        for _ in range(200):
            radii = rng.uniform(0.12, 0.25, size=3) * extent.min()
            centre = extent * rng.uniform(0.3, 0.7, size=3)
            if all(np.linalg.norm(centre - o) > radii.max() + r for o, r in centres):
                break
        centres.append((centre, float(radii.max())))
        rot = _random_rotation(rng)
        local = (pos - centre) @ rot
        inside = np.sum((local / radii) ** 2, axis=-1) <= 1.0
        label[inside & (label == 0)] = c
    return label


def phantom_image(
    label: npt.NDArray[np.uint8], *, channel: int, n_classes: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Image ``[i, j, k]`` float32 for ``label``: zero outside an ellipsoidal body, noisy inside."""
    shape = label.shape
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), axis=-1)
    body = np.sum((grid / 0.95) ** 2, axis=-1) <= 1.0
    image = np.where(body, BODY_INTENSITY, 0.0)
    for c in range(1, n_classes + 1):
        image[label == c] = BODY_INTENSITY + CLASS_STEP * (((c - 1 + channel) % n_classes) + 1)
    noise = rng.normal(0.0, NOISE_SD, size=shape)
    return np.where(body | (label > 0), image + noise, 0.0).astype(np.float32)


def _voxel_centres_mm(shape: Sequence[int], spacing_mm: Sequence[float]) -> npt.NDArray[np.float64]:
    axes = [np.arange(n) * s for n, s in zip(shape, spacing_mm, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _random_rotation(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))

"""Shared test helpers: odd-geometry affines, a Slicer-rules checker, world positions of label voxels."""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def affine(
    direction: np.ndarray, spacing: tuple[float, float, float], origin: tuple[float, float, float]
) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = np.asarray(direction, dtype=float) * np.asarray(spacing)
    a[:3, 3] = origin
    return a


GEOMETRIES = {
    "RAS": affine(np.eye(3), (1.0, 1.0, 1.0), (-20.0, 10.0, 5.0)),
    "LPS": affine(np.diag([-1.0, -1.0, 1.0]), (0.8, 0.8, 3.0), (30.5, -12.25, -40.0)),
    "oblique": affine(rotation("z", 25) @ rotation("x", -12), (0.7, 0.9, 2.5), (-112.5, 37.25, 61.0)),
    "permuted-PSR": affine(np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]]), (1.0, 1.0, 1.0), (3.0, 4.0, 5.0)),
    "anisotropic-flipped": affine(np.diag([1.0, -1.0, -1.0]), (0.35, 0.5, 7.5), (0.0, 0.0, 0.0)),
}


def world_points(values: np.ndarray, affine_ras: np.ndarray, value: int) -> np.ndarray:
    """RAS positions (N×3, sorted lexicographically) of the voxels equal to ``value``."""
    ijk = np.argwhere(values == value).astype(float)
    xyz = ijk @ affine_ras[:3, :3].T + affine_ras[:3, 3]
    return xyz[np.lexsort(np.round(xyz, 3).T[::-1])] if len(xyz) else xyz


def check_slicer_rules(path: Path) -> dict:
    """Enforce the rules of slicer-seg-nrrd.md §2 that slicerio does not check; return the header."""
    data, header = nrrd.read(str(path))
    assert data.dtype.kind in "iu", "voxel type must be integer"
    assert header["space"] == "left-posterior-superior"
    assert list(header["kinds"]) == ["domain"] * 3 or list(header["kinds"]) == ["list"] + ["domain"] * 3
    assert "Segmentation_Extent" not in header
    n_layers = 1 if data.ndim == 3 else data.shape[0]
    layers = data[np.newaxis] if data.ndim == 3 else data
    n = 0
    seen = set()
    while f"Segment{n}_ID" in header:
        f = lambda k: header[f"Segment{n}_{k}"]  # noqa: E731,B023
        layer, value = int(f("Layer")), int(f("LabelValue"))
        assert 0 <= layer < n_layers
        assert (layer, value) not in seen, "(Layer, LabelValue) must be unique"
        seen.add((layer, value))
        color = [float(c) for c in f("Color").split()]
        assert len(color) == 3 and all(0.0 <= c <= 1.0 for c in color) and color != [0.5, 0.5, 0.5]
        extent = [int(v) for v in f("Extent").split()]
        mask = layers[layer] == value
        if mask.any():
            idx = np.nonzero(mask)
            for axis in range(3):
                assert extent[2 * axis] <= idx[axis].min() and idx[axis].max() <= extent[2 * axis + 1], (
                    "Extent too small"
                )
        else:
            assert extent == [0, -1, 0, -1, 0, -1]
        tags = f("Tags")
        if "TerminologyEntry:" in tags:
            entry = tags.split("TerminologyEntry:")[1].split("|")[0]
            parts = entry.split("~")
            assert len(parts) == 7 and parts[1] != "^^" and len(parts[2].split("^")) == 3
        assert tags == "" or tags.endswith("|")
        n += 1
    ids = [k for k in header if k.endswith("_ID") and k.startswith("Segment")]
    assert len(ids) == n, "segment indices must be contiguous from 0"
    return header

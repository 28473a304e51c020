"""Acceptance 1 of inference: outputs land on exactly the right voxels, whatever the input geometry.

The test predictor is a voxel-wise threshold (``label = image > 0.5``), so the correct output is a
known function of the input: the object drawn in world coordinates. The object is asymmetric, so
a flip, permutation or shift anywhere in read → reorient → crop → resample → window → invert →
write shows up as a mismatch. With the plan's spacing equal to the input's, no interpolation is
involved and the label map must be identical voxel for voxel; with resampling, it must agree up to
the boundary and keep its world position.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.inference import InferenceOptions, Predictor, predict_file
from medseg.io import Volume, read_volume, write_volume
from medseg.labels import LabelSpec
from tests.conftest import shared_path

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 2, strides=((1, 1, 1), (2, 2, 2)), filters=(4, 8))


class ThresholdNet(torch.nn.Module):
    """``[B, 1, X, Y, Z]`` → logits ``[B, 2, X, Y, Z]`` whose argmax is ``image > threshold``."""

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.threshold - x, x - self.threshold], dim=1)


def canonical_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """The voxel sizes in canonical RAS axis order (what a plan's ``target_spacing_mm`` means)."""
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ornt = nib.orientations.io_orientation(affine)
    out = [0.0, 0.0, 0.0]
    for voxel_axis, (ras_axis, _) in enumerate(ornt):
        out[int(ras_axis)] = float(zooms[voxel_axis])
    return out[0], out[1], out[2]


def threshold_predictor(spacing: tuple[float, float, float], *, patch=(16, 16, 16), threshold: float = 0.5,
                        crop: bool = True, max_memory_gb: float | None = None) -> Predictor:
    plan = Plan(target_spacing_mm=spacing, patch_size=patch, channels=(ChannelNorm("image", "none"),),
                labels=LabelSpec.from_values([1]), topology=TOPO, crop_to_nonzero=crop, image_interpolation="linear")
    return Predictor(network=ThresholdNet(threshold).eval(), plan=plan, device=torch.device("cpu"),
                     options=InferenceOptions(amp="off", max_memory_gb=max_memory_gb))


def world_object(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """An asymmetric object defined in world millimetres: an off-centre box with a ball on its +x side."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    x, y, z = xyz.T
    box = (x > -12) & (x < 6) & (y > -8) & (y < 14) & (z > -5) & (z < 9)
    ball = (x - 14) ** 2 + (y - 3) ** 2 + (z - 2) ** 2 < 7.0**2
    return (box | ball).reshape(shape)


def rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def make_affine(linear: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """An affine with the given 3×3 part whose grid centre is near world (0, 0, 0)."""
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ (np.array(shape) - 1) / 2.0 + np.array([1.3, -0.7, 0.4])
    return affine


GEOMETRIES = {
    "ras_iso": (np.diag([1.0, 1.0, 1.0]), (48, 44, 40)),
    "lps_flipped": (np.diag([-0.9, -1.1, 1.2]), (50, 42, 36)),
    "permuted_lia": (np.array([[-1.0, 0, 0], [0, 0, 1.1], [0, -0.8, 0]]), (46, 40, 52)),
    "sagittal_pir": (np.array([[0, 0, -1.0], [-1.0, 0, 0], [0, -1.2, 0]]), (44, 40, 46)),
    "oblique": (rotation(0, 17) @ rotation(2, -11) @ np.diag([1.0, 1.2, 1.4]), (52, 46, 40)),
    "anisotropic_0.7x0.7x5": (np.diag([0.7, 0.7, 5.0]), (64, 60, 8)),
    "anisotropic_flipped_permuted": (np.array([[0, -0.7, 0], [0, 0, -5.0], [0.7, 0, 0]]), (64, 8, 60)),
}


def synthetic_volume(name: str) -> tuple[Volume, np.ndarray]:
    linear, shape = GEOMETRIES[name]
    affine = make_affine(linear, shape)
    obj = world_object(affine, shape)
    assert 0.02 < obj.mean() < 0.5, "the object must be inside the field of view"
    return Volume(obj.astype(np.float32), affine), obj


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_exact_voxels_without_resampling(name: str) -> None:
    volume, expected = synthetic_volume(name)
    predictor = threshold_predictor(canonical_spacing(volume.affine))
    out = predictor.predict(volume)
    assert out.shape == volume.shape
    np.testing.assert_array_equal(out.affine, volume.affine)
    assert np.issubdtype(out.array.dtype, np.integer)
    np.testing.assert_array_equal(out.array, expected.astype(out.array.dtype))


@pytest.mark.parametrize("name", ["lps_flipped", "oblique", "anisotropic_flipped_permuted"])
def test_resampled_prediction_stays_in_place(name: str) -> None:
    """With a coarser network grid the boundary may move by a voxel, the object may not."""
    volume, expected = synthetic_volume(name)
    coarse = tuple(s * 1.6 for s in canonical_spacing(volume.affine))
    out = threshold_predictor(coarse).predict(volume)  # type: ignore[arg-type]
    assert out.shape == volume.shape
    np.testing.assert_array_equal(out.affine, volume.affine)
    got = out.array == 1
    dice = 2 * (got & expected).sum() / (got.sum() + expected.sum())
    assert dice > 0.9
    centre = [volume.voxel_to_world(np.argwhere(m).mean(axis=0)) for m in (got, expected)]
    spacing = max(volume.spacing)
    assert np.linalg.norm(centre[0] - centre[1]) < 0.25 * spacing


def test_slab_wise_stitching_gives_the_same_voxels() -> None:
    """A tiny memory budget forces many slabs; the result must not change."""
    volume, expected = synthetic_volume("oblique")
    spacing = canonical_spacing(volume.affine)
    lean = threshold_predictor(spacing, max_memory_gb=1e-5).predict(volume)
    np.testing.assert_array_equal(lean.array, expected.astype(lean.array.dtype))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("name", ["permuted_lia", "oblique", "anisotropic_flipped_permuted"])
def test_files_round_trip_exactly(tmp_path: Path, suffix: str, name: str) -> None:
    """Write the scan, segment the file, read the label map back: same grid, same voxels."""
    volume, expected = synthetic_volume(name)
    scan = write_volume(volume, tmp_path / f"scan{suffix}")
    before = scan.read_bytes()
    out = predict_file(scan, None, predictor=threshold_predictor(canonical_spacing(volume.affine)))
    assert out == tmp_path / "scan_seg.nii.gz"
    assert scan.read_bytes() == before, "the input must never be modified"
    labels, source = read_volume(out), read_volume(scan)
    assert labels.shape == source.shape
    np.testing.assert_allclose(labels.affine, source.affine, atol=1e-5)
    np.testing.assert_array_equal(labels.array, expected.astype(labels.array.dtype))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_real_dicom_series_lands_on_its_voxels(tmp_path: Path, suffix: str) -> None:
    """A real sagittal (PIR, 1×1×4.8 mm) DICOM series: label = intensity > 300 on the series' own grid."""
    series = shared_path("dcm_qa_decubitus", "HFS_t1_fl2d_sag")
    source = read_volume(series)
    predictor = threshold_predictor(canonical_spacing(source.affine), patch=(32, 32, 16), threshold=300.0)
    out = predict_file(series, tmp_path / f"t1_seg{suffix}", predictor=predictor)
    labels = read_volume(out)
    assert labels.shape == source.shape
    np.testing.assert_allclose(labels.affine, source.affine, atol=1e-4)
    expected = source.array > 300
    assert 0.05 < expected.mean() < 0.6
    np.testing.assert_array_equal(labels.array, expected.astype(labels.array.dtype))

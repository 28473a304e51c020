"""Augmentation: the configuration, the one-grid_sample warp (exact on hand-checkable cases), the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from medseg.errors import ConfigError
from medseg.transforms.augment import AugmentConfig, Augmenter
from medseg.transforms.warp import warp_matrix, warp_patch


def test_config_defaults_yaml_round_trip_and_errors() -> None:
    cfg = AugmentConfig()
    assert (cfg.rotation_prob, cfg.scale_range, cfg.gamma_range, cfg.mirror_axes) == (0.2, (0.7, 1.4), (0.7, 1.5),
                                                                                      (0, 1, 2))
    text = yaml.safe_dump(AugmentConfig(noise_prob=0.5, blur_sigma_range=(0.2, 0.4)).to_dict())
    assert AugmentConfig.from_dict(yaml.safe_load(text)) == AugmentConfig(noise_prob=0.5, blur_sigma_range=(0.2, 0.4))
    with pytest.raises(ConfigError, match="unknown key 'rotation_probability'.*did you mean 'rotation_prob'"):
        AugmentConfig.from_dict({"rotation_probability": 0.1})
    with pytest.raises(ConfigError, match="gamma_prob must lie in 0..1"):
        AugmentConfig(gamma_prob=1.5)
    with pytest.raises(ConfigError, match="scale_range must be \\[low, high\\]"):
        AugmentConfig.from_dict({"scale_range": [1.4, 0.7]})
    none = AugmentConfig.none()
    assert all(getattr(none, k) == 0.0 for k in none.to_dict() if k.endswith("_prob"))


def test_warp_matrix_by_hand() -> None:
    np.testing.assert_allclose(warp_matrix(), np.eye(3))
    quarter = warp_matrix(angles_rad=(0, 0, np.pi / 2))
    np.testing.assert_allclose(quarter, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    # rigid in millimetres: with 2 mm voxels along y, one y voxel covers two x voxels
    aniso = warp_matrix(angles_rad=(0, 0, np.pi / 2), spacing_mm=(1.0, 2.0, 1.0))
    np.testing.assert_allclose(aniso, [[0, -2, 0], [0.5, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(warp_matrix(scale=(2, 2, 2), flips=(True, False, False)), np.diag([-0.5, 0.5, 0.5]))


def volume(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(2, *shape)).astype(np.float32)
    label = rng.integers(0, 4, size=shape).astype(np.uint8)
    return image, label


def test_identity_and_quarter_turn_and_flip_are_exact() -> None:
    image, label = volume((9, 9, 6))
    centre = (4.0, 4.0, 2.5)
    out, lab = warp_patch(image, label, np.eye(3), centre, (9, 9, 6))
    np.testing.assert_array_equal(lab, label)
    np.testing.assert_allclose(out, image, atol=1e-5)
    out, lab = warp_patch(image, label, warp_matrix(angles_rad=(0, 0, np.pi / 2)), centre, (9, 9, 6))
    np.testing.assert_array_equal(lab, np.rot90(label, -1, axes=(0, 1)))
    np.testing.assert_allclose(out, np.rot90(image, -1, axes=(1, 2)), atol=1e-5)
    out, lab = warp_patch(image, label, warp_matrix(flips=(False, True, True)), centre, (9, 9, 6))
    np.testing.assert_array_equal(lab, label[:, ::-1, ::-1])
    np.testing.assert_allclose(out, image[:, :, ::-1, ::-1], atol=1e-5)


def test_zoom_scales_a_sphere_volume() -> None:
    grid = np.indices((40, 40, 40)) - 19.5
    label = (np.sum(grid**2, axis=0) <= 5.0**2).astype(np.uint8)
    _, lab = warp_patch(np.zeros((1, 40, 40, 40), np.float32), label, warp_matrix(scale=(2, 2, 2)),
                        (19.5, 19.5, 19.5), (40, 40, 40))
    assert lab is not None
    assert abs(lab.sum() / label.sum() - 8.0) < 0.4


def test_warping_a_whole_volume_equals_warping_a_crop() -> None:
    image, label = volume((40, 36, 30), seed=4)
    matrix = warp_matrix(angles_rad=(0.3, -0.2, 0.5), scale=(0.8, 0.8, 0.8), spacing_mm=(1.0, 1.0, 1.5))
    centre = np.array([18.5, 17.0, 14.5])
    whole = warp_patch(image, label, matrix, centre, (12, 10, 8))
    crop = warp_patch(image[:, 3:38, 2:33, 1:29], label[3:38, 2:33, 1:29], matrix, centre - (3, 2, 1), (12, 10, 8))
    np.testing.assert_allclose(whole[0], crop[0], atol=1e-4)
    np.testing.assert_array_equal(whole[1], crop[1])
    far = warp_patch(image, label, matrix, (200.0, 0.0, 0.0), (12, 10, 8))
    assert not far[0].any() and not far[1].any(), "outside the source reads 0"


def test_anisotropic_spacing_rotates_in_plane_only() -> None:
    cfg = AugmentConfig(rotation_prob=1.0, scale_prob=0.0, mirror_prob=0.0)
    aug = Augmenter(cfg, patch_size=(16, 16, 4), spacing_mm=(0.7, 0.7, 5.0), rng=np.random.default_rng(0))
    for _ in range(5):
        m = aug.draw_spatial().matrix
        assert m is not None
        np.testing.assert_allclose(m[2], [0, 0, 1], atol=1e-12)
        np.testing.assert_allclose(m[:, 2], [0, 0, 1], atol=1e-12)
        assert abs(np.linalg.det(m) - 1) < 1e-9


def test_draws_without_spatial_transform_only_mirror() -> None:
    cfg = AugmentConfig(rotation_prob=0.0, scale_prob=0.0, mirror_prob=1.0, mirror_axes=(1,))
    draw = Augmenter(cfg, patch_size=(8, 8, 8), spacing_mm=(1, 1, 1), rng=np.random.default_rng(0)).draw_spatial()
    assert draw.matrix is None and draw.flips == (False, True, False)


def test_intensity_chain() -> None:
    image, _ = volume((16, 16, 16))
    none = Augmenter(AugmentConfig.none(), patch_size=(16, 16, 16), spacing_mm=(1, 1, 1), rng=np.random.default_rng(0))
    assert none.intensity(image) is image
    everything = AugmentConfig(**{k: 1.0 for k in AugmentConfig().to_dict() if k.endswith("_prob")})
    aug = Augmenter(everything, patch_size=(16, 16, 16), spacing_mm=(1, 1, 1), rng=np.random.default_rng(0))
    out = aug.intensity(image.copy())
    assert out.dtype == np.float32 and out.shape == image.shape and np.all(np.isfinite(out))
    assert not np.allclose(out, image)


def test_constant_displacement_is_a_shift() -> None:
    image, label = volume((10, 9, 8), seed=3)
    shift = np.zeros((3, 6, 5, 4), np.float32)
    shift[0], shift[2] = 1.0, -2.0  # read one voxel further along x and two voxels back along z
    out, lab = warp_patch(image, label, np.eye(3), (4.5, 4.0, 4.5), (6, 5, 4), displacement=shift)
    np.testing.assert_array_equal(lab, label[3:9, 2:7, 1:5])
    np.testing.assert_allclose(out, image[:, 3:9, 2:7, 1:5], atol=1e-5)


def test_blur_and_noise_by_hand() -> None:
    from medseg.transforms.augment import add_noise, gaussian_blur

    impulse = np.zeros((1, 21, 21, 21), np.float32)
    impulse[0, 10, 10, 10] = 1.0
    blurred = gaussian_blur(impulse, sigma_vox=(1.0, 2.0, 1.5))
    assert abs(blurred.sum() - 1.0) < 1e-4
    grid = np.indices((21, 21, 21)) - 10
    for axis, sigma in enumerate((1.0, 2.0, 1.5)):
        variance = float((blurred[0] * grid[axis] ** 2).sum())
        assert abs(variance - sigma**2) < 0.02 * sigma**2 + 0.01
    noisy = add_noise(np.full((2, 40, 40, 40), 3.0, np.float32), std=0.5, rng=np.random.default_rng(0))
    assert noisy.dtype == np.float32 and abs(noisy.mean() - 3.0) < 0.01 and abs(noisy.std() - 0.5) < 0.01

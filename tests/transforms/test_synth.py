"""The synthetic generator: exact geometry, contrast randomisation, acquisition model, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medseg.errors import ConfigError, InvalidInputError
from medseg.labels.freesurfer import freesurfer_to_brain16
from medseg.transforms.synth import (
    SynthConfig,
    SynthGenerator,
    SynthParams,
    acquire,
    dilate_box,
    sample_labels,
    sampling_grid,
    subvoxel_grid,
)
from tests.conftest import shared_path

PLAIN = dataclasses.replace(SynthConfig.identity(), std_range=(0.0, 0.0), mean_range=(50.0, 200.0))


def phantom() -> np.ndarray:
    """A small RAS 'head' in FreeSurfer values: air, scalp, CSF, two hemispheres, deep structures."""
    lab = np.zeros((30, 34, 26), np.int16)
    lab[2:28, 2:32, 2:24] = 507  # scalp / head tissue
    lab[4:26, 4:30, 4:22] = 24  # CSF
    lab[6:15, 6:28, 6:20] = 3  # left cortex (low x = left in RAS)
    lab[15:24, 6:28, 6:20] = 42  # right cortex
    lab[8:15, 8:26, 8:18] = 2
    lab[15:22, 8:26, 8:18] = 41
    lab[11:14, 12:20, 11:14] = 4  # lateral ventricles
    lab[16:19, 12:20, 11:14] = 43
    lab[13:17, 20:24, 9:12] = 10  # a thalamus across the midline
    lab[9:11, 10:13, 8:10] = 17  # left hippocampus
    lab[14:16, 6:10, 4:6] = 16  # brainstem reaching into the CSF
    return lab


LAB = torch.from_numpy(phantom())


def crop(lab: np.ndarray, centre: tuple[int, int, int], patch: tuple[int, int, int]) -> np.ndarray:
    """Patch of ``lab`` whose voxel ``patch // 2`` is ``centre``; zeros outside."""
    pad = max(patch)
    padded = np.pad(lab, pad)
    lo = [c - p // 2 + pad for c, p in zip(centre, patch, strict=True)]
    return padded[lo[0]:lo[0] + patch[0], lo[1]:lo[1] + patch[1], lo[2]:lo[2] + patch[2]]


def draw(gen: SynthGenerator, seed: int, **changes: object) -> SynthParams:
    params = gen.sample_params(LAB, torch.Generator().manual_seed(seed))
    return dataclasses.replace(params, **changes)  # type: ignore[arg-type]


# --- determinism, shapes ----------------------------------------------------------------------------
def test_same_seed_same_sample_other_seed_other_sample() -> None:
    gen = SynthGenerator(patch_size=(20, 24, 16), spacing_mm=2.0)
    a = gen(LAB, torch.Generator().manual_seed(7))
    b = gen(LAB, torch.Generator().manual_seed(7))
    c = gen(LAB, torch.Generator().manual_seed(8))
    assert torch.equal(a.image, b.image) and torch.equal(a.target, b.target)
    assert not torch.equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(6))
def test_shapes_dtypes_and_ranges(seed: int) -> None:
    gen = SynthGenerator(patch_size=(20, 24, 28), spacing_mm=(2.0, 2.0, 3.0))
    image, target = gen(LAB, torch.Generator().manual_seed(seed))
    assert image.shape == (1, 20, 24, 28) and image.dtype == torch.float32
    assert target.shape == (20, 24, 28) and target.dtype == torch.int64
    assert float(image.min()) == 0.0 and float(image.max()) <= 1.0
    assert set(target.unique().tolist()) <= set(range(17))


def test_float_and_integer_label_maps_give_the_same_sample() -> None:
    gen = SynthGenerator(patch_size=(16, 16, 16), spacing_mm=2.0)
    a = gen(LAB, torch.Generator().manual_seed(3))
    b = gen(LAB.to(torch.float32), torch.Generator().manual_seed(3))
    assert torch.equal(a.image, b.image) and torch.equal(a.target, b.target)


# --- exact geometry -------------------------------------------------------------------------------
@pytest.mark.parametrize(("patch", "spacing"), [
    pytest.param((24, 24, 24), (2.0, 2.0, 2.0), id="cubic"),
    pytest.param((17, 26, 9), (2.0, 2.0, 3.0), id="odd-anisotropic"),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_deformation_the_target_is_the_merged_crop(
    patch: tuple[int, int, int], spacing: tuple[float, float, float], seed: int
) -> None:
    gen = SynthGenerator(PLAIN, patch_size=patch, spacing_mm=spacing)
    params = draw(gen, seed)
    image, target = gen.render(LAB, params)
    source = crop(phantom(), params.centre_vox, patch)
    np.testing.assert_array_equal(target.numpy(), freesurfer_to_brain16(source))
    # piecewise constant: one intensity per source label, shared by left and right
    img = image[0].numpy()
    intensity = {int(v): img[source == v] for v in np.unique(source)}
    assert all(np.ptp(values) < 1e-6 for values in intensity.values())
    if 2 in intensity and 41 in intensity:
        assert intensity[2][0] == pytest.approx(intensity[41][0], abs=1e-6)


def test_rotation_by_90_degrees_about_z_permutes_the_crop() -> None:
    patch = (20, 20, 12)
    gen = SynthGenerator(PLAIN, patch_size=patch, spacing_mm=(2.0, 2.0, 3.0))
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    params = draw(gen, 0, linear=rot, centre_vox=(15, 17, 13))
    source = sample_labels(LAB, params, patch_size=patch, spacing_mm=gen.spacing_mm).numpy()
    # patch offset (x, y) → label-map offset (-y, x)
    expected = np.zeros(patch, np.int64)
    for x in range(20):
        for y in range(20):
            i, j = 15 - (y - 10), 17 + (x - 10)
            if 0 <= i < 30 and 0 <= j < 34:
                expected[x, y] = crop(phantom(), (i, j, 13), (1, 1, 12))[0, 0]
    np.testing.assert_array_equal(source, expected)


def test_left_right_flip_mirrors_about_the_patch_centre() -> None:
    patch = (22, 20, 18)
    gen = SynthGenerator(PLAIN, patch_size=patch, spacing_mm=2.0)
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    params = draw(gen, 0, linear=flip, centre_vox=(15, 17, 13))
    source = sample_labels(LAB, params, patch_size=patch, spacing_mm=gen.spacing_mm).numpy()
    straight = crop(phantom(), (15, 17, 13), (44, 20, 18))  # wide enough for the mirrored range
    # patch x samples map i = 15 - (x - 11), i.e. wide-crop index 22 - (x - 11)
    np.testing.assert_array_equal(source, straight[[33 - x for x in range(22)]])


def test_elastic_displacement_is_in_millimetres() -> None:
    """A uniform 6 mm displacement along k is 2 voxels at 3 mm spacing."""
    patch = (16, 16, 10)
    gen = SynthGenerator(PLAIN, patch_size=patch, spacing_mm=(2.0, 2.0, 3.0))
    params = draw(gen, 0, centre_vox=(15, 17, 13))
    shift = torch.zeros_like(params.elastic_mm)
    shift[..., 2] = 6.0
    source = sample_labels(LAB, dataclasses.replace(params, elastic_mm=shift), patch_size=patch,
                           spacing_mm=gen.spacing_mm).numpy()
    np.testing.assert_array_equal(source, crop(phantom(), (15, 17, 15), patch))


# --- intensities ------------------------------------------------------------------------------------
def test_contrast_is_randomised_across_seeds() -> None:
    """White matter is brighter than cortex in some images and darker in others."""
    gen = SynthGenerator(PLAIN, patch_size=(24, 24, 24), spacing_mm=2.0)
    differences = []
    for seed in range(20):
        params = draw(gen, seed, centre_vox=(15, 17, 13))
        image, _ = gen.render(LAB, params)
        source = crop(phantom(), params.centre_vox, (24, 24, 24))
        differences.append(float(image[0].numpy()[source == 2].mean() - image[0].numpy()[source == 3].mean()))
    assert min(differences) < -0.05 and max(differences) > 0.05
    assert len({round(d, 6) for d in differences}) == 20


def test_tissue_prior_shares_means_within_tissues_and_keeps_other_labels() -> None:
    """With the prior (jitter 0) all grey-matter structures get one mean, white matter one, CSF
    one, deep nuclei lie between white and grey; labels without a tissue keep the means they
    would have had without the prior (it draws its numbers last)."""
    off = SynthGenerator(PLAIN, patch_size=(8, 8, 8), spacing_mm=2.0)
    on = SynthGenerator(dataclasses.replace(PLAIN, tissue_probability=1.0, tissue_jitter=0.0),
                        patch_size=(8, 8, 8), spacing_mm=2.0)
    for seed in range(4):
        base, prior = (gen.sample_params(LAB, torch.Generator().manual_seed(seed)).means for gen in (off, on))
        wm, gm, csf = float(prior[2]), float(prior[3]), float(prior[24])
        assert [float(prior[v]) for v in (7, 8, 11, 12, 17, 18, 26, 4, 5, 14, 15)] == [wm, gm, gm, gm, gm, gm, gm,
                                                                                      csf, csf, csf, csf]
        for deep in (10, 13, 16, 28):
            assert min(wm, gm) - 1e-4 <= float(prior[deep]) <= max(wm, gm) + 1e-4
        assert float(prior[10]) != float(prior[13])  # each deep structure its own mix
        for other in (0, 25, 30, 507):
            assert float(prior[other]) == float(base[other])
        assert float(base[3]) != float(base[17])  # without the prior, cortex and hippocampus differ


def test_tissue_jitter_is_the_spread_within_a_tissue() -> None:
    gen = SynthGenerator(dataclasses.replace(PLAIN, tissue_probability=1.0, tissue_jitter=10.0),
                         patch_size=(8, 8, 8), spacing_mm=2.0)
    grey = [3, 8, 11, 12, 17, 18, 26]
    spreads = [float(gen.sample_params(LAB, torch.Generator().manual_seed(s)).means[grey].std()) for s in range(30)]
    assert min(spreads) > 0.0 and max(spreads) < 10.0 * 1.8  # std drawn in [0, 10] per image
    assert np.median(spreads) == pytest.approx(5.0, abs=2.5)


def test_gamma_is_a_power_of_the_scaled_image() -> None:
    gen = SynthGenerator(PLAIN, patch_size=(16, 16, 16), spacing_mm=2.0)
    params = draw(gen, 4)
    linear, _ = gen.render(LAB, params)
    squared, _ = gen.render(LAB, dataclasses.replace(params, gamma=2.0))
    torch.testing.assert_close(squared, linear**2, rtol=0, atol=1e-6)


@pytest.mark.parametrize("tight", [False, True], ids=["keep-csf", "strip-outer-csf"])
def test_skull_stripping_zeroes_everything_outside_the_brain(tight: bool) -> None:
    config = dataclasses.replace(PLAIN, skull_strip_probability=1.0, strip_outer_csf_probability=float(tight))
    gen = SynthGenerator(config, patch_size=(36, 40, 32), spacing_mm=2.0)
    params = draw(gen, 5, centre_vox=(15, 17, 13))
    assert params.skull_strip and params.strip_outer_csf == tight
    image = gen.render(LAB, params).image[0].numpy()
    source = crop(phantom(), (15, 17, 13), (36, 40, 32))
    brain = (source != 0) & (source != 507) & (source != 24)
    csf = source == 24
    near_brain = csf & dilate_box(torch.from_numpy(brain)).numpy()
    assert (image[~brain & ~csf] == 0).all()  # air and scalp
    assert (image[brain] > 0).all()
    assert (image[near_brain] > 0).all()  # sulcal CSF stays
    far_csf = csf & ~near_brain
    assert far_csf.any()
    assert (image[far_csf] == 0).all() if tight else (image[far_csf] > 0).all()


def test_dark_background_sets_the_background_mean_to_zero() -> None:
    config = dataclasses.replace(SynthConfig(), dark_background_probability=1.0)
    gen = SynthGenerator(config, patch_size=(16, 16, 16), spacing_mm=2.0)
    params = gen.sample_params(LAB, torch.Generator().manual_seed(0))
    assert float(params.means[0]) == 0.0 and float(params.means[507]) > 0.0


# --- acquisition model --------------------------------------------------------------------------------
def acquisition(**changes: object) -> SynthParams:
    gen = SynthGenerator(PLAIN, patch_size=(24, 20, 16), spacing_mm=(2.0, 2.0, 3.0))
    return draw(gen, 0, **changes)


def test_bias_field_is_the_smooth_positive_interpolated_field() -> None:
    log_field = torch.randn((3, 4, 5), generator=torch.Generator().manual_seed(1)) * 0.4
    params = acquisition(bias_log=log_field)
    out = acquire(torch.full((24, 20, 16), 10.0), params, spacing_mm=(2.0, 2.0, 3.0), noise=torch.Generator())
    expected = F.interpolate(log_field[None, None], size=(24, 20, 16), mode="trilinear", align_corners=True)
    assert (out > 0).all()
    torch.testing.assert_close(torch.log(out / 10.0), expected[0, 0], rtol=0, atol=1e-5)


def test_resampling_keeps_constants_and_removes_detail_along_the_thick_axis() -> None:
    params = acquisition(resolution_mm=(2.0, 2.0, 12.0), blur_sigma_mm=(0.0, 0.0, 5.0))
    spacing = (2.0, 2.0, 3.0)
    flat = acquire(torch.full((24, 20, 16), 7.0), params, spacing_mm=spacing, noise=torch.Generator())
    torch.testing.assert_close(flat, torch.full_like(flat, 7.0), rtol=0, atol=1e-4)
    stripes_k = torch.arange(16.0).remainder(2).expand(24, 20, 16) * 10 + 1
    stripes_i = torch.arange(24.0).remainder(2)[:, None, None].expand(24, 20, 16) * 10 + 1
    out_k = acquire(stripes_k.clone(), params, spacing_mm=spacing, noise=torch.Generator())
    out_i = acquire(stripes_i.clone(), params, spacing_mm=spacing, noise=torch.Generator())
    assert float(out_k.std()) < 0.05 * float(stripes_k.std())  # 12 mm slices: stripes along k are gone
    torch.testing.assert_close(out_i, stripes_i)  # 2 mm, no blur along i: untouched


def test_noise_has_the_drawn_standard_deviation() -> None:
    params = acquisition(noise_std=3.0)
    out = acquire(torch.full((24, 20, 16), 100.0), params, spacing_mm=(2.0, 2.0, 3.0),
                  noise=torch.Generator().manual_seed(0))
    assert float((out - 100).std()) == pytest.approx(3.0, rel=0.03)


def test_dilate_box_matches_scipy() -> None:
    from scipy import ndimage

    mask = torch.rand((9, 10, 11), generator=torch.Generator().manual_seed(0)) > 0.93
    expected = ndimage.binary_dilation(mask.numpy(), structure=np.ones((3, 3, 3), bool))
    np.testing.assert_array_equal(dilate_box(mask).numpy(), expected)


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("label_map", "message"), [
    pytest.param(torch.zeros((4, 4)), r"\[I, J, K\]", id="2d"),
    pytest.param(torch.full((4, 4, 4), 20000), "0..14175", id="beyond-table"),
    pytest.param(torch.full((4, 4, 4), -1), "-1..-1", id="negative"),
    pytest.param(torch.full((4, 4, 4), 2.5), "fractional", id="fractional"),
])
def test_bad_label_maps_raise(label_map: torch.Tensor, message: str) -> None:
    gen = SynthGenerator(patch_size=(8, 8, 8), spacing_mm=2.0)
    with pytest.raises(InvalidInputError, match=message):
        gen(label_map, torch.Generator())


@pytest.mark.parametrize("changes", [
    pytest.param({"flip_probability": 1.5}, id="probability"),
    pytest.param({"mean_range": (10.0, 5.0)}, id="reversed-range"),
    pytest.param({"noise_std_range": (-1.0, 2.0)}, id="negative"),
    pytest.param({"elastic_spacing_mm": 0.0}, id="zero-spacing"),
])
def test_bad_config_raises(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SynthConfig(**changes)  # type: ignore[arg-type]


def test_bad_patch_or_spacing_raises() -> None:
    with pytest.raises(ConfigError, match="patch_size"):
        SynthGenerator(patch_size=(2, 8, 8), spacing_mm=2.0)
    with pytest.raises(ConfigError, match="spacing_mm"):
        SynthGenerator(patch_size=(8, 8, 8), spacing_mm=(2.0, 0.0, 2.0))


# --- partial volume from finer label maps --------------------------------------------------------------
def box_means(lab: np.ndarray, means: np.ndarray, lo: tuple[int, int, int], patch: tuple[int, int, int],
              f: int) -> np.ndarray:
    """Mean of ``means[lab]`` over each ``f³`` block of the ``(f * patch)`` region starting at ``lo``."""
    region = np.pad(lab, 3 * f * max(patch))
    lo = tuple(v + 3 * f * max(patch) for v in lo)
    block = means[region[lo[0]:lo[0] + f * patch[0], lo[1]:lo[1] + f * patch[1], lo[2]:lo[2] + f * patch[2]]]
    return block.reshape(patch[0], f, patch[1], f, patch[2], f).mean(axis=(1, 3, 5))


def scaled(values: np.ndarray) -> np.ndarray:
    return (values - values.min()) / (values.max() - values.min())


@pytest.mark.parametrize("centre", [(15, 17, 13), (12, 20, 9)])
def test_two_times_finer_map_gives_exact_box_partial_volume(centre: tuple[int, int, int]) -> None:
    """2 mm patches from a 1 mm map: each voxel is the mean of its 2×2×2 sub-voxels' intensities
    (hand-computed from the map), the patch centred on a map voxel corner."""
    patch = (8, 10, 6)
    gen = SynthGenerator(PLAIN, patch_size=patch, spacing_mm=2.0, map_spacing_mm=1.0)
    params = draw(gen, 0, centre_vox=centre)
    image, _ = gen.render(LAB, params)
    means = params.means.numpy()[gen.tables.group.numpy()]  # source label → intensity
    # patch voxel o's sub-voxels are map voxels centre + 2 (o - P // 2) + {0, 1}
    lo = tuple(c - 2 * (p // 2) for c, p in zip(centre, patch, strict=True))
    expected = scaled(box_means(phantom(), means, lo, patch, 2))  # type: ignore[arg-type]
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-5)
    # partial volume makes values no single label has: more distinct intensities than labels
    n_labels = len(np.unique(crop(phantom(), centre, tuple(2 * p for p in patch))))  # type: ignore[arg-type]
    assert len(np.unique(np.round(image[0].numpy(), 5))) > n_labels


def test_three_times_finer_map_target_is_the_centre_label_and_image_the_box_mean() -> None:
    patch = (6, 8, 5)
    centre = (15, 17, 13)
    gen = SynthGenerator(PLAIN, patch_size=patch, spacing_mm=3.0, map_spacing_mm=1.0)
    params = draw(gen, 1, centre_vox=centre)
    image, target = gen.render(LAB, params)
    # voxel o is centred on map voxel centre + 3 (o - P // 2); its sub-voxels are that ± 1
    centres = tuple(np.arange(p) * 3 + c - 3 * (p // 2) for c, p in zip(centre, patch, strict=True))
    padded = np.pad(phantom(), 40)
    expected_target = padded[np.ix_(*(c + 40 for c in centres))]
    np.testing.assert_array_equal(target.numpy(), freesurfer_to_brain16(expected_target))
    means = params.means.numpy()[gen.tables.group.numpy()]
    lo = tuple(int(c[0]) - 1 for c in centres)
    np.testing.assert_allclose(image[0].numpy(), scaled(box_means(phantom(), means, lo, patch, 3)),  # type: ignore[arg-type]
                               atol=1e-5)


def test_subvoxel_grid_is_the_finer_grid_under_an_affine_map() -> None:
    """Without elastic deformation the sub-voxel centres are exactly the sampling grid of a patch
    three times finer: fine voxel ``t`` sits ``t - 3 (P // 2) - 1`` mm from the centre, the direct
    fine grid's voxel ``t`` at ``t - (3 P) // 2`` mm, one voxel apart for even ``P``."""
    gen = SynthGenerator(SynthConfig(elastic_std_mm=0.0), patch_size=(6, 8, 4), spacing_mm=3.0, map_spacing_mm=1.0)
    params = draw(gen, 5)
    assert not torch.allclose(params.linear, torch.eye(3, dtype=torch.float64))  # rotated, scaled, sheared
    shape = LAB.shape
    coarse = sampling_grid(shape, params, patch_size=(6, 8, 4), spacing_mm=(3.0,) * 3, map_spacing_mm=(1.0,) * 3)
    fine = subvoxel_grid(coarse, params.linear, factors=(3, 3, 3), spacing_mm=(3.0,) * 3,
                         map_spacing_mm=(1.0,) * 3, map_shape=shape)
    direct = sampling_grid(shape, params, patch_size=(18, 24, 12), spacing_mm=(1.0,) * 3, map_spacing_mm=(1.0,) * 3)
    torch.testing.assert_close(fine[1:, 1:, 1:], direct[:-1, :-1, :-1], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("spacing", "map_spacing"), [(2.0, 0.8), (2.0, 3.0), ((2.0, 2.0, 3.0), 2.0)])
def test_patch_spacing_must_be_a_whole_multiple_of_the_map_spacing(spacing: object, map_spacing: float) -> None:
    with pytest.raises(ConfigError, match="whole multiple"):
        SynthGenerator(patch_size=(8, 8, 8), spacing_mm=spacing, map_spacing_mm=map_spacing)  # type: ignore[arg-type]


def test_checked_label_maps_are_remembered_per_tensor_not_per_address() -> None:
    gen = SynthGenerator(patch_size=(8, 8, 8), spacing_mm=2.0)
    gen(LAB, torch.Generator())
    bad = torch.full(LAB.shape, 2.5)
    with pytest.raises(InvalidInputError, match="fractional"):
        gen(bad, torch.Generator())


# --- real label map -----------------------------------------------------------------------------------
def test_real_training_map_gives_every_class() -> None:
    """A SynthSeg training map (every 2nd voxel of the RAS 1 mm map, so 2 mm): the 64³ patches,
    centred in the brain, hold all 16 classes between them and the whole-head labels (up to 530)."""
    import nibabel as nib

    path = shared_path("synthseg_labelmaps", "training_label_maps", "training_seg_03.nii.gz")
    labels = np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj)[::2, ::2, ::2].astype(np.int16)
    gen = SynthGenerator(patch_size=(64, 64, 64), spacing_mm=2.0)
    rng = torch.Generator().manual_seed(0)
    seen: set[int] = set()
    for _ in range(3):
        image, target = gen(torch.from_numpy(labels), rng)
        assert float(image.min()) == 0.0 and float(image.max()) == pytest.approx(1.0)
        seen |= set(target.unique().tolist())
    assert seen == set(range(17))

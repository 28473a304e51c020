"""Separable operators of the generator against PyTorch's own interpolation and einsum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.transforms.synth_ops import (
    apply_separable,
    centre_interp_matrix,
    corner_interp_matrix,
    gaussian_resample_matrix,
    lookup,
)

G = torch.Generator().manual_seed(0)


@pytest.mark.parametrize(("n_out", "n_in"), [(17, 4), (96, 7), (5, 5), (9, 2)])
def test_corner_matrix_is_trilinear_align_corners(n_out: int, n_in: int) -> None:
    x = torch.randn((n_in, 3, 2), generator=G)
    expected = F.interpolate(x[None, None], size=(n_out, 3, 2), mode="trilinear", align_corners=True)[0, 0]
    torch.testing.assert_close(apply_separable(x, (corner_interp_matrix(n_out, n_in), None, None)), expected)


@pytest.mark.parametrize(("n_out", "n_in"), [(96, 25), (20, 7), (12, 12), (30, 29)])
def test_centre_matrix_is_trilinear_voxel_centres(n_out: int, n_in: int) -> None:
    x = torch.randn((2, n_in, 3), generator=G)
    expected = F.interpolate(x[None, None], size=(2, n_out, 3), mode="trilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(apply_separable(x, (None, centre_interp_matrix(n_out, n_in), None)), expected)


def test_corner_matrix_reproduces_affine_functions_exactly() -> None:
    line = 3.0 + 0.25 * torch.arange(4.0)  # control values of an affine function over 4 points
    out = corner_interp_matrix(31, 4) @ line
    torch.testing.assert_close(out, 3.0 + 0.25 * torch.arange(31.0) * 3 / 30, rtol=0, atol=1e-6)


def test_gaussian_matrix_rows_sum_to_one_and_sit_on_the_low_resolution_centres() -> None:
    m = gaussian_resample_matrix(8, 24, sigma_vox=1.5)
    torch.testing.assert_close(m.sum(dim=1), torch.ones(8))
    # away from the edges, each row's centre of mass is (l + 0.5) * 3 - 0.5
    centre = (m * torch.arange(24.0)).sum(dim=1)
    torch.testing.assert_close(centre[2:6], (torch.arange(2, 6) + 0.5) * 3 - 0.5, rtol=0, atol=1e-4)
    assert (m[m > 0] >= 1e-7).all()  # no denormal tails


def test_gaussian_matrix_with_tiny_sigma_is_the_identity() -> None:
    torch.testing.assert_close(gaussian_resample_matrix(6, 6, sigma_vox=1e-4), torch.eye(6))


def test_apply_separable_equals_einsum() -> None:
    x = torch.randn((5, 6, 7), generator=G)
    m0, m1, m2 = (torch.randn(s, generator=G) for s in ((3, 5), (4, 6), (9, 7)))
    expected = torch.einsum("ai,bj,ck,ijk->abc", m0, m1, m2, x)
    torch.testing.assert_close(apply_separable(x, (m0, m1, m2)), expected)
    v = torch.randn((5, 6, 7, 3), generator=G)
    expected = torch.einsum("ai,bj,ck,ijkd->abcd", m0, m1, m2, v)
    torch.testing.assert_close(apply_separable(v, (m0, m1, m2)), expected)


def test_lookup_equals_indexing() -> None:
    table = torch.randn(50, generator=G)
    index = torch.randint(0, 50, (4, 5, 6), generator=G)
    assert torch.equal(lookup(table, index), table[index])

"""Reader details: NIfTI scaling, byte order, 4D files, sform/qform disagreement, detached headers."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medseg.errors import InvalidInputError
from medseg.io import Volume, read_volume, write_volume
from tests.io.synthetic import AFFINES


def test_scaled_nifti_is_read_as_float32_with_scaling_applied(tmp_path: Path) -> None:
    stored = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = nib.Nifti1Image(stored, AFFINES["flipped"])
    image.header.set_slope_inter(0.5, -10.0)
    nib.save(image, tmp_path / "scaled.nii.gz")
    volume = read_volume(tmp_path / "scaled.nii.gz")
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, stored * 0.5 - 10.0)


def test_big_endian_nifti_is_read_in_native_byte_order(tmp_path: Path) -> None:
    stored = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    header = nib.Nifti1Header(endianness=">")
    header.set_data_dtype(np.int16)
    image = nib.Nifti1Image(stored, np.eye(4), header)
    nib.save(image, tmp_path / "big.nii")
    assert nib.load(tmp_path / "big.nii").header.endianness == ">"
    volume = read_volume(tmp_path / "big.nii")
    assert volume.array.dtype == np.dtype("=i2")
    np.testing.assert_array_equal(volume.array, stored)


def test_4d_nifti_becomes_channels_first(tmp_path: Path) -> None:
    xyzc = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    nib.save(nib.Nifti1Image(xyzc, AFFINES["oblique"]), tmp_path / "two_channels.nii.gz")
    volume = read_volume(tmp_path / "two_channels.nii.gz")
    assert volume.array.shape == (2, 2, 3, 4)
    np.testing.assert_array_equal(volume.array[1], xyzc[..., 1])


def test_disagreeing_sform_and_qform_warn_and_the_sform_wins(tmp_path: Path, caplog) -> None:
    sform = AFFINES["anisotropic-5mm"]
    qform = sform.copy()
    qform[:3, 3] += [10.0, 0.0, 0.0]
    image = nib.Nifti1Image(np.zeros((2, 3, 4), np.int16), None)
    image.set_sform(sform, code=2)
    image.set_qform(qform, code=1)
    nib.save(image, tmp_path / "disagree.nii.gz")
    with caplog.at_level(logging.WARNING, logger="medseg.io.readers"):
        volume = read_volume(tmp_path / "disagree.nii.gz")
    np.testing.assert_allclose(volume.affine, sform, atol=1e-5)
    assert "sform and qform disagree" in caplog.text
    assert volume.meta.header["sform_code"] == "2" and volume.meta.header["qform_code"] == "1"
    # written back by medseg, both forms agree (code 1)
    header = nib.load(write_volume(volume, tmp_path / "fixed.nii.gz")).header
    np.testing.assert_allclose(header.get_qform(), header.get_sform(), atol=1e-5)


@pytest.mark.parametrize(("ext", "data_file"), [pytest.param(".nhdr", "scan.raw.gz", id="nhdr"),
                                                pytest.param(".mhd", "scan.zraw", id="mhd")])
def test_detached_header_without_its_data_file_names_the_missing_file(tmp_path: Path, ext: str,
                                                                      data_file: str) -> None:
    header = write_volume(Volume(np.zeros((2, 3, 4), np.int16), np.eye(4)), tmp_path / f"scan{ext}")
    (tmp_path / data_file).unlink()
    with pytest.raises(InvalidInputError, match=f"the data file '{data_file}' named in this header is missing") as info:
        read_volume(header)
    assert info.value.path == str(header)


def test_series_uid_for_a_file_format_is_ignored_without_harm(tmp_path: Path) -> None:
    path = write_volume(Volume(np.ones((2, 2, 2), np.uint8), np.eye(4)), tmp_path / "x.nii.gz")
    assert read_volume(path, series_uid="1.2.3").array.sum() == 8

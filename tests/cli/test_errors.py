"""Bad input through the real CLI (issue 2, acceptance 5).

Each case runs ``python -m medseg info PATH`` in a subprocess, in a folder holding only that input.
Expected: exit code 2, nothing on stdout, exactly one line on stderr that names the file and says
what is wrong, no traceback, and the folder unchanged afterwards. ``--debug`` adds the traceback.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from tests.io.synthetic import write_ct_series


def run_info(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medseg", *args], capture_output=True, text=True, cwd=cwd)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _nifti(path: Path, shape: tuple[int, ...], affine: np.ndarray | None = None) -> None:
    image = nib.Nifti1Image(np.ones(shape, np.float32), np.eye(4) if affine is None else affine)
    if affine is not None:
        image.set_sform(affine, code=1)
    nib.save(image, path)


# --- the inputs: each builder makes PATH inside the folder and returns the name to pass ------------------
def zero_byte(d: Path) -> str:
    (d / "scan.nii.gz").write_bytes(b"")
    return "scan.nii.gz"


def truncated_gzip(d: Path) -> str:
    _nifti(d / "full.nii.gz", (20, 20, 20))
    data = (d / "full.nii.gz").read_bytes()
    (d / "full.nii.gz").unlink()
    (d / "scan.nii.gz").write_bytes(data[: len(data) // 2])
    return "scan.nii.gz"


def text_as_nifti(d: Path) -> str:
    (d / "scan.nii.gz").write_text("patient list\nJohn,42\n")
    return "scan.nii.gz"


def text_as_uncompressed_nifti(d: Path) -> str:
    (d / "scan.nii").write_text("patient list\nJohn,42\n" * 30)
    return "scan.nii"


def text_as_mgh(d: Path) -> str:
    (d / "brain.mgh").write_text("not a FreeSurfer volume\n" * 20)
    return "brain.mgh"


def gzip_of_text_as_mgz(d: Path) -> str:
    (d / "brain.mgz").write_bytes(gzip.compress(b"not a FreeSurfer volume\n" * 20))
    return "brain.mgz"


def unknown_extension(d: Path) -> str:
    (d / "scan.xyz").write_bytes(b"\0" * 100)
    return "scan.xyz"


def missing_path(d: Path) -> str:
    return "does_not_exist.nii.gz"


def empty_directory(d: Path) -> str:
    (d / "series").mkdir()
    return "series"


def directory_without_dicom(d: Path) -> str:
    (d / "series").mkdir()
    (d / "series" / "notes.txt").write_text("scanned on Monday")
    (d / "series" / "IM0001").write_bytes(b"\0" * 300)
    return "series"


def image_2d_nifti(d: Path) -> str:
    _nifti(d / "slice.nii.gz", (16, 12))
    return "slice.nii.gz"


def image_2d_mha(d: Path) -> str:
    sitk.WriteImage(sitk.Image(16, 12, sitk.sitkInt16), str(d / "slice.mha"))
    return "slice.mha"


def truncated_mha(d: Path) -> str:
    sitk.WriteImage(sitk.Image(20, 20, 20, sitk.sitkFloat32), str(d / "scan.mha"))
    data = (d / "scan.mha").read_bytes()
    (d / "scan.mha").write_bytes(data[: len(data) // 2])
    return "scan.mha"


def image_5d(d: Path) -> str:
    _nifti(d / "fmri.nii.gz", (4, 4, 4, 3, 2))
    return "fmri.nii.gz"


def dicom_missing_slice(d: Path) -> str:
    stored = np.zeros((8, 8, 6), np.int16)
    write_ct_series(d / "series", stored, origin_lps=(0, 0, 0), row_dir_lps=(1, 0, 0), col_dir_lps=(0, 1, 0),
                    pixel_spacing=(1.0, 1.0), slice_step_lps=(0, 0, 2.5), skip=[3])
    return "series"


def sheared_nifti(d: Path) -> str:
    affine = np.eye(4)
    affine[0, 1] = 0.5  # j axis leans into x: the columns are not perpendicular
    _nifti(d / "sheared.nii.gz", (6, 6, 6), affine)
    return "sheared.nii.gz"


def sheared_nrrd(d: Path) -> str:
    header = {"space": "left-posterior-superior", "space origin": [0.0, 0.0, 0.0],
              "space directions": [[1.0, 0.0, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 2.0]]}
    nrrd.write(str(d / "sheared.nrrd"), np.zeros((6, 6, 6), np.int16), header)
    return "sheared.nrrd"


def dicom_truncated_slice(d: Path) -> str:
    paths = write_ct_series(d / "series", np.ones((32, 32, 4), np.int16), origin_lps=(0, 0, 0), row_dir_lps=(1, 0, 0),
                            col_dir_lps=(0, 1, 0), pixel_spacing=(1.0, 1.0), slice_step_lps=(0, 0, 2.5))
    damaged = sorted(paths)[1]
    damaged.write_bytes(damaged.read_bytes()[:-1000])  # the copy was interrupted
    return "series"


def dicom_skewed_orientation(d: Path) -> str:
    write_ct_series(d / "series", np.zeros((8, 8, 4), np.int16), origin_lps=(0, 0, 0), row_dir_lps=(1, 0, 0),
                    col_dir_lps=(0.2, 0.9798, 0), pixel_spacing=(1.0, 1.0), slice_step_lps=(0, 0, 2.5))
    return "series"


def detached_header_without_data(d: Path) -> str:
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkInt16), str(d / "scan.mhd"))
    for f in d.iterdir():
        if f.name != "scan.mhd":
            f.unlink()
    return "scan.mhd"


CASES: list = [
    pytest.param(zero_byte, "file is empty (0 bytes)", id="zero-byte"),
    pytest.param(truncated_gzip, "truncated, corrupt or not this format", id="truncated-gzip"),
    pytest.param(text_as_nifti, "not a gzip file", id="text-named-nii-gz"),
    pytest.param(text_as_uncompressed_nifti, "truncated, corrupt or not this format", id="text-named-nii"),
    pytest.param(text_as_mgh, "cannot read as mgh (invalid header code", id="text-named-mgh"),
    pytest.param(gzip_of_text_as_mgz, "cannot read as mgh", id="gzipped-text-named-mgz"),
    pytest.param(unknown_extension, "unknown file extension '.xyz'", id="unknown-extension"),
    pytest.param(missing_path, "no such file or folder", id="missing-path"),
    pytest.param(empty_directory, "folder is empty", id="empty-directory"),
    pytest.param(directory_without_dicom, "folder holds no DICOM image files", id="directory-without-dicom"),
    pytest.param(image_2d_nifti, "this is a 2D image (shape (16, 12)); medseg needs a 3D volume", id="2d-nifti"),
    pytest.param(image_2d_mha, "this is a 2D image (size (16, 12)); medseg needs a 3D volume", id="2d-mha"),
    pytest.param(truncated_mha, "truncated, corrupt or not this format", id="truncated-mha"),
    pytest.param(image_5d, "this is a 5D image (shape (4, 4, 4, 3, 2))", id="5d-nifti"),
    pytest.param(dicom_missing_slice, "5 mm between slices", id="dicom-missing-slice"),
    pytest.param(sheared_nifti, "direction cosines are not orthonormal", id="sheared-nifti-sform"),
    pytest.param(sheared_nrrd, "direction cosines are not orthonormal", id="sheared-nrrd"),
    pytest.param(dicom_truncated_slice, "cannot read pixel data (IM0001.dcm: ", id="dicom-truncated-slice"),
    pytest.param(dicom_skewed_orientation, "direction cosines are not orthonormal", id="dicom-skewed-orientation"),
    pytest.param(detached_header_without_data, "data file 'scan.raw' named in this header is missing",
                 id="mhd-without-data-file"),
]


@pytest.mark.parametrize(("build", "problem"), CASES)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path: Path, build: Callable[[Path], str], problem: str) -> None:
    name = build(tmp_path)
    before = snapshot(tmp_path)
    result = run_info("info", name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"medseg: error: {name}: ")
    assert problem in lines[0]
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


def test_missing_slice_message_says_what_to_do(tmp_path: Path) -> None:
    result = run_info("info", dicom_missing_slice(tmp_path), cwd=tmp_path)
    assert result.stderr.strip() == (
        "medseg: error: series: non-uniform slice spacing: 5 mm between slices at 5.00 and 10.00 mm where the "
        "series otherwise has 2.5 mm (about 1 missing slice(s)); re-export the complete series"
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    name = sheared_nifti(tmp_path)
    result = run_info("--debug", "info", name, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "medseg.errors.GeometryError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"medseg: error: {name}: direction cosines are not orthonormal")


def test_usage_error_is_exit_code_2_without_traceback(tmp_path: Path) -> None:
    result = run_info("inf", "scan.nii.gz", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'inf'" in result.stderr
    assert "Traceback" not in result.stderr

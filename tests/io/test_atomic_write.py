"""No output is ever half-written (issue 2, acceptance 6).

The library writer (nibabel or SimpleITK, as called from ``medseg.io.writers``) is replaced by one
that writes part of a file at the path it was given and then fails. Afterwards the target must not
exist (or keep its old bytes), and no temporary file or folder may be left beside it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import medseg.io.writers as writers
from medseg.errors import GeometryError, InvalidInputError
from medseg.io import Volume, atomic_write_text, read_volume, write_volume
from tests.io.synthetic import AFFINES

# extension → (module whose function is replaced, function name); nibabel for NIfTI/MGH, SimpleITK otherwise
WRITERS = {
    ".nii.gz": (writers.nib, "save"),
    ".nii": (writers.nib, "save"),
    ".mgz": (writers.nib, "save"),
    ".nrrd": (writers.sitk, "WriteImage"),
    ".mha": (writers.sitk, "WriteImage"),
    ".nhdr": (writers.sitk, "WriteImage"),
    ".mhd": (writers.sitk, "WriteImage"),
}
EXT_PARAMS = [pytest.param(ext, id=ext.lstrip(".")) for ext in WRITERS]
FAILURES = [pytest.param(OSError("No space left on device"), id="disk-full"),
            pytest.param(KeyboardInterrupt(), id="interrupted")]


def _failing_writer(failure: BaseException):
    """A stand-in for nib.save / sitk.WriteImage: leaves partial output at its path, then fails."""

    def write(_image, path, *args, **kwargs) -> None:
        path = Path(path)
        path.write_bytes(b"partial header, no voxels")
        if path.suffix in (".nhdr", ".mhd"):  # detached formats also start their data file
            path.with_suffix(".raw").write_bytes(b"\0" * 10)
        raise failure

    return write


def _volume() -> Volume:
    return Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), AFFINES["oblique"])


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("ext", EXT_PARAMS)
def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str,
                                     failure: BaseException) -> None:
    module, name = WRITERS[ext]
    monkeypatch.setattr(module, name, _failing_writer(failure))
    with pytest.raises(type(failure)):
        write_volume(_volume(), tmp_path / f"out{ext}")
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file, no staging folder


@pytest.mark.parametrize("ext", EXT_PARAMS)
def test_failed_write_leaves_an_existing_target_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          ext: str) -> None:
    target = tmp_path / f"out{ext}"
    old = Volume(np.full((3, 4, 5), 7, np.int16), AFFINES["flipped"])
    write_volume(old, target)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}  # header and data file for .nhdr/.mhd
    module, name = WRITERS[ext]
    monkeypatch.setattr(module, name, _failing_writer(OSError("No space left on device")))
    with pytest.raises(OSError):
        write_volume(_volume(), target)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    np.testing.assert_array_equal(read_volume(target).array, old.array)


@pytest.mark.parametrize("ext", EXT_PARAMS)
def test_successful_write_leaves_only_the_output(tmp_path: Path, ext: str) -> None:
    write_volume(_volume(), tmp_path / f"out{ext}")
    names = sorted(p.name for p in tmp_path.iterdir())
    detached = {".nhdr": ["out.nhdr", "out.raw.gz"], ".mhd": ["out.mhd", "out.zraw"]}
    assert names == detached.get(ext, [f"out{ext}"])


def test_writer_that_writes_nothing_counts_as_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writers.nib, "save", lambda *args, **kwargs: None)
    with pytest.raises(OSError, match="writer produced no data"):
        write_volume(_volume(), tmp_path / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [pytest.param(".nii.gz", id="nii.gz"), pytest.param(".nhdr", id="nhdr")])
def test_missing_output_folder_is_a_clear_error(tmp_path: Path, ext: str) -> None:
    with pytest.raises(InvalidInputError, match="output folder does not exist") as info:
        write_volume(_volume(), tmp_path / "nope" / f"out{ext}")
    assert info.value.path == str(tmp_path / "nope")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [pytest.param("out.dcm", id="dicom"), pytest.param("out.png", id="png"),
                                  pytest.param("out", id="no-extension")])
def test_unwritable_extension_is_refused_before_writing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInputError, match="cannot write a volume with this extension"):
        write_volume(_volume(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    atomic_write_text(target, '{"dice": 0.91}')
    assert target.read_text() == '{"dice": 0.91}'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize("ext", EXT_PARAMS)
def test_output_gets_the_umask_permissions_not_owner_only(tmp_path: Path, ext: str) -> None:
    """mkstemp's 0o600 must not leak into results colleagues need to read."""
    old_umask = os.umask(0o022)
    try:
        write_volume(_volume(), tmp_path / f"out{ext}")
    finally:
        os.umask(old_umask)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {
        p.name: 0o644 for p in tmp_path.iterdir()
    }


def test_empty_text_is_a_valid_atomic_write(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "empty.csv", "")
    assert (tmp_path / "empty.csv").read_bytes() == b""


def test_sheared_volume_is_not_written(tmp_path: Path) -> None:
    affine = np.eye(4)
    affine[0, 1] = 0.5  # NIfTI's qform, NRRD and MetaImage cannot represent it
    with pytest.raises(GeometryError, match="direction cosines are not orthonormal") as info:
        write_volume(Volume(np.zeros((3, 4, 5), np.int16), affine), tmp_path / "sheared.nii.gz")
    assert info.value.path == str(tmp_path / "sheared.nii.gz")
    assert list(tmp_path.iterdir()) == []

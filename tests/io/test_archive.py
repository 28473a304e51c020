"""Unsafe zip archives are refused before anything is extracted (issue 2: "no path traversal")."""

from __future__ import annotations

import stat
import tempfile
import zipfile
from pathlib import Path

import pytest

from medseg.errors import InvalidInputError
from medseg.io import read_volume
from medseg.io.archive import safe_extract_zip


def _zip(path: Path, members: list[zipfile.ZipInfo | str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for member in members:
            is_dir = isinstance(member, zipfile.ZipInfo) and member.is_dir()
            zf.writestr(member, b"" if is_dir else b"DICM payload")
    return path


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


UNSAFE = [
    pytest.param(["ok/01.dcm", "../evil.dcm"], "'../evil.dcm'", id="parent-traversal"),
    pytest.param(["ok/01.dcm", "ok/../../evil.dcm"], "'ok/../../evil.dcm'", id="nested-traversal"),
    pytest.param(["/tmp/evil.dcm"], "'/tmp/evil.dcm'", id="absolute-path"),
    pytest.param(["ok\\..\\..\\evil.dcm"], "evil.dcm", id="windows-separators"),
    pytest.param(["C:/evil.dcm"], "'C:/evil.dcm'", id="drive-letter"),
    pytest.param(["ok/01.dcm", _symlink("ok/link", "/etc/passwd")], "symbolic link", id="symlink"),
]


@pytest.mark.parametrize(("members", "named"), UNSAFE)
def test_unsafe_member_is_refused_and_nothing_is_extracted(tmp_path: Path, members: list, named: str) -> None:
    archive = _zip(tmp_path / "series.zip", members)
    destination = tmp_path / "out" / "inner"
    destination.mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="refusing to extract|outside the folder") as info:
        safe_extract_zip(archive, destination)
    assert named in str(info.value)
    assert info.value.path == str(archive)
    # nothing at all was written: not the safe members, not the evil one beside or above the destination
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "out", "out/inner", "series.zip",
    ]


def test_read_volume_refuses_an_unsafe_zip_and_cleans_its_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where read_volume extracts zips
    archive = _zip(tmp_path / "series.zip", ["a/01.dcm", "../../evil.dcm"])
    with pytest.raises(InvalidInputError, match="unsafe member '../../evil.dcm'"):
        read_volume(archive)
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "evil.dcm").exists()


def test_safe_archive_extracts_below_the_destination(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", ["series/01.dcm", "series/sub/02.dcm", zipfile.ZipInfo("empty/")])
    safe_extract_zip(archive, tmp_path / "out")
    assert (tmp_path / "out" / "series" / "sub" / "02.dcm").read_bytes() == b"DICM payload"
    assert (tmp_path / "out" / "empty").is_dir()


def test_archive_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", ["a.dcm", "b.dcm"])  # 2 × 12 bytes
    with pytest.raises(InvalidInputError, match="expands to .* more than the"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=20)
    assert not (tmp_path / "out").exists()


def test_zip_without_dicom_says_so(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "notes.zip", ["readme.txt"])
    with pytest.raises(InvalidInputError, match="holds no DICOM image files") as info:
        read_volume(archive)
    assert info.value.path == str(archive)

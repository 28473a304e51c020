"""DICOM SEG from an anonymised series that lacks type-2 patient/study attributes."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from medseg.errors import InvalidInputError
from medseg.export import export_labelmap
from medseg.io import read_volume
from medseg.labels import LabelSpec
from tests.conftest import shared_path

DROPPED = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
           "AccessionNumber")


def anonymised_copy(tmp_path: Path, *, drop_study_uid: bool = False) -> Path:
    out = tmp_path / "series"
    out.mkdir()
    for f in sorted(shared_path("dcmqi_segmentations", "tiny-24x38x3", "image").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        for keyword in DROPPED + (("StudyInstanceUID",) if drop_study_uid else ()):
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(out / f.name)
    return out


def test_missing_type2_attributes_are_written_empty(tmp_path: Path) -> None:
    series = anonymised_copy(tmp_path)
    image = read_volume(series)
    label = image.with_array((image.array > 0).astype(np.uint8))
    out = export_labelmap(label, tmp_path / "seg.dcm", labels=LabelSpec.from_mapping({"liver": 1}),
                          reference_dicom=series)
    seg = hd.seg.segread(out)
    assert seg.PatientSex == "" and seg.StudyID == ""
    assert seg.StudyInstanceUID == pydicom.dcmread(next(series.glob("*.dcm"))).StudyInstanceUID
    assert int(np.count_nonzero(seg.get_volume(combine_segments=True).array)) == int(np.count_nonzero(label.array))


def test_source_without_study_uid_is_refused_clearly(tmp_path: Path) -> None:
    series = anonymised_copy(tmp_path, drop_study_uid=True)
    image = read_volume(series)
    label = image.with_array((image.array > 0).astype(np.uint8))
    with pytest.raises(InvalidInputError, match="StudyInstanceUID"):
        export_labelmap(label, tmp_path / "seg.dcm", labels=LabelSpec.from_mapping({"liver": 1}),
                        reference_dicom=series)

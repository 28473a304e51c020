"""``medseg info``: JSON fields, the human-readable table and warnings, and --series-uid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_path
from tests.io.synthetic import write_ct_series

JSON_FIELDS = {"path", "shape", "n_channels", "dtype", "spacing_mm", "origin_mm", "direction", "orientation",
               "modality", "intensity_min", "intensity_max", "intensity_mean", "n_unique", "warnings"}


def run_info(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medseg", "info", *map(str, args)], capture_output=True, text=True)


def test_json_of_anisotropic_nrrd() -> None:
    path = shared_path("pyradiomics_testcases", "brain1_image.nrrd")
    result = run_info(path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == JSON_FIELDS
    assert report["path"] == str(path)
    assert report["shape"] == [256, 256, 25]
    assert report["spacing_mm"] == pytest.approx([0.78125, 0.78125, 6.5])
    assert report["orientation"] == "LAS"
    assert report["direction"] == [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # i, j, k axes in RAS
    assert report["dtype"] == "int16"
    assert (report["intensity_min"], report["intensity_max"]) == (0, 3057)
    assert report["warnings"] == ["strongly anisotropic voxels (8.3:1, spacing 0.781×0.781×6.5 mm)"]


def test_json_of_ct_dicom_series() -> None:
    result = run_info(shared_path("dcmqi_segmentations", "ct-3slice", "dicom"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["modality"], report["shape"], report["orientation"]) == ("CT", [512, 512, 3], "LPS")
    assert (report["intensity_min"], report["intensity_max"]) == (-3024, 1381)
    assert report["warnings"] == []


def test_table_shows_geometry_and_warning() -> None:
    result = run_info(shared_path("niivue_samples", "flair_lesion", "FLAIR.nii.gz"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "124 × 160 × 140" in out
    assert "orientation      RAS" in out
    assert "-64.898, -110.431, -27.926" in out
    assert "warning: oblique grid (closest orientation RAS)" in out


def test_series_uid_option_picks_a_series(tmp_path: Path) -> None:
    geometry = {"origin_lps": (0, 0, 0), "row_dir_lps": (1, 0, 0), "col_dir_lps": (0, 1, 0), "pixel_spacing": (1, 1)}
    write_ct_series(tmp_path / "a", np.zeros((4, 4, 3), np.int16), slice_step_lps=(0, 0, 2), series_uid="1.2.3.1",
                    **geometry)
    write_ct_series(tmp_path / "b", np.zeros((4, 4, 5), np.int16), slice_step_lps=(0, 0, 3), series_uid="1.2.3.2",
                    **geometry)
    both = run_info(tmp_path)
    assert both.returncode == 2
    assert "folder holds 2 DICOM series" in both.stderr
    assert "1.2.3.1 (CT, 'synthetic', 3 files)" in both.stderr and "1.2.3.2 (CT, 'synthetic', 5 files)" in both.stderr
    one = run_info(tmp_path, "--series-uid", "1.2.3.2", "--json")
    assert one.returncode == 0, one.stderr
    report = json.loads(one.stdout)
    assert (report["shape"], report["spacing_mm"]) == ([4, 4, 5], [1.0, 1.0, 3.0])

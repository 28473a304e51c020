"""``medseg export`` through ``python -m medseg``: formats, companions, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from medseg.export.slicer import read_seg_nrrd_with_labels
from medseg.io import Volume, read_volume, write_volume
from tests.conftest import shared_path


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medseg", "export", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_seg_nrrd_with_labels_statistics_and_preview(tmp_path):
    label = shared_path("totalsegmentator_example", "ct_sm", "label_total.nii.gz")
    image = shared_path("totalsegmentator_example", "ct_sm", "image.nii.gz")
    names = json.loads(shared_path("totalsegmentator_example", "class_map.json").read_text())["total"]
    (tmp_path / "labels.json").write_text(json.dumps({"labels": {n: int(v) for v, n in names.items()}}))
    out = tmp_path / "ct.seg.nrrd"
    result = run(
        str(label),
        "-o",
        str(out),
        "--labels",
        str(tmp_path / "labels.json"),
        "--image",
        str(image),
        "--statistics",
        "--preview",
    )
    assert result.returncode == 0, result.stderr
    volume, spec = read_seg_nrrd_with_labels(out)
    assert np.array_equal(volume.array, read_volume(label).array)
    assert spec.names[5] == "liver" and len(spec) == 117  # every class of the spec, present or not
    stats = json.loads((tmp_path / "ct_statistics.json").read_text())["structures"]
    liver = next(r for r in stats if r["name"] == "liver")
    assert liver["volume_ml"] == pytest.approx(liver["voxel_count"] * 0.027)
    assert 20 < liver["mean"] < 80  # HU of a liver
    assert (tmp_path / "ct_statistics.csv").exists() and (tmp_path / "ct_preview.png").stat().st_size > 10_000


def test_seg_nrrd_back_to_nifti_keeps_names_for_the_retrain_loop(tmp_path):
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1:3, 1:4, 2:5] = 3
    write_volume(Volume(labels, np.diag([0.5, 0.7, 2.0, 1.0])), tmp_path / "pred.nii.gz")
    assert run(str(tmp_path / "pred.nii.gz"), "-o", str(tmp_path / "pred.seg.nrrd")).returncode == 0
    result = run(str(tmp_path / "pred.seg.nrrd"), "-o", str(tmp_path / "fixed.nii.gz"))
    assert result.returncode == 0, result.stderr
    back = read_volume(tmp_path / "fixed.nii.gz")
    assert np.array_equal(back.array, labels) and np.allclose(back.affine, np.diag([0.5, 0.7, 2.0, 1.0]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["missing.nii.gz", "-o", "x.seg.nrrd"], "missing.nii.gz: no such file", id="missing-input"
        ),
        pytest.param(["lab.nii.gz", "-o", "x.txt"], "cannot tell the export format", id="bad-extension"),
        pytest.param(
            ["lab.nii.gz", "-o", "x.dcm"], "needs the source DICOM series", id="dcm-without-reference"
        ),
        pytest.param(["float.nii.gz", "-o", "x.seg.nrrd"], "non-integer values", id="float-labels"),
        pytest.param(
            ["lab.nii.gz", "-o", "x.seg.nrrd", "--labels", "dup.json"],
            "label names used twice",
            id="duplicate-names",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    write_volume(Volume(np.ones((3, 3, 3), np.uint8), np.eye(4)), tmp_path / "lab.nii.gz")
    write_volume(Volume(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), tmp_path / "float.nii.gz")
    (tmp_path / "dup.json").write_text('{"1": "liver", "2": "liver"}')
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medseg: error:") and message in lines[0]

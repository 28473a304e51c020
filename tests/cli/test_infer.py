"""``medseg infer`` through the real CLI: cohorts, shards, resume, bad inputs (inference acceptance 4, 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medseg.data.plan import ChannelNorm, Plan
from medseg.data.planner import derive_topology
from medseg.io import Volume, read_volume, write_volume
from medseg.labels import LabelSpec
from medseg.models import ModelConfig, create_model
from medseg.models.checkpoint import save_checkpoint


def tiny_checkpoint(path: Path, *, channels: int = 1, n_labels: int = 3) -> Path:
    """A randomly initialised 8-filter U-Net (what it predicts does not matter here, where it goes does)."""
    topology, patch = derive_topology((1.5, 1.5, 1.5), (16, 16, 16), max_stages=3)
    plan = Plan(target_spacing_mm=(1.5, 1.5, 1.5), patch_size=patch,
                channels=tuple(ChannelNorm(f"c{i}", "zscore") for i in range(channels)),
                labels=LabelSpec.from_values(list(range(1, n_labels + 1))), topology=topology)
    config = ModelConfig(name="unet", max_filters=8)
    torch.manual_seed(0)
    return save_checkpoint(path, model=config, plan=plan, state_dict=create_model(config, plan).state_dict())


def scan(path: Path, shape: tuple[int, int, int] = (30, 26, 22), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    affine = np.array([[0.0, 0.0, -1.2, 20.0], [-1.0, 0.0, 0.0, 5.0], [0.0, 1.3, 0.0, -8.0], [0, 0, 0, 1]])
    return write_volume(Volume(rng.normal(100, 20, shape).astype(np.float32), affine), path)


def medseg(*args: str | Path, cwd: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MEDSEG_MODELS_DIR": str(cwd / "no-user-models"), **env_vars}
    return subprocess.run([sys.executable, "-m", "medseg", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_checkpoint(tmp_path / "tiny.pt")


def test_cohort_with_a_corrupt_case_resumes_and_shards(tmp_path: Path, model: Path) -> None:
    cases = tmp_path / "imagesTs"
    cases.mkdir()
    for i in range(5):
        scan(cases / f"case{i}_0000.nii.gz", seed=i)
    good = (cases / "case2_0000.nii.gz").read_bytes()
    (cases / "case2_0000.nii.gz").write_bytes(good[: len(good) // 3])  # truncated download
    out = tmp_path / "out"

    first = medseg("infer", cases, "-o", out, "--model", model, "--quiet", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    written = sorted(p.name for p in out.glob("*_seg.nii.gz"))
    assert written == ["case0_seg.nii.gz", "case1_seg.nii.gz", "case3_seg.nii.gz", "case4_seg.nii.gz"]
    failed = [line for line in first.stderr.splitlines() if line.startswith("medseg: failed:")]
    assert len(failed) == 1 and "case2" in failed[0] and "Traceback" not in first.stderr
    for name in written:
        source = read_volume(cases / name.replace("_seg", "_0000"))
        labels = read_volume(out / name)
        assert labels.shape == source.shape and np.allclose(labels.affine, source.affine)
        assert set(np.unique(labels.array)) <= {0, 1, 2, 3}

    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*_seg.nii.gz")}
    second = medseg("infer", cases, "-o", out, "--model", model, cwd=tmp_path)
    assert second.returncode == 1
    assert "0 done, 4 skipped (output exists), 1 failed" in second.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_seg.nii.gz")} == mtimes

    (cases / "case2_0000.nii.gz").write_bytes(good)
    covered = []
    for k in (0, 1):
        shard_out = tmp_path / f"shard{k}"
        run = medseg("infer", cases, "-o", shard_out, "--model", model, "--shard", f"{k}/2", "--quiet", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        covered += sorted(p.name for p in shard_out.glob("*_seg.nii.gz"))
    assert sorted(covered) == [f"case{i}_seg.nii.gz" for i in range(5)]


def test_single_scan_default_output_and_formats(tmp_path: Path, model: Path) -> None:
    src = scan(tmp_path / "scan.nrrd")
    before = src.read_bytes()
    run = medseg("infer", src, "--model", model, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "scan_seg.nii.gz"
    assert out.is_file() and src.read_bytes() == before
    labels, source = read_volume(out), read_volume(src)
    assert labels.shape == source.shape and np.allclose(labels.affine, source.affine, atol=1e-5)

    slicer = medseg("infer", src, "-o", tmp_path / "nested" / "scan.seg.nrrd", "--model", model, "--quiet",
                    cwd=tmp_path)
    assert slicer.returncode == 0, slicer.stderr
    from medseg.export.slicer import read_seg_nrrd

    seg = read_seg_nrrd(tmp_path / "nested" / "scan.seg.nrrd")
    assert seg.shape == labels.shape and np.allclose(seg.affine, labels.affine, atol=1e-5)
    np.testing.assert_array_equal(seg.array, labels.array)


def test_overwriting_the_input_is_refused(tmp_path: Path, model: Path) -> None:
    src = scan(tmp_path / "scan.nii.gz")
    before = src.read_bytes()
    run = medseg("infer", src, "-o", src, "--model", model, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "never overwrites its input" in run.stderr
    assert src.read_bytes() == before


def test_two_channel_model_given_one_channel_is_a_clear_error(tmp_path: Path) -> None:
    model = tiny_checkpoint(tmp_path / "two.pt", channels=2)
    src = scan(tmp_path / "t1.nii.gz")
    run = medseg("infer", src, "--model", model, cwd=tmp_path)
    assert run.returncode == 2
    line = run.stderr.strip()
    assert "\n" not in line and "t1.nii.gz" in line and "expects 2 channel(s)" in line
    assert not (tmp_path / "t1_seg.nii.gz").exists()


def test_dicom_series_to_dicom_seg(tmp_path: Path, model: Path) -> None:
    """``--format dicom-seg`` goes through the export code: a SEG referencing the series, same voxels."""
    import pydicom

    from tests.conftest import shared_path

    series = shared_path("dcmqi_segmentations", "ct-3slice", "dicom")
    plain = medseg("infer", series, "-o", tmp_path / "ct_seg.nii.gz", "--model", model, "--quiet", cwd=tmp_path)
    dicom = medseg("infer", series, "-o", tmp_path / "ct_seg.dcm", "--model", model, "--quiet", cwd=tmp_path)
    assert plain.returncode == 0 and dicom.returncode == 0, plain.stderr + dicom.stderr
    labels = read_volume(tmp_path / "ct_seg.nii.gz").array
    seg = pydicom.dcmread(tmp_path / "ct_seg.dcm")
    source = pydicom.dcmread(next(series.glob("*.dcm")))
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    per_segment: dict[int, int] = {}
    for frame, fg in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        number = fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        per_segment[number] = per_segment.get(number, 0) + int(frame.sum())
    counts = np.bincount(labels.ravel())[1:]
    assert sorted(v for v in per_segment.values() if v) == sorted(int(c) for c in counts if c)


def test_csv_cohort_split_by_torchrun_ranks(tmp_path: Path, model: Path) -> None:
    """Under torchrun (RANK / WORLD_SIZE set) each rank takes its own shard without --shard."""
    (tmp_path / "scans").mkdir()
    rows = ["image"] + [f"scans/s{i}.nrrd" for i in range(3)]
    for i in range(3):
        scan(tmp_path / "scans" / f"s{i}.nrrd", seed=i)
    (tmp_path / "cohort.csv").write_text("\n".join(rows) + "\n")
    written = []
    for rank in ("0", "1"):
        out = tmp_path / f"rank{rank}"
        run = medseg("infer", "cohort.csv", "-o", out, "--model", model, "--quiet", cwd=tmp_path,
                     RANK=rank, WORLD_SIZE="2")
        assert run.returncode == 0, run.stderr
        written.append(sorted(p.name for p in out.glob("*_seg.nii.gz")))
    assert written == [["s0_seg.nii.gz", "s2_seg.nii.gz"], ["s1_seg.nii.gz"]]

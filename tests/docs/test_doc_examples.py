"""Run the examples of README.md and the docs, in order, the way a reader types them.

Each page runs in its own empty folder with this environment's ``medseg`` and ``python`` first on the
PATH and an empty HOME. A page's ``doctest: setup`` names what it expects to exist already (see
``SETUPS``): the trained model that a skipped ``medseg train`` block would have made comes from the
session's ``workflows/cohort`` run, which does exercise ``medseg train``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.docs.pages import REPO, RUNNABLE_LANGS, SHELL_LANGS, Block, Page, parse_page
from tests.workflows.cohort_run import SUBPROCESS_ENV, CohortRun

#: Pages whose examples are all marked (run or skip with a reason).
EXAMPLE_PAGES = [
    REPO / "README.md",
    REPO / "docs" / "index.md",
    REPO / "docs" / "quickstart.md",
    REPO / "docs" / "architecture.md",
    REPO / "docs" / "models" / "index.md",
    *sorted((REPO / "docs" / "tutorials").glob("*.md")),
]
RUN_MARKERS = ("run", "run-if-default-model")


def _checkout(work: Path, request: pytest.FixtureRequest) -> None:
    """The tutorials run in the checkout: configs/ and workflows/ are there."""
    for name in ("configs", "workflows"):
        (work / name).symlink_to(REPO / name)


def _tiny_run(work: Path, request: pytest.FixtureRequest) -> None:
    """``runs/tiny/fold_0/best.pt``: what ``medseg train phantoms -c configs/tiny.yaml -o runs/tiny`` makes."""
    run: CohortRun = request.getfixturevalue("cohort_run")
    assert run.returncode == 0, run.stderr[-2000:]
    (work / "runs" / "tiny" / "fold_0").mkdir(parents=True)
    shutil.copy(run.out / "train" / "fold_0" / "best.pt", work / "runs" / "tiny" / "fold_0" / "best.pt")


def _cohort_outputs(work: Path, request: pytest.FixtureRequest) -> None:
    """``phantoms/`` and ``cohort-phantoms/predictions/`` as ``workflows/cohort phantoms`` leaves them."""
    run: CohortRun = request.getfixturevalue("cohort_run")
    assert run.returncode == 0, run.stderr[-2000:]
    shutil.copytree(run.dataset, work / "phantoms")
    shutil.copytree(run.out / "predictions", work / "cohort-phantoms" / "predictions")


def _dicom_series(work: Path, request: pytest.FixtureRequest) -> None:
    """``scan_dicom/``: a phantom written as a CT series (one file per slice, LPS geometry)."""
    from medseg.data.synthetic import make_phantom_dataset
    from medseg.io import read_volume
    from tests.io.synthetic import write_ct_series

    data = make_phantom_dataset(work / "_dicom_source", n_cases=1, shape=(40, 36, 20))
    image = read_volume(data / "imagesTr" / "phantom_000_0000.nii.gz")
    sx, sy, sz = image.spacing
    ox, oy, oz = image.origin
    files = write_ct_series(work / "scan_dicom", np.round(image.array).astype(np.int16), origin_lps=(-ox, -oy, oz),
                            row_dir_lps=(-1, 0, 0), col_dir_lps=(0, -1, 0), pixel_spacing=(sy, sx),
                            slice_step_lps=(0, 0, sz), intercept=0.0)
    for path in files:  # the Patient and General Study attributes a scanner writes (type 2: may be empty)
        ds = pydicom.dcmread(path)
        ds.PatientBirthDate, ds.PatientSex, ds.ReferringPhysicianName = "", "O", ""
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
        ds.save_as(path, enforce_file_format=True)
    shutil.rmtree(data)


SETUPS: dict[str, Callable[[Path, pytest.FixtureRequest], None]] = {
    "checkout": _checkout,
    "tiny-run": _tiny_run,
    "cohort-run": _cohort_outputs,
    "dicom-series": _dicom_series,
}


def _has_default_model() -> bool:
    from medseg.models.zoo import bundled_models

    return any(m.default for m in bundled_models())


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MEDSEG_MODELS_DIR"}
    (work / "home").mkdir()
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(work / "home"),
               COLUMNS="80", MPLBACKEND="Agg", **SUBPROCESS_ENV)
    return env


def _run(block: Block, work: Path, env: dict[str, str]) -> None:
    if block.lang == "python":
        argv = [sys.executable, "-c", block.code]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", block.code]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=work, env=env)
    assert result.returncode == 0, (f"{block.where} failed (exit {result.returncode}):\n{block.code}\n"
                                    f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")


def _pages_with_examples() -> list[Page]:
    return [p for p in map(parse_page, EXAMPLE_PAGES) if any(b.marker in RUN_MARKERS for b in p.blocks)]


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.path.relative_to(REPO))) for p in _pages_with_examples()])
def test_page_examples_run(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    for name in page.setups:
        SETUPS[name](tmp_path, request)
    env = _environment(tmp_path)
    ran = 0
    for block in page.blocks:
        if block.marker == "run" or (block.marker == "run-if-default-model" and _has_default_model()):
            _run(block, tmp_path, env)
            ran += 1
    assert ran >= 1


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(REPO))) for p in EXAMPLE_PAGES])
def test_every_example_is_run_or_skipped_with_a_reason(path: Path) -> None:
    page = parse_page(path)
    assert set(page.setups) <= set(SETUPS), f"{path}: unknown setup {set(page.setups) - set(SETUPS)}"
    for block in page.blocks:
        if block.lang in RUNNABLE_LANGS:
            assert block.marker is not None, f"{block.where}: mark the block `doctest: run` or `doctest: skip (why)`"
            assert block.marker in RUN_MARKERS or (block.marker.startswith("skip (") and block.marker.endswith(")")), (
                f"{block.where}: unknown marker {block.marker!r}")


def _readme_block(marker: str) -> str:
    """The block CI runs: the first fenced block after ``<!-- marker -->`` in README.md (as .ci/run reads it)."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- {marker} -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[fence + 1:end]) + "\n"


def test_quick_start_commands_are_the_ones_ci_runs() -> None:
    quick = [b.code for b in parse_page(REPO / "docs" / "quickstart.md").blocks if b.lang in SHELL_LANGS]
    assert quick == [_readme_block("ci:install"), _readme_block("ci:test")]

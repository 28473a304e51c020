"""One run of ``workflows/cohort`` on a tiny phantom dataset per test session.

The workflow tests check its report; the documentation tests reuse its trained models and predictions
(so the docs' examples run without training again). ``cohort_run`` is a session fixture, imported by
``tests/workflows/conftest.py`` and ``tests/docs/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "workflows" / "cohort"

#: 3 cases for 3 folds (one validation case each), 24³ voxels so the planner picks a 24³ patch; one
#: epoch of configs/tiny.yaml (10 iterations) per fold already gives Dice ≈ 0.7-0.85 on these phantoms.
N_CASES = 3
SHAPE = (24, 24, 24)
SPACING_MM = (1.5, 1.5, 2.0)
EPOCHS = 1


@dataclass(frozen=True)
class CohortRun:
    """The dataset, the workflow's output folder and how the run ended."""

    dataset: Path
    out: Path
    returncode: int
    stdout: str
    stderr: str


#: One OpenMP thread per test process: on the shared 2-core CI machine, torch's default of one thread per
#: core makes every process spin against the others (10-30x slower inference measured under load).
SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1"}


def run_workflow(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``workflows/cohort ARGS`` with this interpreter (so the installed medseg is the one tested)."""
    return subprocess.run([sys.executable, str(WORKFLOW), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **SUBPROCESS_ENV})


#: The run of this session: both conftests import the fixture, which pytest registers once per
#: directory, so the result is kept here to run the workflow only once per process.
_SESSION_RUN: dict[str, CohortRun] = {}


@pytest.fixture(scope="session")
def cohort_run(tmp_path_factory: pytest.TempPathFactory) -> CohortRun:
    if "run" not in _SESSION_RUN:
        from medseg.data.synthetic import make_phantom_dataset

        base = tmp_path_factory.mktemp("cohort-workflow")
        dataset = make_phantom_dataset(base / "phantoms", n_cases=N_CASES, shape=SHAPE, spacing_mm=SPACING_MM)
        out = base / "cohort"
        result = run_workflow(dataset, "-o", out, "--epochs", str(EPOCHS), cwd=base)
        _SESSION_RUN["run"] = CohortRun(dataset, out, result.returncode, result.stdout, result.stderr)
    return _SESSION_RUN["run"]

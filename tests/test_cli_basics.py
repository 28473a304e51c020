"""The CLI entry point: --help, --version, and the bundled example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import medseg


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medseg", *args], capture_output=True, text=True, cwd=cwd)


def test_version_prints_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"medseg {medseg.__version__}"


def test_help_does_not_import_torch() -> None:
    code = "import sys; from medseg.cli import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_example_is_copied_and_readable(tmp_path: Path) -> None:
    result = run_cli("example", "brain_flair", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "brain_flair.nii.gz").stat().st_size > 100_000
    info = run_cli("info", "brain_flair.nii.gz", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert '"shape": [\n    124,\n    160,\n    140\n  ]' in info.stdout

"""Small synthetic datasets shared by the data tests (written once per session, copied where modified)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medseg.data.synthetic import make_phantom_dataset


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 cases, 24×24×16 voxels of 1×1×2.5 mm, 2 classes, one channel "MR" (read-only: copy to modify)."""
    return make_phantom_dataset(tmp_path_factory.mktemp("phantom") / "ds", n_cases=4, shape=(24, 24, 16), seed=3)


@pytest.fixture(scope="session")
def phantom2ch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 cases, 2 channels ("T1", "T2"), 3 classes (read-only: copy to modify)."""
    return make_phantom_dataset(tmp_path_factory.mktemp("phantom2") / "ds", n_cases=4, shape=(20, 20, 12),
                                n_classes=3, channel_names=("T1", "T2"), seed=5)


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst

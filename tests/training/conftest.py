"""Fixtures of the training tests: the micro dataset, its plan and cache (see helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.training.helpers import make_micro_cache, make_micro_dataset, make_micro_plan, one_thread


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Every training test runs torch with one thread (see helpers.py)."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def micro_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_dataset(tmp_path_factory.mktemp("micro") / "dataset")


@pytest.fixture(scope="session")
def micro_plan(micro_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_micro_plan(micro_dataset, tmp_path_factory.mktemp("plan") / "plan.yaml")


@pytest.fixture(scope="session")
def micro_cache(micro_dataset: Path, micro_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_micro_cache(micro_dataset, micro_plan, tmp_path_factory.mktemp("cache"))

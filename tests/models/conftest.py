"""Model tests run torch with one thread (see tests/training/helpers.py: on a busy 2-core machine
two OpenMP threads made these tests 5x slower)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.training.helpers import one_thread


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    with one_thread():
        yield

"""Plain, YAML/JSON-safe data from the values medseg keeps in dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain_data(value: Any) -> Any:
    """Mappings → dicts with string keys, tuples/lists → lists, numpy scalars/arrays → Python values."""
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value

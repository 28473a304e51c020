"""Example scans that ship inside the package (no download needed).

``medseg example NAME`` copies one into the working folder so that outputs written beside it do
not land inside the installed package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medseg.errors import check_option

EXAMPLES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Example:
    """A bundled scan: file name inside this package, what it is, and where it came from."""

    name: str
    filename: str
    description: str
    source: str

    @property
    def path(self) -> Path:
        return EXAMPLES_DIR / self.filename


EXAMPLES: dict[str, Example] = {
    "brain_flair": Example(
        name="brain_flair",
        filename="brain_flair.nii.gz",
        description="brain FLAIR MRI, 124×160×140 voxels, 1 mm isotropic, RAS, uint8",
        source="niivue/niivue demos (FLAIR.nii.gz), BSD-2-Clause © 2021 Niivue; see LICENSES.md",
    ),
}


def get_example(name: str) -> Example:
    """Look up a bundled example by name (``ConfigError`` listing the names if unknown)."""
    return EXAMPLES[check_option(name, EXAMPLES, name="example")]

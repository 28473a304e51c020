"""Geometry-exact volume IO: :class:`Volume`, :func:`read_volume`, :func:`write_volume`."""

from medseg.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from medseg.io.formats import Format, format_of, strip_extension
from medseg.io.readers import read_volume
from medseg.io.volume import Volume, VolumeMeta, check_orthonormal, grid_difference
from medseg.io.writers import write_volume

__all__ = [
    "Format",
    "Volume",
    "VolumeMeta",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_orthonormal",
    "format_of",
    "grid_difference",
    "read_volume",
    "strip_extension",
    "write_volume",
]

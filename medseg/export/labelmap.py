"""Checks shared by every exporter: a label map is 3D, integral, non-negative; its spec covers it.

Every exporter (Slicer, DICOM SEG, statistics, previews) takes a label map :class:`~medseg.io.Volume`
and a :class:`~medseg.labels.LabelSpec`. The two rarely agree perfectly, and what to do is the same
everywhere:

* a value in the spec that the map lacks → warning; the structure is kept (an empty segment, a row
  with zero volume), so names and colours survive;
* a value in the map that the spec lacks → warning; it gets a numbered default label, because a
  voxel that no segment claims is invisible in Slicer and silently lost in DICOM SEG.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.errors import InvalidInputError
from medseg.io import Volume
from medseg.labels import LabelSpec
from medseg.labels.spec import default_label

log = logging.getLogger(__name__)


def label_array(volume: Volume, *, source: str | Path | None = None) -> npt.NDArray[Any]:
    """The label map's voxels ``[i, j, k]`` as a non-negative integer array.

    Integral floats (``2.0``) are accepted and cast, as many tools store labels as float.

    Args:
        volume: the label map (3D, no channel axis).
        source: file name for error messages (defaults to ``volume.meta.source``).

    Raises:
        InvalidInputError: several channels, non-integral or negative values.
    """
    where = source if source is not None else volume.meta.source
    if volume.is_multichannel:
        raise InvalidInputError(
            f"a label map must be 3D, this volume has {volume.n_channels} channels; "
            "convert one-hot or probability maps to a label map (argmax) first",
            path=where,
        )
    array = np.asarray(volume.array)
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        array = _integral_floats(array, where)
    elif array.dtype.kind not in "iu":
        raise InvalidInputError(f"label map has dtype {array.dtype}; expected integer labels", path=where)
    if array.size and array.dtype.kind == "i" and int(array.min()) < 0:
        raise InvalidInputError(
            f"label map holds negative values (min {int(array.min())}); "
            "labels must be 0 (background) or positive",
            path=where,
        )
    return array


def _integral_floats(array: npt.NDArray[Any], where: str | Path | None) -> npt.NDArray[Any]:
    if not np.all(np.isfinite(array)):
        raise InvalidInputError("label map holds NaN or infinite values; it is not a label map", path=where)
    rounded = np.rint(array)
    bad = rounded != array
    if np.any(bad):
        example = float(array[bad].flat[0])
        raise InvalidInputError(
            f"label map holds non-integer values (e.g. {example:g} in {int(bad.sum())} voxels): "
            "it looks like a probability or intensity image; "
            "threshold or argmax it into integer labels first",
            path=where,
        )
    if array.size and rounded.min() < 0:
        raise InvalidInputError(
            f"label map holds negative values (min {rounded.min():g}); labels must be 0 or positive",
            path=where,
        )
    top = float(rounded.max()) if array.size else 0.0
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    log.info(
        "%s: float label map with integral values, cast to %s", where or "label map", np.dtype(dtype).name
    )
    return rounded.astype(dtype)


def present_values(array: npt.NDArray[Any]) -> list[int]:
    """Sorted non-zero values of a label array."""
    return [int(v) for v in np.unique(array.ravel(order="K")) if v != 0]  # "K": no copy of F-ordered data


def reconcile_labels(
    present: list[int], labels: LabelSpec | None, *, source: str | Path | None = None
) -> LabelSpec:
    """The spec to export: ``labels`` plus a numbered label for every value it lacks.

    Args:
        present: non-zero values found in the label map.
        labels: the user's or model's spec; ``None`` → numbered names (``label_<v>``).
        source: file name for warnings.

    Returns:
        A spec covering every present value (and every value of ``labels``, present or not).
    """
    if labels is None:
        return LabelSpec.from_values(present)
    where = f"{source}: " if source else ""
    absent = [lab for lab in labels if lab.value not in set(present)]
    if absent:
        log.warning(
            "%slabel(s) %s are not in the label map; exported as empty segments",
            where,
            ", ".join(f"{lab.value} ({lab.name})" for lab in absent),
        )
    missing = [v for v in present if labels.get(v) is None]
    if not missing:
        return labels
    log.warning(
        "%slabel map holds value(s) %s that the label spec does not name; exported as 'label_<value>'",
        where,
        ", ".join(map(str, missing)),
    )
    taken = set(labels.names.values())
    extra = [default_label(v, _free_name(f"label_{v}", taken)) for v in missing]
    return LabelSpec(labels.labels + tuple(extra))


def _free_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate

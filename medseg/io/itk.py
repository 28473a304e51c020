"""SimpleITK image ⇄ :class:`Volume`: the one place where ITK's LPS world becomes RAS and back.

ITK (and so NRRD, MetaImage and DICOM read through SimpleITK) describes geometry in LPS with
``origin``, ``spacing`` and a row-major ``direction``; ``GetArrayFromImage`` returns ``[k, j, i]``.
medseg's :class:`Volume` is ``[i, j, k]`` with an RAS affine.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from medseg.io.volume import LPS_TO_RAS, Volume, VolumeMeta


def itk_affine_ras(image: sitk.Image) -> npt.NDArray[np.float64]:
    """4×4 voxel → RAS affine of a 3D SimpleITK image."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ lps


def volume_from_itk(image: sitk.Image, meta: VolumeMeta | None = None) -> Volume:
    """Convert a 3D SimpleITK image (scalar or vector pixels) to a :class:`Volume`.

    Vector pixels become a leading channel axis: ``[c, i, j, k]``.
    """
    array = sitk.GetArrayFromImage(image)  # [k, j, i] or [k, j, i, c]
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = np.transpose(array, (3, 2, 1, 0))
    else:
        array = np.transpose(array, (2, 1, 0))
    return Volume(np.ascontiguousarray(array), itk_affine_ras(image), meta or VolumeMeta())


def volume_to_itk(volume: Volume, *, array: npt.NDArray[Any] | None = None) -> sitk.Image:
    """Convert a :class:`Volume` to a SimpleITK image in LPS (channels become vector pixels).

    Args:
        volume: the source of geometry (and of voxels unless ``array`` is given).
        array: optional replacement voxels with the same shape as ``volume.array``
            (e.g. after a dtype cast).
    """
    data = volume.array if array is None else array
    if data.ndim == 4:
        image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (3, 2, 1, 0))), isVector=True)
    else:
        image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
    lps = LPS_TO_RAS @ volume.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in lps[:3, 3]])
    image.SetDirection([float(d) for d in (lps[:3, :3] / spacing).ravel()])
    return image


def itk_error_reason(exc: RuntimeError) -> str:
    """The informative line of a SimpleITK exception, for one-line error messages.

    Drops the "Exception thrown in ..." source location, the object address
    (``ITK ERROR: MetaImageIO(0x55d6...):``) and the errno text ("Reason: No such file or
    directory") that ITK appends to every failed read.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Exception thrown", "Reason:"))]
    text = lines[-1] if lines else type(exc).__name__
    return re.sub(r"^(ITK ERROR|sitk::ERROR):\s*(\w+\(0x[0-9a-fA-F]+\):\s*)?", "", text)[:160]


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what ITK/MetaIO print straight to the C-level stderr (e.g. "M_ReadElementsData: data
    not read completely") while reading: the Python exception carries the same message, and medseg
    reports it in its own one-line error."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured in a notebook)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)

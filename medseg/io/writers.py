"""``write_volume``: :class:`Volume` → file, format from the extension, always atomic.

* NIfTI (nibabel): sform and qform both set from the affine with code 1 (scanner), units mm, so
  nibabel, ITK and Slicer place the image identically.
* MGH/MGZ (nibabel).
* NRRD and MetaImage (SimpleITK, LPS on disk, compressed).
* Slicer ``.seg.nrrd`` is written by :mod:`medseg.export` (names, colours, terminology).

Integer label maps keep an integer dtype (``bool`` → ``uint8``; ``int64`` → the smallest integer
type that holds the values). The file appears at ``path`` only once it is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from medseg.errors import InvalidInputError
from medseg.io.atomic import atomic_path
from medseg.io.formats import DETACHED_EXTENSIONS, Format, extension_of, format_of
from medseg.io.itk import volume_to_itk
from medseg.io.volume import Volume, check_orthonormal

_MGH_DTYPES = (np.uint8, np.int16, np.int32, np.float32)


def write_volume(volume: Volume, path: str | os.PathLike[str]) -> Path:
    """Write ``volume`` to ``path`` atomically; the format follows the extension.

    Args:
        volume: what to write; a channel axis is written as the 4th file axis.
        path: target file (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``, ``.mgz``, ``.mgh``).

    Returns:
        The path written.

    Raises:
        InvalidInputError: unknown or unsupported output extension, or missing output folder.
    """
    p = Path(path)
    fmt = format_of(p) if extension_of(p) else None
    if fmt is None or fmt is Format.DICOM:
        raise InvalidInputError(
            "cannot write a volume with this extension; use .nii.gz, .nrrd, .mha or .mgz "
            "(DICOM SEG and Slicer .seg.nrrd are written by `medseg export`)",
            path=p,
        )
    if fmt is Format.SLICER_SEG:
        from medseg.export.slicer import write_seg_nrrd

        return write_seg_nrrd(volume, p)
    check_orthonormal(volume.affine, path=p)  # NIfTI's qform, NRRD, MetaImage cannot hold a shear
    data = portable_dtype(volume.array, fmt)
    if extension_of(p) in DETACHED_EXTENSIONS:
        _write_detached(volume, data, p)
        return p
    with atomic_path(p) as tmp:
        if fmt is Format.NIFTI:
            nib.save(_nifti_image(volume, data), tmp)
        elif fmt is Format.MGH:
            nib.save(nib.MGHImage(_file_order(data), volume.affine), tmp)
        else:
            sitk.WriteImage(volume_to_itk(volume, array=data), str(tmp), useCompression=True)
    return p


def portable_dtype(array: npt.NDArray[Any], fmt: Format) -> npt.NDArray[Any]:
    """Cast ``array`` to a dtype every reader of ``fmt`` understands, keeping integers integer."""
    a = np.asarray(array)
    if not a.dtype.isnative:  # SimpleITK refuses big-endian arrays; nibabel would write them as is
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype == np.float16:
        return a.astype(np.float32)
    if fmt is Format.MGH and a.dtype.type not in _MGH_DTYPES:
        return a.astype(_smallest_int(a, (np.uint8, np.int16, np.int32)) if a.dtype.kind in "iu" else np.float32)
    if a.dtype.kind in "iu" and a.dtype.itemsize == 8:
        return a.astype(_smallest_int(a, (np.uint8, np.int16, np.uint16, np.int32, np.uint32)))
    return a


def _smallest_int(a: npt.NDArray[Any], candidates: tuple[type[np.integer[Any]], ...]) -> type[np.integer[Any]]:
    """The first of ``candidates`` that holds every value of ``a``."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for t in candidates:
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return t
    raise InvalidInputError(f"label values {lo}..{hi} do not fit a 32-bit integer; relabel the map first")


def _file_order(data: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``[c, i, j, k]`` → ``[i, j, k, c]`` (the 4th file axis); 3D unchanged."""
    return np.moveaxis(data, 0, 3) if data.ndim == 4 else data


def _nifti_image(volume: Volume, data: npt.NDArray[Any]) -> nib.Nifti1Image:
    img = nib.Nifti1Image(_file_order(data), volume.affine)
    img.header.set_data_dtype(data.dtype)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    return img


def _write_detached(volume: Volume, data: npt.NDArray[Any], path: Path) -> None:
    """Header + data file pair: written in a temporary folder beside ``path``, data file moved
    first and the header last, so the header never points to a missing or partial data file."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError("output folder does not exist; create it first", path=parent)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=parent) as tmp:
        staged = Path(tmp) / path.name
        sitk.WriteImage(volume_to_itk(volume, array=data), str(staged), useCompression=True)
        others = [f for f in Path(tmp).iterdir() if f != staged]
        for f in others:
            os.replace(f, parent / f.name)
        shutil.move(str(staged), str(path))

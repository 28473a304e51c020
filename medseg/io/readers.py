"""``read_volume``: any supported file or DICOM series → :class:`Volume` (RAS affine, ``[i, j, k]``).

NIfTI and MGH are read with nibabel, NRRD and MetaImage with SimpleITK, DICOM with pydicom + GDCM.
Every failure a user can cause (missing file, empty or truncated file, wrong content, unsupported
dimensionality, sheared geometry) becomes an :class:`~medseg.errors.InvalidInputError` or
:class:`~medseg.errors.GeometryError` naming the file.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from medseg.errors import InvalidInputError
from medseg.io.dicom import read_dicom
from medseg.io.formats import DETACHED_EXTENSIONS, Format, extension_of, format_of
from medseg.io.itk import itk_affine_ras, itk_error_reason, quiet_native_stderr
from medseg.io.volume import LPS_TO_RAS, Volume, VolumeMeta, check_orthonormal

log = logging.getLogger(__name__)

#: What nibabel raises on a truncated, corrupt or mislabelled file (a garbage MGH header gives KeyError).
_NIBABEL_ERRORS = (ImageFileError, HeaderDataError, EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError,
                   TypeError, KeyError, IndexError)


def read_volume(path: str | os.PathLike[str], *, series_uid: str | None = None) -> Volume:
    """Read a volume from ``path``.

    Args:
        path: ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``, ``.mha``/``.mhd``, ``.mgz``/``.mgh``,
            ``.seg.nrrd`` (Slicer segmentation, read as a label map), a DICOM folder, a ``.zip``
            of a DICOM series, or one ``.dcm`` file of a series.
        series_uid: which DICOM series to read when a folder holds several.

    Returns:
        The :class:`Volume`: array ``[i, j, k]`` (or ``[c, i, j, k]`` for 4D files, the 4th
        file axis becoming channels) and the voxel → RAS affine.

    Raises:
        InvalidInputError: the path is missing, empty, unreadable or not a 3D volume.
        GeometryError: the header describes a sheared (non-orthonormal) grid.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError("no such file or folder; check the path", path=p)
    fmt = format_of(p)
    if p.is_file() and p.stat().st_size == 0:
        raise InvalidInputError("file is empty (0 bytes); re-export or re-copy it", path=p)
    if fmt is Format.DICOM:
        return read_dicom(p, series_uid=series_uid)
    if fmt is Format.SLICER_SEG:
        from medseg.export.slicer import read_seg_nrrd

        return read_seg_nrrd(p)
    if fmt in (Format.NIFTI, Format.MGH):
        return _read_nibabel(p)
    return _read_itk(p)


def _read_nibabel(path: Path) -> Volume:
    try:
        img: Any = nib.load(path)
        data = _nibabel_data(img)
    except _NIBABEL_ERRORS as exc:
        raise InvalidInputError(f"cannot read as {format_of(path).value} ({_short(exc)}); the file is "
                                "truncated, corrupt or not this format", path=path) from exc
    data = _to_channel_first(data, path)
    affine = np.asarray(img.affine, dtype=np.float64)
    header: dict[str, str] = {"format": type(img).__name__.replace("Image", "")}
    if isinstance(img, nib.Nifti1Image):
        header.update(_nifti_forms(img, path))
    check_orthonormal(affine, path=path)
    return Volume(data, affine, VolumeMeta(source=str(path), header=header))


def _nibabel_data(img: Any) -> npt.NDArray[Any]:
    """Voxels with the header's scaling applied: float32 when scaled, the stored dtype otherwise.

    Always in native byte order: MGH files (and some NIfTI) are big-endian on disk, and a ``>i4``
    array breaks SimpleITK (``GetImageFromArray``) and ``torch.from_numpy`` further down.
    """
    slope = getattr(img.dataobj, "slope", 1.0)
    inter = getattr(img.dataobj, "inter", 0.0)
    if slope != 1.0 or inter != 0.0:
        return np.asarray(img.get_fdata(dtype=np.float32))
    data = np.asanyarray(img.dataobj)
    return data if data.dtype.isnative else data.astype(data.dtype.newbyteorder("="))


def _nifti_forms(img: nib.Nifti1Image, path: Path) -> dict[str, str]:
    hdr = img.header
    sform, scode = hdr.get_sform(coded=True)
    qform, qcode = hdr.get_qform(coded=True)
    if scode and qcode and not np.allclose(sform, qform, atol=1e-3):
        log.warning(
            "%s: sform and qform disagree; using the sform (as nibabel does). ITK/Slicer may use the qform "
            "and place the image differently: rewrite the file with `medseg` to make them consistent",
            path,
        )
    return {"sform_code": str(int(scode)), "qform_code": str(int(qcode)), "datatype": str(hdr.get_data_dtype())}


def _to_channel_first(data: npt.NDArray[Any], path: Path) -> npt.NDArray[Any]:
    """File order ``[i, j, k, (t|c)]`` → ``[i, j, k]`` or ``[c, i, j, k]``."""
    if data.ndim == 5 and data.shape[3] == 1:  # ITK-style vector image: x, y, z, 1, c
        data = data[:, :, :, 0, :]
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        return np.moveaxis(data, 3, 0)
    if data.ndim == 3:
        return data
    if data.ndim < 3:
        raise InvalidInputError(
            f"this is a {data.ndim}D image (shape {data.shape}); medseg needs a 3D volume", path=path
        )
    raise InvalidInputError(
        f"this is a {data.ndim}D image (shape {data.shape}); medseg reads 3D volumes and 4D "
        "multi-channel volumes only: split it into 3D files first",
        path=path,
    )


def _read_itk(path: Path) -> Volume:
    _check_data_file(path)
    try:
        with quiet_native_stderr():
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InvalidInputError(f"cannot read as {format_of(path).value} ({itk_error_reason(exc)}); the file is "
                                "truncated, corrupt or not this format", path=path) from exc
    dim = image.GetDimension()
    array = sitk.GetArrayFromImage(image)
    if dim == 2:
        raise InvalidInputError(f"this is a 2D image (size {image.GetSize()}); medseg needs a 3D volume", path=path)
    if dim == 3:
        affine = itk_affine_ras(image)
        vector = image.GetNumberOfComponentsPerPixel() > 1
        array = np.transpose(array, (3, 2, 1, 0) if vector else (2, 1, 0))
    elif dim == 4:
        affine = _affine_4d(image)
        array = np.transpose(array, (0, 3, 2, 1))  # [t, k, j, i] -> [t, i, j, k]
    else:
        raise InvalidInputError(f"this is a {dim}D image; medseg reads 3D and 4D volumes only", path=path)
    check_orthonormal(affine, path=path)
    header = {"format": format_of(path).value, "pixel": image.GetPixelIDTypeAsString()}
    meta = VolumeMeta(source=str(path), header=header)
    return Volume(np.ascontiguousarray(array), affine, meta)


def _affine_4d(image: sitk.Image) -> npt.NDArray[np.float64]:
    """RAS affine of the first three axes of a 4D ITK image (the 4th becomes channels)."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(4, 4)[:3, :3]
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing()[:3])
    lps[:3, 3] = image.GetOrigin()[:3]
    return LPS_TO_RAS @ lps


#: Header keys naming the voxel data file of a detached header (MetaImage ``.mhd``, NRRD ``.nhdr``).
_DATA_FILE_KEYS = ("elementdatafile", "data file", "datafile")


def _check_data_file(path: Path) -> None:
    """Refuse a detached header (``.mhd``/``.nhdr``) whose single data file is missing.

    ITK reports this only as "File cannot be read ... No such file or directory" about the header;
    say which file is missing instead. Inline data (``LOCAL``), lists and patterns are left to ITK.
    """
    if extension_of(path) not in DETACHED_EXTENSIONS:
        return
    try:
        lines = path.read_bytes()[:65536].decode("latin-1").splitlines()
    except OSError:
        return
    for line in lines:
        key, sep, value = line.partition("=" if extension_of(path) == ".mhd" else ":")
        value = value.strip()
        if not sep or key.strip().lower() not in _DATA_FILE_KEYS:
            continue
        if value and " " not in value and "%" not in value and value.upper() not in ("LOCAL", "LIST"):
            data = path.parent / value
            if not data.is_file():
                raise InvalidInputError(
                    f"the data file {value!r} named in this header is missing; copy it beside the header",
                    path=path,
                )
        return


def _short(exc: BaseException) -> str:
    if isinstance(exc, KeyError):  # nibabel looks header codes up in tables: the message is the bare code
        return f"invalid header code {exc}"
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:160]

"""3D Slicer segmentation files (``.seg.nrrd``): write a label map with names, colours and terminology;
read one back as a label map (the pre-annotate → correct in Slicer → retrain loop).

Follows ``../shared/specs/slicer-seg-nrrd.md`` §2: one layer (a 3D NRRD) because a label map never
overlaps; ``LabelValue`` = the original label value; LPS geometry with the origin at the centre of voxel
``[0, 0, 0]``; contiguous ``SegmentN_ID``; ``Layer`` and a tight ``Extent`` for every segment (empty
segments ``0 -1 0 -1 0 -1``); colours 0-1; ``TerminologyEntry`` tags with exactly 7 parts.

The header is formatted here rather than by pynrrd because pynrrd cannot write non-ASCII text
(``UnicodeEncodeError``) and drops it on reading: names are written and read as UTF-8, which ITK and
so Slicer keep. The voxel data is the plain gzip-compressed array in NRRD (Fortran) order; files are
read with pynrrd's parser (header lines decoded as UTF-8 first).
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from medseg.errors import InvalidInputError
from medseg.export.labelmap import label_array, present_values, reconcile_labels
from medseg.io import Volume, VolumeMeta, atomic_path, check_orthonormal
from medseg.io.volume import LPS_TO_RAS
from medseg.labels import Code, Label, LabelSpec, Terminology

log = logging.getLogger(__name__)

#: Terminology context names written in ``TerminologyEntry`` tags (Slicer matches codes, not names).
TYPE_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
REGION_CONTEXT = "Anatomic codes - DICOM master list"

_EMPTY_EXTENT = (0, -1, 0, -1, 0, -1)
_SPACES = {"left-posterior-superior": np.eye(4), "right-anterior-superior": LPS_TO_RAS}


@dataclass(frozen=True)
class Segment:
    """One segment as stored in a ``.seg.nrrd`` header."""

    id: str
    label: Label
    layer: int
    extent: tuple[int, int, int, int, int, int] | None


# --- writing ---------------------------------------------------------------------------------------
def write_seg_nrrd(volume: Volume, path: str | os.PathLike[str], *, labels: LabelSpec | None = None) -> Path:
    """Write a label map as a Slicer segmentation, atomically.

    Args:
        volume: label map ``[i, j, k]`` with its RAS affine (integral floats are cast).
        path: output file; should end in ``.seg.nrrd`` so Slicer opens it as a segmentation.
        labels: names, colours and terminology; ``None`` → ``label_<v>`` for each value present.
            Values in ``labels`` absent from the map become empty segments (with a warning);
            values in the map absent from ``labels`` get numbered segments (with a warning).

    Returns:
        The path written.

    Raises:
        InvalidInputError: not a label map (channels, non-integral or negative values), or a 1×1×1 image
            (Slicer reads that as "no image data").
    """
    p = Path(path)
    array = label_array(volume)
    if volume.shape == (1, 1, 1):
        raise InvalidInputError(
            "a 1×1×1 label map reads as an empty segmentation in Slicer; nothing to export",
            path=volume.meta.source,
        )
    check_orthonormal(volume.affine)
    boxes = _bounding_boxes(array)
    present = [value for value, box in enumerate(boxes, start=1) if box is not None]
    spec = reconcile_labels(present, labels, source=volume.meta.source)
    if not p.name.lower().endswith(".seg.nrrd"):
        log.warning("%s: name it *.seg.nrrd so that Slicer opens it as a segmentation, not a volume", p)
    _warn_non_ascii(spec, p)
    dtype = _storage_dtype(spec.max_value)
    header = _header(volume.affine, array.shape, dtype, spec, _extents(boxes, spec))
    data = np.asarray(array, dtype=dtype).tobytes(order="F")
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        f.write(header.encode("utf-8"))
        f.write(gzip.compress(data, compresslevel=6))
    return p


def _storage_dtype(max_value: int) -> type[np.integer[Any]]:
    if max_value <= 255:
        return np.uint8
    if max_value <= 65535:
        return np.uint16
    return np.int32


def _bounding_boxes(array: npt.NDArray[Any]) -> list[tuple[slice, ...] | None]:
    """Bounding box slices of values 1, 2, ... (``None`` where a value is absent), in one pass."""
    from scipy import ndimage

    values = array if array.dtype.itemsize <= 4 else array.astype(np.int32)
    return list(ndimage.find_objects(values)) if array.size else []


def _extents(boxes: list[tuple[slice, ...] | None], spec: LabelSpec) -> dict[int, tuple[int, ...]]:
    """Inclusive voxel bounding box ``(i0, i1, j0, j1, k0, k1)`` of each label; empty: ``0 -1 0 -1 0 -1``."""
    out: dict[int, tuple[int, ...]] = {}
    for lab in spec:
        box = boxes[lab.value - 1] if lab.value <= len(boxes) else None
        out[lab.value] = (
            _EMPTY_EXTENT if box is None else tuple(v for s in box for v in (s.start, s.stop - 1))
        )
    return out


def _header(
    affine: npt.NDArray[np.float64],
    shape: tuple[int, ...],
    dtype: type,
    spec: LabelSpec,
    extents: Mapping[int, tuple[int, ...]],
) -> str:
    ijk_to_lps = LPS_TO_RAS @ affine
    directions = " ".join(_vector(ijk_to_lps[:3, axis]) for axis in range(3))
    lines = [
        "NRRD0004",
        "# 3D Slicer segmentation written by medseg",
        f"type: {np.dtype(dtype).name}",
        "dimension: 3",
        "space: left-posterior-superior",
        f"sizes: {shape[0]} {shape[1]} {shape[2]}",
        f"space directions: {directions}",
        "kinds: domain domain domain",
        "encoding: gzip",
        f"space origin: {_vector(ijk_to_lps[:3, 3])}",
        "Segmentation_MasterRepresentation:=Binary labelmap",
        "Segmentation_ContainedRepresentationNames:=Binary labelmap|Closed surface|",
        "Segmentation_ReferenceImageExtentOffset:=0 0 0",
    ]
    for n, lab in enumerate(spec):
        lines += _segment_lines(n, lab, extents[lab.value])
    return "\n".join(lines) + "\n\n"


def _segment_lines(n: int, lab: Label, extent: tuple[int, ...]) -> list[str]:
    tags = "" if lab.terminology is None else f"TerminologyEntry:{terminology_entry(lab.terminology)}|"
    return [
        f"Segment{n}_ID:=Segment_{lab.value}",
        f"Segment{n}_Name:={_one_line(lab.name)}",
        f"Segment{n}_Color:={' '.join(f'{c / 255:.6g}' for c in lab.color)}",
        f"Segment{n}_ColorAutoGenerated:=0",
        f"Segment{n}_NameAutoGenerated:=0",
        f"Segment{n}_LabelValue:={lab.value}",
        f"Segment{n}_Layer:=0",
        f"Segment{n}_Extent:={' '.join(map(str, extent))}",
        f"Segment{n}_Tags:={tags}",
    ]


def _vector(v: npt.NDArray[np.float64]) -> str:
    return "(" + ",".join(repr(float(x) + 0.0) for x in v) + ")"


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()) or "?"


def _warn_non_ascii(spec: LabelSpec, path: Path) -> None:
    names = [lab.name for lab in spec if not lab.name.isascii()]
    if names:
        log.warning(
            "%s: segment name(s) %s are not ASCII; written as UTF-8, which 3D Slicer and medseg read, but "
            "pynrrd-based readers (slicerio) drop the non-ASCII characters",
            path,
            ", ".join(map(repr, names)),
        )


# --- terminology tags ----------------------------------------------------------------------------------
def terminology_entry(term: Terminology) -> str:
    """Slicer's 7-part ``TerminologyEntry`` string (``~``-separated, codes as ``scheme^value^meaning``)."""
    return "~".join(
        [
            TYPE_CONTEXT,
            _code(term.category),
            _code(term.type),
            _code(term.modifier),
            REGION_CONTEXT,
            _code(term.region),
            _code(term.region_modifier),
        ]
    )


def parse_terminology_entry(entry: str) -> Terminology | None:
    """Inverse of :func:`terminology_entry`; ``None`` if malformed (as Slicer drops such tags)."""
    parts = entry.split("~")
    if len(parts) != 7:
        return None
    codes = [_parse_code(parts[i]) for i in (1, 2, 3, 5, 6)]
    if codes[0] is None or codes[1] is None:
        return None
    return Terminology(codes[0], codes[1], codes[2], codes[3], codes[4])


def _code(code: Code | None) -> str:
    if code is None:
        return "^^"
    clean = [re.sub(r"[\^~|]", " ", s) for s in (code.scheme, code.value, code.meaning)]
    return "^".join(clean)


def _parse_code(text: str) -> Code | None:
    parts = text.split("^")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    return Code(value=parts[1], scheme=parts[0], meaning=parts[2])


# --- reading ---------------------------------------------------------------------------------------
def read_seg_nrrd(path: str | os.PathLike[str]) -> Volume:
    """Read a Slicer segmentation as a label map whose values are the segments' ``LabelValue``.

    Raises:
        InvalidInputError: unreadable file, unsupported geometry, overlapping segments, or two segments
            (in different layers) with the same label value.
    """
    return read_seg_nrrd_with_labels(path)[0]


def read_seg_nrrd_with_labels(path: str | os.PathLike[str]) -> tuple[Volume, LabelSpec]:
    """Read a Slicer segmentation as a label map plus its names, colours and terminology.

    Segments in several layers are merged into one map (each keeps its ``LabelValue``); as in Slicer,
    each layer is cropped to the union of its segments' ``Extent``. A file without ``Segment0_ID`` is
    read as a plain label map (as Slicer does) with numbered names.

    Returns:
        ``(label map [i, j, k] with RAS affine, spec)``.
    """
    p = Path(path)
    header, data = _read_nrrd(p)
    affine, layers = _geometry_and_layers(header, data, p)
    segments = _segments(header, p)
    meta = VolumeMeta(source=str(p), header={"format": "seg.nrrd", "segments": str(len(segments))})
    if not segments:
        values = present_values(layers[0])
        return Volume(_compact(layers[0]), affine, meta), LabelSpec.from_values(values)
    labels = _merge_layers(layers, segments, p)
    spec = _spec(segments, p)
    return Volume(labels, affine, meta), spec


def read_seg_nrrd_as(path: str | os.PathLike[str], labels: LabelSpec) -> Volume:
    """Read a Slicer segmentation and renumber its segments to ``labels`` by name.

    For the correct-in-Slicer → retrain loop: Slicer may renumber segments (new segments get new label
    values), so matching by name gives the model's class values back.

    Raises:
        InvalidInputError: a segment's name is not in ``labels`` (the message lists the known names).
    """
    volume, found = read_seg_nrrd_with_labels(path)
    unknown = [lab.name for lab in found if lab.name not in labels.names.values()]
    if unknown:
        raise InvalidInputError(
            f"segment(s) {', '.join(map(repr, unknown))} are not in the label spec "
            f"({', '.join(labels.names.values())}); rename them in Slicer or extend the spec",
            path=path,
        )
    lut = np.zeros(found.max_value + 1, dtype=_storage_dtype(labels.max_value))
    for lab in found:
        lut[lab.value] = labels.value_of(lab.name)
    return volume.with_array(lut[np.asarray(volume.array)])


def _read_nrrd(path: Path) -> tuple[dict[str, Any], npt.NDArray[Any]]:
    import nrrd

    if not path.is_file():
        raise InvalidInputError("no such file; check the path", path=path)
    try:
        with open(path, "rb") as fh:
            lines = _header_lines(fh, path)
            header = nrrd.read_header(lines)
            data = nrrd.read_data(header, fh, str(path))
    except (nrrd.NRRDError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise InvalidInputError(
            f"cannot read as NRRD ({str(exc).strip()[:160]}); the file is truncated, "
            "corrupt or not a Slicer segmentation",
            path=path,
        ) from exc
    return header, data


def _header_lines(fh: IO[bytes], path: Path) -> list[str]:
    lines: list[str] = []
    for raw in iter(fh.readline, b""):
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            return lines
        lines.append(text)
        if len(lines) > 100_000:
            break
    raise InvalidInputError("no end of NRRD header found; not a NRRD file", path=path)


def _geometry_and_layers(
    header: Mapping[str, Any], data: npt.NDArray[Any], path: Path
) -> tuple[npt.NDArray[np.float64], npt.NDArray[Any]]:
    """RAS affine and the data as ``[layer, i, j, k]``."""
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space not in _SPACES:
        raise InvalidInputError(
            f"unsupported NRRD space {space!r}; Slicer segmentations use left-posterior-superior", path=path
        )
    if data.dtype.kind not in "iu":
        raise InvalidInputError(
            f"segmentation voxels have type {data.dtype}; expected an integer type", path=path
        )
    kinds = [str(k).lower() for k in header.get("kinds", ["domain"] * data.ndim)]
    directions = np.asarray(header.get("space directions"), dtype=np.float64)
    if data.ndim == 3:
        data = data[np.newaxis]
    elif data.ndim == 4 and kinds[0] == "list":
        directions = directions[1:]
    else:
        raise InvalidInputError(
            f"unsupported layout: dimension {data.ndim}, kinds {kinds}; expected a 3D label "
            "map or 'list domain domain domain' layers",
            path=path,
        )
    if directions.shape != (3, 3) or not np.all(np.isfinite(directions)):
        raise InvalidInputError("missing or invalid 'space directions' in the header", path=path)
    to_space = np.eye(4)
    to_space[:3, :3] = directions.T
    to_space[:3, 3] = np.asarray(header.get("space origin", [0.0, 0.0, 0.0]), dtype=np.float64)
    affine = LPS_TO_RAS @ (_SPACES[space] @ to_space)
    check_orthonormal(affine)
    return affine, data


def _segments(header: Mapping[str, Any], path: Path) -> list[Segment]:
    """Segments enumerated as Slicer does: ``Segment0_ID``, ``Segment1_ID``... until the first gap."""
    out: list[Segment] = []
    while f"Segment{len(out)}_ID" in header:
        n = len(out)
        field = lambda key, default=None, n=n: header.get(f"Segment{n}_{key}", default)  # noqa: E731
        value = _int(field("LabelValue", "1"), f"Segment{n}_LabelValue", path)
        if value < 1:
            raise InvalidInputError(f"Segment{n}_LabelValue is {value}; label values must be ≥ 1", path=path)
        label = Label(
            value=value,
            name=str(field("Name") or field("ID")),
            color=_color(field("Color")),
            terminology=_tags_terminology(str(field("Tags", ""))),
        )
        extent = field("Extent")
        out.append(
            Segment(
                id=str(field("ID")),
                label=label,
                layer=_int(field("Layer", str(n)), "Layer", path),
                extent=None if extent is None else _extent(str(extent), path),
            )
        )
    return out


def _int(text: Any, what: str, path: Path) -> int:
    try:
        return int(str(text).strip())
    except ValueError as exc:
        raise InvalidInputError(f"{what} is {text!r}, not an integer", path=path) from exc


def _extent(text: str, path: Path) -> tuple[int, int, int, int, int, int]:
    values = [_int(v, "Extent", path) for v in text.split()]
    if len(values) != 6:
        raise InvalidInputError(f"segment Extent {text!r} needs 6 integers", path=path)
    return (values[0], values[1], values[2], values[3], values[4], values[5])


def _color(text: Any) -> tuple[int, int, int]:
    if text is None:
        return (128, 128, 128)
    values = [float(v) for v in str(text).split()][:3]
    scale = 255.0 if max(values, default=0.0) <= 1.0 else 1.0
    rgb = [int(round(min(max(v * scale, 0.0), 255.0))) for v in values]
    return (rgb[0], rgb[1], rgb[2]) if len(rgb) == 3 else (128, 128, 128)


def _tags_terminology(tags: str) -> Terminology | None:
    for item in tags.split("|"):
        key, _, value = item.partition(":")
        if key == "TerminologyEntry":
            return parse_terminology_entry(value)
    return None


def _merge_layers(layers: npt.NDArray[Any], segments: list[Segment], path: Path) -> npt.NDArray[Any]:
    """One label map from all layers: each segment's voxels (within its layer's extent window) get its
    LabelValue; segments of different layers must neither share a value nor overlap."""
    dtype = _storage_dtype(max(s.label.value for s in segments))
    used = sorted({s.layer for s in segments})
    out = np.zeros(layers.shape[1:], dtype=dtype) if len(used) > 1 else None
    owner: dict[int, Segment] = {}
    for layer in used:
        if not 0 <= layer < layers.shape[0]:
            raise InvalidInputError(
                f"a segment refers to layer {layer} but the file has {layers.shape[0]}", path=path
            )
        members = [s for s in segments if s.layer == layer]
        for seg in members:
            if seg.label.value in owner:
                raise InvalidInputError(
                    f"segments {owner[seg.label.value].label.name!r} and {seg.label.name!r} both use label "
                    f"value {seg.label.value} (in different layers); give them different label values, "
                    "or export each as its own file",
                    path=path,
                )
            owner[seg.label.value] = seg
        mapped = _claimed(layers[layer], members, path)
        if out is None:  # one layer: nothing to merge
            return mapped.astype(dtype, copy=False)
        if layer != used[0]:
            _check_overlap(out, mapped, owner, path)
        np.copyto(out, mapped, where=mapped != 0, casting="unsafe")
    assert out is not None
    return out


def _claimed(layer: npt.NDArray[Any], members: list[Segment], path: Path) -> npt.NDArray[Any]:
    """The layer with unclaimed values zeroed and everything outside the extent window cleared."""
    claimed = {s.label.value for s in members}
    unclaimed = [v for v in present_values(layer) if v not in claimed]
    if unclaimed:
        log.warning(
            "%s: voxel value(s) %s belong to no segment (invisible in Slicer); ignored", path, unclaimed
        )
    window = _union_extent(members, layer.shape)
    whole = all(w == slice(0, n) for w, n in zip(window, layer.shape, strict=True))
    if whole and not unclaimed:
        return layer  # nothing to clear
    mapped = layer.copy(order="K")  # keep the file's (Fortran) layout: a plain memory copy
    for axis, w in enumerate(window):  # zero the slabs outside the window
        before = [slice(None)] * 3
        before[axis] = slice(0, w.start)
        after = [slice(None)] * 3
        after[axis] = slice(w.stop, None)
        mapped[tuple(before)] = 0
        mapped[tuple(after)] = 0
    if unclaimed:
        mapped[np.isin(mapped, unclaimed)] = 0
    return mapped


def _check_overlap(
    out: npt.NDArray[Any], mapped: npt.NDArray[Any], owner: dict[int, Segment], path: Path
) -> None:
    clash = (out != 0) & (mapped != 0)
    if np.any(clash):
        first = tuple(int(a[0]) for a in np.nonzero(clash))
        a, b = owner[int(out[first])].label.name, owner[int(mapped[first])].label.name
        raise InvalidInputError(
            f"segments {a!r} and {b!r} overlap in {int(clash.sum())} voxels, "
            "which a label map cannot hold; in Slicer remove the overlap (Segment Editor: masking "
            "'outside all segments' or Logical operators → Subtract), "
            "or export the overlapping segment as a separate file",
            path=path,
        )


def _union_extent(members: list[Segment], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Slicer crops a layer to the union of its segments' extents; no Extent → the whole image."""
    if any(s.extent is None for s in members):
        return tuple(slice(0, n) for n in shape)
    lo = [min(s.extent[2 * a] for s in members if s.extent) for a in range(3)]
    hi = [max(s.extent[2 * a + 1] for s in members if s.extent) for a in range(3)]
    return tuple(slice(max(lo[a], 0), max(hi[a] + 1, 0)) for a in range(3))


def _spec(segments: list[Segment], path: Path) -> LabelSpec:
    names = [s.label.name for s in segments]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInputError(
            f"several segments are named {', '.join(map(repr, dup))}; rename them in Slicer "
            "so each structure has a distinct name",
            path=path,
        )
    return LabelSpec(tuple(s.label for s in segments))


def _compact(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    top = int(array.max()) if array.size else 0
    if array.dtype.kind == "i" and array.size and int(array.min()) < 0:
        return array
    return array.astype(_storage_dtype(top), copy=False)

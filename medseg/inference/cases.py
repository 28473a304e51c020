"""What ``medseg infer INPUT`` means: one case or a cohort, and where each output goes.

* A volume file, a ``.zip`` or a folder holding DICOM files directly → one case; its output
  defaults to ``<input name>_seg.<ext>`` beside the input.
* A folder of volume files and/or DICOM series sub-folders, or a CSV with an ``image`` column
  (paths relative to the CSV) → a cohort; outputs go to a folder as ``<case>_seg.<ext>``. In an
  nnU-Net ``imagesTs`` folder (every name ending in ``_0000``) the channel suffix is dropped.

Shards (``K/N``) take every N-th case starting at K of the sorted case list, so shards never
overlap and together cover every case.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from medseg.errors import ConfigError, InvalidInputError
from medseg.io.formats import VOLUME_EXTENSIONS, extension_of, is_dicom_file, strip_extension

#: nnU-Net's per-channel file suffix (``case_0000.nii.gz``), dropped from case names.
CHANNEL_SUFFIX = re.compile(r"_\d{4}$")

#: Output format name → file suffix.
OUTPUT_SUFFIX = {"nifti": ".nii.gz", "seg.nrrd": ".seg.nrrd", "dicom-seg": ".dcm"}


@dataclass(frozen=True)
class InferenceCase:
    """One input to segment and the output path it gets."""

    case_id: str
    input: Path
    output: Path


#: Plain label-volume extensions accepted for ``--format nifti`` (any format ``write_volume`` writes).
PLAIN_LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".mgz", ".mgh")


def format_for_output(path: Path) -> str:
    """The output format an output path asks for: ``.seg.nrrd`` → ``seg.nrrd``, ``.dcm`` → ``dicom-seg``,
    any other volume extension → ``nifti`` (a plain label volume)."""
    ext = extension_of(path)
    return {".seg.nrrd": "seg.nrrd", ".dcm": "dicom-seg"}.get(ext, "nifti")


def accepts_suffix(output_format: str, path: Path) -> bool:
    """Whether ``path``'s extension fits ``output_format``."""
    ext = extension_of(path)
    return ext in PLAIN_LABEL_SUFFIXES if output_format == "nifti" else ext == output_suffix(output_format)


def output_suffix(output_format: str) -> str:
    from medseg.errors import check_option

    return OUTPUT_SUFFIX[check_option(output_format, OUTPUT_SUFFIX, name="output format")]


def default_output(input_path: Path, output_format: str = "nifti") -> Path:
    """``scan.nii.gz`` → ``scan_seg.nii.gz`` beside it (``series/`` → ``series_seg.nii.gz``)."""
    name = input_path.name if input_path.is_dir() else strip_extension(input_path)
    return input_path.parent / f"{name}_seg{output_suffix(output_format)}"


def is_single_input(path: Path) -> bool:
    """True for a volume file, a zip, or a folder that directly holds DICOM files."""
    if not path.exists():
        raise InvalidInputError("no such file or folder; check the path", path=path)
    if path.is_file():
        return path.suffix.lower() != ".csv"
    files = [p for p in path.iterdir() if p.is_file()]
    has_volumes = any(extension_of(p) and extension_of(p) not in (".dcm", ".zip") for p in files)
    return not has_volumes and any(p.suffix.lower() == ".dcm" or is_dicom_file(p) for p in files)


def collect_cases(path: Path, output_dir: Path, *, output_format: str = "nifti") -> list[InferenceCase]:
    """The cohort under ``path`` (folder or CSV), sorted by case id, with outputs in ``output_dir``.

    Raises:
        InvalidInputError: nothing to segment, duplicate case names, or a CSV without ``image``.
    """
    inputs = _csv_inputs(path) if path.is_file() else _folder_inputs(path)
    if not inputs:
        raise InvalidInputError("no volumes or DICOM series found to segment; point to a file, a folder of "
                                "volumes or DICOM series, or a CSV with an 'image' column", path=path)
    suffix = output_suffix(output_format)
    names = {p: p.name if p.is_dir() else strip_extension(p) for p in inputs}
    if all(CHANNEL_SUFFIX.search(n) for n in names.values()):
        if any(not n.endswith("_0000") for n in names.values()):
            raise InvalidInputError("this looks like an nnU-Net imagesTs folder with several channels per case "
                                    "(_0001...); medseg infer takes one file per case: stack the channels into one "
                                    "multi-channel volume per case", path=path)
        names = {p: n[: -len("_0000")] for p, n in names.items()}  # nnU-Net's channel suffix
    cases: dict[str, InferenceCase] = {}
    for p in inputs:
        case_id = names[p]
        if case_id in cases:
            raise InvalidInputError(f"two inputs share the case name {case_id!r} ({cases[case_id].input} and {p}); "
                                    "rename one so their outputs do not collide", path=path)
        cases[case_id] = InferenceCase(case_id, p, output_dir / f"{case_id}_seg{suffix}")
    return [cases[k] for k in sorted(cases)]


def _folder_inputs(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file() and extension_of(p) in VOLUME_EXTENSIONS and extension_of(p) != ".dcm":
            if not strip_extension(p).endswith("_seg"):  # our own outputs written beside inputs
                out.append(p)
        elif p.is_dir() and any(f.is_file() for f in p.rglob("*")):
            out.append(p)
    return out


def _csv_inputs(path: Path) -> list[Path]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "image" not in rows[0]:
        raise InvalidInputError("CSV needs a header with an 'image' column (paths relative to the CSV)", path=path)
    return [(path.parent / row["image"]).resolve() for row in rows if row["image"].strip()]


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with ``0 ≤ K < N``."""
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError as exc:
        raise ConfigError(f"--shard must look like K/N (e.g. 0/4), got {spec!r}") from exc
    if not (n >= 1 and 0 <= k < n):
        raise ConfigError(f"--shard K/N needs 0 ≤ K < N, got {spec!r}")
    return k, n


def take_shard(cases: list[InferenceCase], shard: tuple[int, int]) -> list[InferenceCase]:
    """Every N-th case starting at K."""
    k, n = shard
    return cases[k::n]

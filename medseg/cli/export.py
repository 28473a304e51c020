"""``medseg export LABELMAP -o OUT``: a label map → Slicer ``.seg.nrrd``, DICOM SEG or NIfTI, plus
optional statistics (JSON + CSV) and a PNG preview."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from medseg.io import Volume
    from medseg.labels import LabelSpec


def export(
    labelmap: Path = typer.Argument(..., help="Label map: .nii.gz, .nrrd, .mha, .seg.nrrd, ..."),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Output; the extension picks the format: .seg.nrrd (3D Slicer), "
        ".dcm (DICOM SEG, needs --reference), .nii.gz, .nii, .nrrd, .mha.",
    ),
    labels: Path = typer.Option(
        None,
        "--labels",
        help="Label names: dataset.json, JSON/YAML name → value, or a medseg label spec. "
        "Default: names stored in a .seg.nrrd input, else label_<value>.",
    ),
    reference: Path = typer.Option(
        None, "--reference", help="Source DICOM series (folder or .zip), for .dcm."
    ),
    image: Path = typer.Option(None, "--image", help="Image the labels belong to (statistics, preview)."),
    statistics: bool = typer.Option(
        False, "--statistics", help="Write <output>_statistics.json and .csv (volume, intensity, box)."
    ),
    preview: bool = typer.Option(False, "--preview", help="Write <output>_preview.png (3 slices, overlay)."),
    model_name: str = typer.Option(None, "--model-name", help="Model name recorded in DICOM SEG."),
) -> None:
    """Export a label map for 3D Slicer, PACS (DICOM SEG) or other tools, with names and colours."""
    from medseg.export import export_labelmap, write_preview, write_statistics
    from medseg.export.exporter import output_stem
    from medseg.export.labelmap import label_array, present_values
    from medseg.io import read_volume
    from medseg.labels import LabelSpec, load_label_spec

    label, stored = _read_labelmap(labelmap)
    spec = load_label_spec(labels) if labels is not None else stored
    if spec is None:
        spec = LabelSpec.from_values(present_values(label_array(label)))
    img = read_volume(image) if image is not None else None
    written = [
        export_labelmap(
            label, output, labels=spec, reference_dicom=reference, image=img, model_name=model_name
        )
    ]
    stem = output_stem(output)
    if statistics:
        written += write_statistics(label, stem.with_name(stem.name + "_statistics"), labels=spec, image=img)
    if preview:
        written.append(write_preview(label, img, stem.with_name(stem.name + "_preview.png"), labels=spec))
    for path in written:
        typer.echo(f"wrote {path}")


def _read_labelmap(path: Path) -> tuple[Volume, LabelSpec | None]:
    """The label map, plus the names a ``.seg.nrrd`` carries (else ``None``)."""
    from medseg.io import read_volume

    if path.name.lower().endswith(".seg.nrrd"):
        from medseg.export.slicer import read_seg_nrrd_with_labels

        return read_seg_nrrd_with_labels(path)
    return read_volume(path), None

"""PNG preview (colours, laterality on screen) and the cohort HTML report."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from medseg.errors import GeometryError
from medseg.export import CaseSummary, compute_statistics, write_preview, write_report
from medseg.export.preview import OVERLAY_ALPHA
from medseg.io import Volume
from medseg.labels import LabelSpec

SPEC = LabelSpec.from_mapping({"liver": 1, "spleen": 2})
LPS = np.diag([-1.5, -1.5, 4.0, 1.0])  # i → patient's left, j → posterior


@pytest.fixture
def case():
    labels = np.zeros((40, 32, 10), np.uint8)
    labels[4:16, 8:24, 2:8] = 1  # small i = patient's right (LPS)
    labels[26:34, 10:20, 3:7] = 2  # large i = patient's left
    return Volume(labels, LPS)


def colour_pixels(png: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """(row, column) of pixels showing ``rgb`` overlaid on black."""
    want = OVERLAY_ALPHA * np.asarray(rgb) / 255
    return np.argwhere(np.all(np.abs(png[..., :3] - want) < 0.02, axis=-1))


def test_preview_png_overlay_colours_and_radiological_laterality(case, tmp_path):
    path = write_preview(case, None, tmp_path / "p.png", labels=SPEC)
    png = imread(path)
    assert png.shape[:2] == (460, 1200) and path.stat().st_size > 5_000
    liver, spleen = (colour_pixels(png, SPEC.get(v).color) for v in (1, 2))
    assert len(liver) > 500 and len(spleen) > 200
    axial_liver, axial_spleen = liver[liver[:, 1] < 400], spleen[spleen[:, 1] < 400]
    assert len(axial_liver) and len(axial_spleen)
    # radiological convention: the patient's right (liver) is on the viewer's left
    assert axial_liver[:, 1].mean() < axial_spleen[:, 1].mean()


def test_preview_with_image_and_grid_check(case, tmp_path):
    image = Volume(np.random.default_rng(0).normal(size=case.shape).astype(np.float32), LPS)
    path = write_preview(case, image, tmp_path / "p.png", labels=SPEC, title="case 1")
    assert imread(path).shape[:2] == (460, 1200)
    moved = Volume(image.array, np.diag([-1.5, -1.5, 5.0, 1.0]))
    with pytest.raises(GeometryError, match="different grids"):
        write_preview(case, moved, tmp_path / "q.png")


def test_cohort_report(case, tmp_path):
    (tmp_path / "previews").mkdir()
    preview = write_preview(case, None, tmp_path / "previews" / "a.png", labels=SPEC)
    empty = Volume(np.zeros_like(case.array), LPS)
    cases = [
        CaseSummary("case <a>", compute_statistics(case, labels=SPEC), preview=preview),
        CaseSummary("case b", compute_statistics(empty, labels=SPEC), warnings=("no liver found",)),
    ]
    path = write_report(cases, tmp_path / "report.html")
    text = path.read_text()
    assert "2 case(s), 1 with warnings." in text
    assert 'src="previews/a.png"' in text and "case &lt;a&gt;" in text
    liver_ml = 12 * 16 * 6 * 1.5 * 1.5 * 4.0 / 1000
    assert f"<td>{liver_ml:.2f}</td>" in text and '<td class="empty">0</td>' in text
    assert "no liver found" in text


def test_cohort_report_from_exported_files(case, tmp_path):
    """What ``medseg infer`` calls: report on the label files it wrote, previews found beside them."""
    from medseg.export import export_labelmap, write_cohort_report

    a = export_labelmap(case, tmp_path / "a.seg.nrrd", labels=SPEC)
    write_preview(case, None, tmp_path / "a_preview.png", labels=SPEC)
    only_liver = Volume(np.where(case.array == 1, 1, 0).astype(np.uint8), LPS)
    b = export_labelmap(only_liver, tmp_path / "b.nii.gz", labels=SPEC)
    broken = tmp_path / "c.nii.gz"
    broken.write_bytes(b"not a nifti")
    path = write_cohort_report([a, b, broken], tmp_path / "report.html", labels=SPEC)
    text = path.read_text()
    assert "3 case(s), 2 with warnings." in text and 'src="a_preview.png"' in text
    assert "no voxels: spleen" in text and "cannot read c.nii.gz" in text
    spleen_ml = 8 * 10 * 4 * 1.5 * 1.5 * 4.0 / 1000
    assert f"<td>{spleen_ml:.2f}</td>" in text

"""Slicer .seg.nrrd export: medseg vs slicerio (the reference Python writer/reader), side by side.

Writes and reads (a) TotalSegmentator's 61-class CT prediction (122×101×112) and (b) a synthetic
512×512×300 label map with 20 structures, each with names/colours/terminology, and prints the median
time of a few runs and the ratio. slicerio computes no per-segment Extent (writes the full image extent)
and compresses with pynrrd's default gzip level; medseg writes tight extents with gzip level 1.

Run: python benchmarks/export_seg_nrrd.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import slicerio

from medseg.export.slicer import read_seg_nrrd, write_seg_nrrd
from medseg.io import Volume
from medseg.labels import LabelSpec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "totalsegmentator_example"
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def median_seconds(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def slicerio_segments(spec: LabelSpec) -> list[dict]:
    return [
        {
            "id": f"Segment_{lab.value}",
            "name": lab.name,
            "labelValue": lab.value,
            "layer": 0,
            "color": [c / 255 for c in lab.color],
        }
        for lab in spec
    ]


def cases() -> list[tuple[str, Volume, LabelSpec]]:
    out = []
    if DATA.exists():
        img = nib.load(DATA / "ct_full" / "label_total_fast.nii.gz")
        labels = np.asarray(img.dataobj)
        names = json.loads((DATA / "class_map.json").read_text())["total"]
        spec = LabelSpec.from_mapping({names[str(int(v))]: int(v) for v in np.unique(labels) if v})
        out.append(("TotalSegmentator CT, 61 classes, 122x101x112", Volume(labels, img.affine), spec))
    rng = np.random.default_rng(0)
    big = np.zeros((512, 512, 300), np.uint8)
    for v in range(1, 21):
        i, j, k = rng.integers(40, 440), rng.integers(40, 440), rng.integers(20, 260)
        big[i : i + 60, j : j + 50, k : k + 30] = v
    out.append(
        (
            "synthetic, 20 classes, 512x512x300",
            Volume(big, np.diag([0.8, 0.8, 1.5, 1.0])),
            LabelSpec.from_values(range(1, 21)),
        )
    )
    return out


def compare(name: str, volume: Volume, spec: LabelSpec, tmp: Path) -> None:
    ours, theirs = tmp / "medseg.seg.nrrd", tmp / "slicerio.seg.nrrd"
    seg = {
        "voxels": np.asarray(volume.array),
        "ijkToLPS": LPS @ volume.affine,
        "segments": slicerio_segments(spec),
    }
    w_ours = median_seconds(lambda: write_seg_nrrd(volume, ours, labels=spec))
    w_theirs = median_seconds(lambda: slicerio.write_segmentation(str(theirs), seg))
    r_ours = median_seconds(lambda: read_seg_nrrd(ours))
    r_theirs = median_seconds(lambda: slicerio.read_segmentation(str(theirs)))
    print(f"{name:48s} {'write':6s} {w_ours:9.3f} {w_theirs:11.3f} {w_theirs / w_ours:6.1f}x")
    print(f"{'':48s} {'read':6s} {r_ours:9.3f} {r_theirs:11.3f} {r_theirs / r_ours:6.1f}x")
    print(f"{'':48s} {'MB':6s} {ours.stat().st_size / 1e6:9.2f} {theirs.stat().st_size / 1e6:11.2f}")


def main() -> None:
    print(f"{'case':48s} {'step':6s} {'medseg s':>9s} {'slicerio s':>11s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, volume, spec in cases():
            compare(name, volume, spec, Path(tmp))


if __name__ == "__main__":
    main()

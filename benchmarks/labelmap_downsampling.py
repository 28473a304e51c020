"""Label-map downsampling for synthesis: majority vote (medseg) vs nearest neighbour, side by side.

    python benchmarks/labelmap_downsampling.py [--spacing-mm 2.0] [--maps 10]

Each SynthSeg training map (1 mm) is brought to RAS, cropped, downsampled to ``--spacing-mm`` both
ways, upsampled back to 1 mm with nearest neighbour and compared with the original over the 16
brain classes: mean Dice (how much anatomy the coarse map keeps) and mean |volume error|.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from medseg.data.labelmaps import majority_resample, prepare_label_map
from medseg.io import read_volume
from medseg.labels.freesurfer import freesurfer_to_brain16

MAPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthseg_labelmaps" / "training_label_maps"


def nearest_resample(labels: np.ndarray, factor: float) -> np.ndarray:
    """Nearest neighbour on the output grid of :func:`majority_resample` (centres at (o + 0.5) f - 0.5)."""
    idx = [np.clip(np.floor((np.arange(math.ceil(n / factor - 1e-9)) + 0.5) * factor), 0, n - 1).astype(int)
           for n in labels.shape]
    return labels[np.ix_(*idx)]


def back_to_1mm(labels: np.ndarray, factor: float, shape: tuple[int, ...]) -> np.ndarray:
    idx = [np.minimum(np.floor((np.arange(n) + 0.5) / factor).astype(int), m - 1)
           for n, m in zip(shape, labels.shape, strict=True)]
    return labels[np.ix_(*idx)]


def scores(original: np.ndarray, coarse: np.ndarray, factor: float) -> tuple[float, float]:
    a = freesurfer_to_brain16(original)
    b = freesurfer_to_brain16(back_to_1mm(coarse, factor, original.shape))
    c = freesurfer_to_brain16(coarse)
    dice, volume = [], []
    for k in range(1, 17):
        x, y = a == k, b == k
        dice.append(2 * np.sum(x & y) / (x.sum() + y.sum()))
        volume.append(abs(np.sum(c == k) * factor**3 / x.sum() - 1))
    return float(np.mean(dice)), float(np.mean(volume))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing-mm", type=float, default=2.0)
    parser.add_argument("--maps", type=int, default=10)
    args = parser.parse_args()
    header = ("map", "majority Dice", "nearest Dice", "majority |dV|", "nearest |dV|", "majority s")
    print(f"{header[0]:<24}" + "".join(f"{h:>14}" for h in header[1:]))
    rows = []
    for path in sorted(MAPS.glob("*.nii.gz"))[: args.maps]:
        ras = prepare_label_map(read_volume(path), spacing_mm=None)  # RAS, cropped, 1 mm
        labels = ras.array.astype(np.int64)
        factor = args.spacing_mm / ras.spacing[0]
        start = time.perf_counter()
        majority = majority_resample(labels, (factor,) * 3)
        seconds = time.perf_counter() - start
        dice_m, dv_m = scores(labels, majority, factor)
        dice_n, dv_n = scores(labels, nearest_resample(labels, factor), factor)
        rows.append((dice_m, dice_n, dv_m, dv_n, seconds))
        print(f"{path.name:<24}" + "".join(f"{v:>14.4f}" for v in rows[-1]))
    print(f"{'mean':<24}" + "".join(f"{v:>14.4f}" for v in np.mean(rows, axis=0)))


if __name__ == "__main__":
    main()

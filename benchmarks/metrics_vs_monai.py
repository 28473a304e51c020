"""Benchmark: medseg.metrics.evaluate_case against MONAI 1.6 (and DeepMind's surface-distance).

Per-class Dice, HD, HD95, ASSD and NSD (2 mm) of a synthetic prediction against a synthetic
reference label map: a 5-class 256×256×200 map and a 20-class 512×512×300 map of smooth
organ-like blobs; the prediction has perturbed surfaces, a small shift and stray voxels.

MONAI needs one call per metric: on one-hot tensors for the 5-class map (its usual input), and
class by class on binary tensors for the 20-class map (a 21-channel float one-hot of 512×512×300
takes 6.6 GB per tensor). The one-hot conversion is timed with MONAI, since medseg takes the label
maps as they are. DeepMind's ``surface-distance`` (``pip install surface-distance``) uses a
different, surfel-area-weighted definition, so only its time is comparable.

Run: ``python benchmarks/metrics_vs_monai.py`` (add ``--quick`` to skip the 20-class map).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medseg.metrics import evaluate_case

TOLERANCE_MM = 2.0
METRICS = ("dice", "hd", "hd95", "assd", "nsd")


@dataclass(frozen=True)
class Scenario:
    name: str
    shape: tuple[int, int, int]
    n_classes: int
    spacing: tuple[float, float, float]
    one_hot: bool


SCENARIOS = (
    Scenario("5 classes, 256×256×200", (256, 256, 200), 5, (0.8, 0.8, 2.0), one_hot=True),
    Scenario("20 classes, 512×512×300", (512, 512, 300), 20, (0.7, 0.7, 1.0), one_hot=False),
)


def synthetic_pair(
    shape: tuple[int, int, int], n_classes: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) label maps of organ-like blobs with realistic errors."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    size = np.array(shape)
    for label in range(1, n_classes + 1):
        radius = rng.uniform(0.05, 0.16, 3) * size
        centre = rng.uniform(radius + 2, size - radius - 2)
        lo = np.maximum((centre - 1.3 * radius).astype(int), 0)
        hi = np.minimum((centre + 1.3 * radius).astype(int) + 1, size)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        shape_box = tuple(int(n) for n in hi - lo)
        ellipsoid = sum(((g - c) / r) ** 2 for g, c, r in zip(np.ogrid[box], centre, radius, strict=True))
        ref[box][ellipsoid + _bumps(rng, shape_box, 0.1) < 1] = label
        perturbed = ellipsoid + _bumps(rng, shape_box, 0.15)
        shifted = np.roll(perturbed, tuple(rng.integers(-2, 3, 3)), axis=(0, 1, 2))
        pred[box][shifted < 1] = label
    for _ in range(n_classes):  # stray false-positive specks
        c = rng.integers(5, size - 5)
        pred[c[0] - 2 : c[0] + 2, c[1] - 2 : c[1] + 2, c[2] - 1 : c[2] + 1] = rng.integers(1, n_classes + 1)
    return pred, ref


def _bumps(rng: np.random.Generator, shape: tuple[int, ...], amplitude: float) -> np.ndarray:
    """Smooth random surface perturbation: a 6×6×6 normal grid upsampled to ``shape``."""
    zoomed = ndimage.zoom(rng.normal(0.0, amplitude, (6, 6, 6)), [n / 6 for n in shape], order=1)
    return zoomed[: shape[0], : shape[1], : shape[2]]


def run_medseg(pred: np.ndarray, ref: np.ndarray, s: Scenario) -> dict[str, np.ndarray]:
    results = evaluate_case(pred, ref, spacing_mm=s.spacing, labels=range(1, s.n_classes + 1))
    ok = np.array([m.status == "ok" for m in results])
    values = {k: np.array([getattr(m, k) if m.status == "ok" else np.nan for m in results]) for k in METRICS}
    values["ok"] = ok
    return values


def run_monai(
    pred: np.ndarray, ref: np.ndarray, s: Scenario
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """MONAI's values and the seconds spent per metric (the one-hot encoding is added to each)."""
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    sp = list(s.spacing)
    calls: dict[str, Callable[..., torch.Tensor]] = {
        "dice": lambda p, r, n, bg: compute_dice(p, r, include_background=bg, ignore_empty=False),
        "hd": lambda p, r, n, bg: compute_hausdorff_distance(p, r, include_background=bg, spacing=sp),
        "hd95": lambda p, r, n, bg: compute_hausdorff_distance(
            p, r, include_background=bg, percentile=95, spacing=sp
        ),
        "assd": lambda p, r, n, bg: compute_average_surface_distance(
            p, r, include_background=bg, symmetric=True, spacing=sp
        ),
        "nsd": lambda p, r, n, bg: compute_surface_dice(
            p, r, [TOLERANCE_MM] * n, include_background=bg, spacing=sp
        ),
    }
    if s.one_hot:
        from monai.networks.utils import one_hot

        t0 = time.perf_counter()
        p, r = (
            one_hot(torch.from_numpy(a[None, None].astype(np.int64)), s.n_classes + 1) for a in (pred, ref)
        )
        encode = time.perf_counter() - t0
        seconds, values = {}, {}
        for key, call in calls.items():
            t0 = time.perf_counter()
            values[key] = call(p, r, s.n_classes, False)[0].numpy()
            seconds[key] = time.perf_counter() - t0
        return values, seconds, encode
    seconds, encode = dict.fromkeys(calls, 0.0), 0.0
    per_class: dict[str, list[np.ndarray]] = {key: [] for key in calls}
    for label in range(1, s.n_classes + 1):
        t0 = time.perf_counter()
        p, r = (torch.from_numpy((a == label)[None, None].astype(np.float32)) for a in (pred, ref))
        encode += time.perf_counter() - t0
        for key, call in calls.items():
            t0 = time.perf_counter()
            per_class[key].append(call(p, r, 1, True)[0].numpy())
            seconds[key] += time.perf_counter() - t0
    return {key: np.concatenate(v) for key, v in per_class.items()}, seconds, encode


def run_deepmind(pred: np.ndarray, ref: np.ndarray, s: Scenario) -> None:
    import surface_distance as sd

    for label in range(1, s.n_classes + 1):
        p, r = pred == label, ref == label
        sd.compute_dice_coefficient(r, p)
        if p.any() and r.any():
            d = sd.compute_surface_distances(r, p, s.spacing)
            sd.compute_robust_hausdorff(d, 100)
            sd.compute_robust_hausdorff(d, 95)
            sd.compute_average_surface_distance(d)
            sd.compute_surface_dice_at_tolerance(d, TOLERANCE_MM)


def best_of(repeats: int, fn: Callable[..., object], *args: object) -> tuple[float, object]:
    """Shortest wall time of ``repeats`` calls of ``fn(*args)`` and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 5-class map")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for MONAI (default 2)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import monai
    import torch

    torch.set_num_threads(args.threads)
    have_deepmind = importlib.util.find_spec("surface_distance") is not None
    cores = len(os.sched_getaffinity(0))
    versions = f"monai {monai.__version__}, torch {torch.__version__}"
    print(f"machine: {platform.machine()}, {cores} CPU cores; {versions}")
    print(f"MONAI with {args.threads} torch threads; medseg single-threaded; NSD tolerance {TOLERANCE_MM} mm")
    if not have_deepmind:
        print("DeepMind surface-distance: not installed (pip install surface-distance); skipped")
    for s in SCENARIOS[:1] if args.quick else SCENARIOS:
        report(s, have_deepmind)


def report(s: Scenario, have_deepmind: bool) -> None:
    pred, ref = synthetic_pair(s.shape, s.n_classes)
    t_med, ours = best_of(3, run_medseg, pred, ref, s)
    theirs, seconds, encode = run_monai(pred, ref, s)
    t_mon = sum(seconds.values()) + encode
    t_hd95, t_dice = seconds["hd95"] + encode, seconds["dice"] + encode
    ok = ours["ok"]
    print(f"\n{s.name}, spacing {s.spacing} mm, {int(ok.sum())}/{s.n_classes} classes present in both maps")
    print(f"  {'':<44}{'time (s)':>9}{'÷ medseg':>9}")
    print(f"  {'medseg evaluate_case: all 5 metrics':<44}{t_med:>9.2f}{'1.0×':>9}")
    print(f"  {'MONAI: all 5 metrics (5 compute_* calls)':<44}{t_mon:>9.2f}{t_mon / t_med:>8.1f}×")
    print(f"  {'MONAI: HD95 only':<44}{t_hd95:>9.2f}{t_hd95 / t_med:>8.1f}×")
    print(f"  {'MONAI: Dice only':<44}{t_dice:>9.2f}{t_dice / t_med:>8.1f}×")
    print(f"  {'  (of which encoding the label maps)':<44}{encode:>9.2f}")
    if have_deepmind:
        t_dm, _ = best_of(1, run_deepmind, pred, ref, s)
        print(f"  {'DeepMind surface-distance: all (surfels)':<44}{t_dm:>9.2f}{t_dm / t_med:>8.1f}×")
    diffs = {k: float(np.max(np.abs(ours[k][ok] - theirs[k][ok]))) for k in METRICS}
    print("  max |medseg − MONAI| over those classes: " + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()))


if __name__ == "__main__":
    main()

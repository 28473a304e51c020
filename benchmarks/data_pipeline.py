"""Benchmark: training patches per second of medseg's loader vs a MONAI CacheDataset pipeline.

Both pipelines read the same cases, bring them to the same spacing and CT normalisation once
(medseg: :class:`PreprocessedCache`; MONAI: ``CacheDataset`` over the deterministic transforms),
then draw patches of the same size with 1/3 forced foreground and nnU-Net's augmentation
probabilities, in a torch DataLoader with the same number of workers and batch size:

* **medseg**: ``make_patch_loader`` (memory-mapped cache, stored class locations, rotation/scaling/
  mirroring in one ``grid_sample``, MONAI intensity transforms).
* **MONAI**: ``RandCropByPosNegLabeld`` (pos 1 : neg 2) → ``RandAffined`` (rotation ±30°, scale
  0.7-1.4, p = 0.36 = 1 - 0.8², nnU-Net's chance of rotation or scaling) → ``RandFlipd`` ×3 →
  Gaussian noise, blur, brightness, contrast, low resolution, gamma (same probabilities), as in
  MONAI's tutorials, with MONAI's defaults. A second, tuned variant caches the foreground/background
  indices (``FgBgToIndicesd``), so the crop does not scan the label map each time, and turns off the
  deep copy of each cached case per sample (``copy_cache=False``).

Data: the TotalSegmentator example CT (122×101×112 at 3 mm, 61 classes, from ../shared/data)
resampled to 1.5 mm, as several cases with different crops and flips; or, with ``--data phantom``
(or when the CT is absent), synthetic phantoms. Nothing is written outside a temporary folder.

Reported per pipeline: one-off preprocessing time, patches per second (wall clock, median over
rounds in which the pipelines take turns) and CPU milliseconds per patch summed over the main
process and the workers (robust to other jobs on a shared machine), each with medseg's ratio.

Run: ``python benchmarks/data_pipeline.py`` (``--quick`` for a smaller patch and fewer batches).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from medseg.data.cache import PreprocessedCache
from medseg.data.dataset import Dataset, load_dataset
from medseg.data.fingerprint import compute_fingerprint
from medseg.data.loader import make_patch_loader
from medseg.data.plan import Plan
from medseg.data.planner import channel_norm, derive_topology
from medseg.data.synthetic import make_phantom_dataset
from medseg.io import Volume, read_volume, write_volume

SHARED_CT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "totalsegmentator_example" / "ct_full"


def make_ct_cases(root: Path, n_cases: int, *, seed: int = 0) -> Path:
    """``n_cases`` variants (random crop of ≥ 85 % per axis, random flips) of the example CT, MSD layout."""
    image, label = read_volume(SHARED_CT / "image.nii.gz"), read_volume(SHARED_CT / "label_total_fast.nii.gz")
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for n in range(n_cases):
        lo = [int(rng.integers(0, s // 7 + 1)) for s in image.shape]
        hi = [s - int(rng.integers(0, s // 7 + 1)) for s in image.shape]
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        affine = image.affine.copy()
        affine[:3, 3] = image.voxel_to_world(lo)
        img, lab = np.asarray(image.array)[box].astype(np.int16), np.asarray(label.array)[box]
        for axis in range(3):
            if rng.random() < 0.5:  # flip the voxel order and the affine together: same anatomy
                img, lab = np.flip(img, axis), np.flip(lab, axis)
                flip = np.eye(4)
                flip[axis, axis], flip[axis, 3] = -1.0, img.shape[axis] - 1
                affine = affine @ flip
        write_volume(Volume(np.ascontiguousarray(img), affine), root / "imagesTr" / f"ct_{n:03d}_0000.nii.gz")
        write_volume(Volume(np.ascontiguousarray(lab), affine), root / "labelsTr" / f"ct_{n:03d}.nii.gz")
    labels = {"background": 0, **{f"class_{v}": int(v) for v in np.unique(label.array) if v}}
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": labels,
                                                   "numTraining": n_cases, "file_ending": ".nii.gz"}))
    return root


def make_plan(dataset: Dataset, spacing: tuple[float, float, float], patch: tuple[int, int, int]) -> Plan:
    fingerprint = compute_fingerprint(dataset)
    topology, patch = derive_topology(spacing, patch)
    return Plan(target_spacing_mm=spacing, patch_size=patch, topology=topology, labels=dataset.labels,
                channels=tuple(channel_norm(c) for c in fingerprint.channels))


def monai_pipeline(dataset: Dataset, plan: Plan, *, tuned: bool, workers: int) -> tuple[object, float]:
    """MONAI CacheDataset + random patch chain; returns (dataset, seconds to fill the cache).

    ``tuned``: foreground/background indices computed once (``FgBgToIndicesd``) and no deep copy of the
    cached volumes per sample (``copy_cache=False``), the two optimisations MONAI's docs offer.
    """
    import monai.transforms as T
    from monai.data import CacheDataset

    norm = plan.channels[0]
    keys = ["image", "label"]
    deterministic: list[object] = [
        T.LoadImaged(keys), T.EnsureChannelFirstd(keys), T.Orientationd(keys, axcodes="RAS"),
        T.Spacingd(keys, pixdim=plan.target_spacing_mm, mode=("bilinear", "nearest")),
    ]
    if norm.scheme == "ct":
        deterministic += [T.ScaleIntensityRanged("image", a_min=norm.clip_low, a_max=norm.clip_high,
                                                 b_min=(norm.clip_low - norm.mean) / norm.std,
                                                 b_max=(norm.clip_high - norm.mean) / norm.std, clip=True)]
    else:
        deterministic += [T.NormalizeIntensityd("image", nonzero=True)]
    deterministic += [T.CropForegroundd(keys, source_key="image", allow_smaller=True), T.EnsureTyped(keys)]
    crop_kwargs = {}
    if tuned:
        deterministic.append(T.FgBgToIndicesd("label"))
        crop_kwargs = {"fg_indices_key": "label_fg_indices", "bg_indices_key": "label_bg_indices"}
    patch = list(plan.patch_size)
    random = [
        T.RandCropByPosNegLabeld(keys, label_key="label", spatial_size=patch, pos=1, neg=2, num_samples=1,
                                 allow_smaller=True, **crop_kwargs),
        T.SpatialPadd(keys, spatial_size=patch),
        T.RandAffined(keys, spatial_size=patch, prob=0.36, rotate_range=[np.deg2rad(30)] * 3,
                      scale_range=[(-0.3, 0.4)] * 3, mode=("bilinear", "nearest"), padding_mode="zeros",
                      cache_grid=True),
        T.RandFlipd(keys, prob=0.5, spatial_axis=0), T.RandFlipd(keys, prob=0.5, spatial_axis=1),
        T.RandFlipd(keys, prob=0.5, spatial_axis=2),
        T.RandGaussianNoised("image", prob=0.1, std=0.1),
        T.RandGaussianSmoothd("image", sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0), prob=0.2),
        T.RandScaleIntensityd("image", factors=(-0.25, 0.25), prob=0.15),
        T.RandScaleIntensityFixedMeand("image", factors=(-0.25, 0.25), preserve_range=True, prob=0.15),
        T.RandSimulateLowResolutiond("image", zoom_range=(0.5, 1.0), prob=0.25),
        T.RandAdjustContrastd("image", gamma=(0.7, 1.5), retain_stats=True, prob=0.3),
        T.SelectItemsd(keys),
    ]
    files = [{"image": str(c.image_paths[0]), "label": str(c.label_path)} for c in dataset.cases]
    start = time.perf_counter()
    ds = CacheDataset(files, T.Compose(deterministic + random), cache_rate=1.0, num_workers=workers, progress=False,
                      copy_cache=not tuned)
    return ds, time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live children (the DataLoader workers).

    On a machine shared with other jobs wall-clock rates move with their load; CPU time per patch
    does not. Linux only (``/proc``); returns NaN elsewhere.
    """
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        total = sum(os.times()[:2])
        me = str(os.getpid())
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:  # ppid
                total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return total
    except (OSError, ValueError, AttributeError):
        return float("nan")


def timed_round(iterator: Iterator[object], *, n_batches: int, warmup: int, batch_size: int) -> tuple[float, float]:
    """(patches per second, CPU milliseconds per patch) over ``n_batches`` after ``warmup`` batches
    (which drain any prefetched ones)."""
    for _ in range(warmup):
        next(iterator)
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(n_batches):
        next(iterator)
    n = n_batches * batch_size
    return n / (time.perf_counter() - start), 1000 * (cpu_seconds() - cpu) / n


def endless(loader: Iterable[object]) -> Iterator[object]:
    while True:
        yield from loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("auto", "ct", "phantom"), default="auto")
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--patch", type=int, nargs=3, default=(128, 128, 128))
    parser.add_argument("--batches", type=int, default=10, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the pipelines take turns")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="96³ patches, 2 rounds of 6 batches")
    args = parser.parse_args()
    if args.quick:
        args.patch, args.batches, args.rounds = (96, 96, 96), 6, 2
    warnings.filterwarnings("ignore")
    from monai.data import DataLoader

    use_ct = args.data == "ct" or (args.data == "auto" and SHARED_CT.is_dir())
    with tempfile.TemporaryDirectory(prefix="medseg-bench-") as tmp:
        if use_ct:
            root = make_ct_cases(Path(tmp) / "ct", args.cases)
            spacing, what = (1.5, 1.5, 1.5), "TotalSegmentator example CT (3 mm, 61 classes) → 1.5 mm"
        else:
            root = make_phantom_dataset(Path(tmp) / "ph", n_cases=args.cases, shape=(160, 160, 96),
                                        spacing_mm=(1.0, 1.0, 2.0), n_classes=3)
            spacing, what = (1.0, 1.0, 2.0), "synthetic phantoms 160×160×96 at 1×1×2 mm"
        dataset = load_dataset(root)
        plan = make_plan(dataset, spacing, tuple(args.patch))  # type: ignore[arg-type]
        cache = PreprocessedCache(Path(tmp) / "cache", plan)
        start = time.perf_counter()
        cache.build(dataset, jobs=args.workers)
        prep = {"medseg": time.perf_counter() - start}
        shapes = sorted({cache.info(c).shape for c in cache.case_ids()})
        print(f"data      {len(dataset.cases)} cases, {what}; network grid shapes {shapes[0]}..{shapes[-1]}")
        print(f"setup     patch {'×'.join(map(str, plan.patch_size))}, batch {args.batch_size}, "
              f"{args.workers} workers, 1/3 forced foreground, nnU-Net augmentation probabilities; "
              f"{args.rounds} rounds × {args.batches} batches, pipelines taking turns")
        print(f"machine   {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}")
        iterators: dict[str, Iterator[object]] = {
            "medseg": endless(make_patch_loader(cache, cache.case_ids(), patch_size=plan.patch_size,
                                                batch_size=args.batch_size, num_workers=args.workers, seed=0))}
        for tuned, name in ((False, "monai"), (True, "monai_tuned")):
            ds, prep[name] = monai_pipeline(dataset, plan, tuned=tuned, workers=args.workers)
            iterators[name] = endless(DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers,
                                                 shuffle=True, persistent_workers=True))
        rates: dict[str, list[float]] = {k: [] for k in iterators}
        cpu_ms: dict[str, list[float]] = {k: [] for k in iterators}
        for _ in range(args.rounds):
            for name, it in iterators.items():
                rate, cpu = timed_round(it, n_batches=args.batches, warmup=2 * args.workers + 1,
                                        batch_size=args.batch_size)
                rates[name].append(rate)
                cpu_ms[name].append(cpu)
    labels = {
        "medseg": "medseg make_patch_loader (cache + sampler + one-grid_sample augmentation)",
        "monai": "MONAI CacheDataset + RandCropByPosNegLabeld + RandAffined + intensity",
        "monai_tuned": "  same, tuned: FgBgToIndicesd + CacheDataset(copy_cache=False)",
    }
    medseg_rate, medseg_cpu = float(np.median(rates["medseg"])), float(np.median(cpu_ms["medseg"]))
    print()
    print(f"{'pipeline':<76} {'prep s':>7} {'patches/s':>10} {'medseg ×':>9} {'CPU ms/patch':>13} {'medseg ×':>9}")
    for name in rates:
        rate, cpu = float(np.median(rates[name])), float(np.median(cpu_ms[name]))
        print(f"{labels[name]:<76} {prep[name]:>7.1f} {rate:>10.2f} {medseg_rate / rate:>8.2f}× {cpu:>13.1f} "
              f"{cpu / medseg_cpu:>8.2f}×")
    print("(medians over rounds; patches/s per round: "
          + "; ".join(f"{k} {', '.join(f'{v:.1f}' for v in vals)}" for k, vals in rates.items()) + ")")


if __name__ == "__main__":
    main()

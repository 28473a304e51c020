"""Benchmark: ``medseg infer`` against MONAI's reference pipeline, same checkpoint, same scan.

The reference is what a MONAI script does (the tutorials' pattern): ``LoadImaged`` →
``EnsureChannelFirstd`` → ``Orientationd("RAS")`` → ``CropForegroundd`` (if the plan crops to
nonzero voxels) → the model's normalisation → ``Spacingd`` (the plan's spacing, bilinear) →
``sliding_window_inference(mode="gaussian", overlap=0.5)`` in float32 → ``Invertd`` of the logits
(bilinear) → argmax → ``SaveImage``: the same preprocessing as the model's plan, in the same order. medseg runs
:func:`medseg.inference.predict_file` with its defaults (crop to nonzero, bf16 autocast where the
CPU supports it, slab-wise inversion with a running argmax, atomic write).

Both run in this one process, one after the other (medseg first, then MONAI, then medseg again;
the second medseg time is reported, so both ran warm). Peak memory is the largest resident set
size sampled every 5 ms while each pipeline runs, minus the size before it started. Agreement is
the mean Dice over the model's classes between the two label maps.

    python benchmarks/infer_vs_monai.py [--model brain|PATH] [--image SCAN] [--threads 2]

Defaults: the bundled default model and the FreeSurfer subject's ``norm.mgz`` from ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.inference import load_predictor, predict_file
from medseg.io import read_volume
from medseg.runtime import cpu_supports_bf16

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_IMAGE = SHARED / "niivue_samples" / "freesurfer_subject" / "norm.mgz"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measured(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, peak RSS increase in MiB) of ``run()``."""
    base, peak, stop = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    return seconds, max(peak[0], rss_mb()) - base


def monai_pipeline(predictor: Any, image: Path, output: Path) -> None:
    """MONAI's reference pipeline with the predictor's network and plan."""
    from monai.inferers import sliding_window_inference
    from monai.transforms import (
        AsDiscreted,
        Compose,
        CropForegroundd,
        EnsureChannelFirstd,
        Invertd,
        Lambdad,
        LoadImaged,
        Orientationd,
        SaveImage,
        Spacingd,
    )

    from medseg.transforms.intensity import normalize_channel

    plan = predictor.plan
    norm = plan.channels[0]

    def normalise(x: torch.Tensor) -> torch.Tensor:  # the model's own normalisation, over nonzero voxels
        arr = x[0].numpy().astype(np.float32)
        out = normalize_channel(arr, norm, mask=arr != 0 if plan.crop_to_nonzero else None)
        x = x.float().clone()  # a MetaTensor: keeps the metadata Invertd needs
        x.copy_(torch.from_numpy(out)[None])
        return x

    crop = [CropForegroundd("image", source_key="image", select_fn=lambda x: x != 0, margin=0, allow_smaller=True)]
    pre = Compose([
        LoadImaged("image", reader="NibabelReader", image_only=False),  # nibabel reads .mgz too
        EnsureChannelFirstd("image"),
        Orientationd("image", axcodes="RAS"),
        *(crop if plan.crop_to_nonzero else []),
        Lambdad("image", normalise),
        Spacingd("image", pixdim=plan.target_spacing_mm, mode="bilinear"),
    ])
    data = pre({"image": str(image)})
    with torch.inference_mode():
        data["pred"] = sliding_window_inference(
            data["image"][None].float(), roi_size=plan.patch_size, sw_batch_size=1, predictor=predictor.network,
            overlap=0.5, mode="gaussian",
        )[0]
    post = Compose([
        Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False, to_tensor=True),
        AsDiscreted("pred", argmax=True),
    ])
    out = post(data)
    stem = str(output.with_suffix("").with_suffix(""))  # SaveImage adds .nii.gz
    save = SaveImage(output_dir=str(output.parent), output_postfix="", separate_folder=False, resample=False,
                     output_dtype=np.uint8, print_log=False)
    save(out["pred"], meta_data=out["pred"].meta, filename=stem)


def agreement(a: np.ndarray, b: np.ndarray, classes: list[int]) -> float:
    scores = []
    for c in classes:
        x, y = a == c, b == c
        total = int(x.sum() + y.sum())
        if total:
            scores.append(2.0 * int((x & y).sum()) / total)
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or checkpoint (default: the bundled default)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, device=args.device)
    source = read_volume(args.image)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or platform.machine()}, "
          f"CPU bf16: {cpu_supports_bf16()}, device {args.device}")
    print(f"scan {args.image.name}: {source.shape} at {tuple(round(s, 2) for s in source.spacing)} mm; model "
          f"{predictor.plan.n_classes - 1} classes, "
          f"{sum(p.numel() for p in predictor.network.parameters()) / 1e6:.1f}M "
          f"parameters, {list(predictor.plan.target_spacing_mm)} mm, patch {list(predictor.plan.patch_size)}")
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "medseg_seg.nii.gz", Path(tmp) / "monai_seg.nii.gz"
        predict_file(args.image, ours, predictor=predictor)  # warm-up
        ours.unlink()
        rows = {}
        rows["MONAI reference (fp32)"] = measured(lambda: monai_pipeline(predictor, args.image, theirs))
        rows["medseg infer"] = measured(lambda: predict_file(args.image, ours, predictor=predictor))
        fp32 = Path(tmp) / "medseg_fp32_seg.nii.gz"
        rows["medseg infer, --amp off"] = measured(
            lambda: predict_file(args.image, fp32, predictor=predictor, amp="off"))
        a, b, c = (read_volume(p) for p in (ours, theirs, fp32))
        assert a.shape == b.shape == source.shape, (a.shape, b.shape, source.shape)
        classes = list(predictor.plan.labels.names)
        ref_seconds = rows["MONAI reference (fp32)"][0]
        print(f"\n{'pipeline':28s} {'wall s':>8s} {'ratio':>7s} {'peak MiB':>9s}")
        for name, (seconds, peak) in rows.items():
            print(f"{name:28s} {seconds:8.2f} {seconds / ref_seconds:6.2f}x {peak:9.0f}")
        print(f"\nagreement Dice medseg vs MONAI: {agreement(a.array, b.array, classes):.4f}; "
              f"medseg bf16 vs fp32: {agreement(a.array, c.array, classes):.4f}; "
              f"affines equal: {np.allclose(a.affine, source.affine, atol=1e-4)} (medseg), "
              f"{np.allclose(b.affine, source.affine, atol=1e-4)} (MONAI)")


if __name__ == "__main__":
    main()

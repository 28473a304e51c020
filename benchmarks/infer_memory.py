"""Benchmark: peak memory of ``medseg infer`` on a large CT with a many-class model (inference acceptance 2).

Writes a synthetic CT of 512×512×800 voxels (0.8×0.8×1.0 mm, int16 Hounsfield units: air, a body
ellipse, bone and organ-like blobs) and a 16-class U-Net checkpoint (random weights; memory does not
depend on what the network learned) planned at 1.5 mm with 64³ patches, then runs the real CLI

    /usr/bin/time -v python -m medseg infer big.nii -o big_seg.nii.gz --model ckpt.pt

for each memory budget and prints wall time and peak RSS ("Maximum resident set size"). Full
float32 logits of 17 classes at the input's resolution would take 14 GB, on the network grid 2.6 GB.

    python benchmarks/infer_memory.py [--shape 512 512 800] [--budgets auto 1 0.25] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from medseg.data.plan import ChannelNorm, Plan
from medseg.data.planner import derive_topology
from medseg.labels import LabelSpec
from medseg.models import ModelConfig, create_model
from medseg.models.checkpoint import save_checkpoint

SPACING = (0.8, 0.8, 1.0)


def synthetic_ct(path: Path, shape: tuple[int, int, int], seed: int = 0) -> None:
    """An int16 CT-like volume written slice block by slice block (never a float copy of the whole)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    body = (x / 0.85) ** 2 + (y / 0.6) ** 2 < 1
    spine = (x / 0.08) ** 2 + ((y + 0.35) / 0.08) ** 2 < 1
    data = np.full(shape, -1000, np.int16)
    for k in range(shape[2]):
        z = k / shape[2]
        sl = np.where(body, 40, -1000).astype(np.int16)
        sl[spine] = 700
        for i in range(6):
            cx, cy, r = 0.4 * np.cos(i + 3 * z), 0.25 * np.sin(1.3 * i + 2 * z), 0.12 + 0.03 * i
            sl[((x - cx) ** 2 + (y - cy) ** 2 < r * r) & body] = 60 + 15 * i
        data[..., k] = sl + rng.normal(0, 8, sl.shape).astype(np.int16)
    image = nib.Nifti1Image(data, np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0]))  # LPS-like, as from DICOM
    image.set_sform(image.affine, code=1)
    image.set_qform(image.affine, code=1)
    nib.save(image, path)


def checkpoint(path: Path, n_labels: int = 16) -> Path:
    topology, patch = derive_topology((1.5, 1.5, 1.5), (64, 64, 64), max_stages=5)
    plan = Plan(target_spacing_mm=(1.5, 1.5, 1.5), patch_size=patch,
                channels=(ChannelNorm("CT", "ct", clip_low=-1000, clip_high=1000, mean=0.0, std=400.0),),
                labels=LabelSpec.from_values(list(range(1, n_labels + 1))), topology=topology,
                crop_to_nonzero=False, image_interpolation="linear")
    config = ModelConfig(name="unet", max_filters=32, filters_scale=0.5)
    torch.manual_seed(0)
    return save_checkpoint(path, model=config, plan=plan, state_dict=create_model(config, plan).state_dict())


def run(image: Path, model: Path, budget: str, threads: int) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB, stdout) of one ``medseg infer`` run under ``/usr/bin/time -v``."""
    out = image.with_name(f"seg_{budget}.nii.gz")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "medseg", "infer", str(image), "-o", str(out),
           "--model", str(model), "--threads", str(threads)]
    if budget != "auto":
        cmd += ["--max-memory-gb", budget]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    rss_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time .*: ([\d:.]+)", proc.stderr).group(1)  # type: ignore[union-attr]
    seconds = sum(float(p) * 60**i for i, p in enumerate(reversed(wall.split(":"))))
    labels = nib.load(out)
    assert labels.shape == nib.load(image).shape and np.allclose(labels.affine, nib.load(image).affine)
    out.unlink()
    return seconds, rss_kb / 1024, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 512, 800))
    parser.add_argument("--budgets", nargs="+", default=["auto", "1", "0.25"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image, model = Path(tmp) / "big.nii", checkpoint(Path(tmp) / "ct16.pt")
        synthetic_ct(image, tuple(args.shape))
        print(f"input {tuple(args.shape)} int16 ({image.stat().st_size / 2**20:.0f} MiB on disk), "
              f"16-class U-Net at 1.5 mm, 64³ patches, {args.threads} thread(s)")
        print(f"{'--max-memory-gb':>16s} {'wall s':>8s} {'peak RSS MiB':>13s}")
        for budget in args.budgets:
            seconds, rss, _ = run(image, model, budget, args.threads)
            print(f"{budget:>16s} {seconds:8.1f} {rss:13.0f}", flush=True)


if __name__ == "__main__":
    main()

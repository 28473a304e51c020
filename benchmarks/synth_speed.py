"""Time per synthetic training patch: medseg's generator vs the same chain of MONAI random transforms.

Run on one core (the training loop gives the generator one):

    OMP_NUM_THREADS=1 python benchmarks/synth_speed.py [--label-map PATH] [--repeats 20]

The label map is a SynthSeg training map prepared as for training (RAS, 2 mm, cropped;
``medseg.data.labelmaps.prepare_label_map``). The MONAI reference does the same steps with its
random transforms: ``Rand3DElastic`` (affine + elastic, nearest, output at the patch size, random
translation), per-label Gaussian intensities (no MONAI transform exists; the same lookup as medseg),
``RandBiasField``, ``RandGaussianSmooth``, ``RandSimulateLowResolution``, ``RandGaussianNoise``,
``ScaleIntensity`` and ``RandAdjustContrast``, and the same label merge. A third column times
medseg's partial-volume mode (the same map kept at 1 mm, ``map_spacing_mm=1``: every 2 mm voxel the
mean of its 8 sub-voxels), as ``configs/brain_refine.yaml`` trains.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from medseg.data.labelmaps import prepare_label_map
from medseg.io import read_volume
from medseg.transforms.synth import SynthGenerator, SynthTables
from medseg.transforms.synth_ops import lookup

DEFAULT_MAP = (Path(__file__).resolve().parents[2] / "shared" / "data" / "synthseg_labelmaps"
               / "training_label_maps" / "training_seg_02.nii.gz")
SPACING_MM = 2.0


Sample = tuple[torch.Tensor, torch.Tensor]


def monai_chain(patch: int, tables: SynthTables) -> Callable[[torch.Tensor, torch.Generator], Sample]:
    """The reference: MONAI random transforms doing the generator's steps."""
    import monai.transforms as T

    spatial = T.Rand3DElastic(
        sigma_range=(5.0, 8.0), magnitude_range=(0.0, 2.0), prob=1.0, rotate_range=(math.radians(15),) * 3,
        shear_range=(0.012,) * 6, translate_range=(20,) * 3, scale_range=(0.2,) * 3,
        spatial_size=(patch,) * 3, mode="nearest", padding_mode="zeros",
    )
    intensity = T.Compose([
        T.RandBiasField(degree=3, coeff_range=(0.0, 0.3), prob=1.0),
        T.RandGaussianSmooth(sigma_x=(0.25, 1.0), sigma_y=(0.25, 1.0), sigma_z=(0.25, 1.0), prob=1.0),
        T.RandSimulateLowResolution(prob=1.0, zoom_range=(0.3, 1.0)),
        T.RandGaussianNoise(prob=1.0, std=5.0),
        T.ScaleIntensity(minv=0.0, maxv=1.0),
        T.RandAdjustContrast(prob=1.0, gamma=(0.5, 2.0)),
    ])

    def run(label_map: torch.Tensor, generator: torch.Generator) -> Sample:
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        spatial.set_random_state(seed)
        intensity.set_random_state(seed + 1)
        source = spatial(label_map[None].float()).as_tensor()[0].round().long()
        group = lookup(tables.group, source)
        means = torch.rand(tables.size, generator=generator) * 225
        stds = torch.rand(tables.size, generator=generator) * 25
        image = lookup(means, group) + lookup(stds, group) * torch.randn(source.shape, generator=generator)
        image = intensity(image[None].clamp_min(0)).as_tensor()
        return image, lookup(tables.target, source)

    return run


def time_per_call(fn: Callable[[torch.Tensor, torch.Generator], object], label_map: torch.Tensor,
                  repeats: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) per call after one warm-up call. CPU time of the process
    is the fairer number on a machine shared with other jobs; with one thread it is one core's time."""
    generator = torch.Generator().manual_seed(0)
    fn(label_map, generator)
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        fn(label_map, generator)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-map", type=Path, default=DEFAULT_MAP)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    start = time.perf_counter()
    volume = prepare_label_map(read_volume(args.label_map), spacing_mm=SPACING_MM)
    prep_s = time.perf_counter() - start
    label_map = torch.from_numpy(np.ascontiguousarray(volume.array))
    fine = prepare_label_map(read_volume(args.label_map), spacing_mm=1.0)
    fine_map = torch.from_numpy(np.ascontiguousarray(fine.array, dtype=np.float32))
    tables = SynthTables.freesurfer_brain16()
    print(f"label map {args.label_map.name}: prepared to {volume.shape} at {SPACING_MM} mm in {prep_s:.1f} s")
    print(f"torch threads: {torch.get_num_threads()} (set OMP_NUM_THREADS=1 for one core)")
    print("median per patch, CPU ms (wall ms)")
    print(f"{'patch':>6} {'medseg':>16} {'MONAI chain':>18} {'ratio':>6} {'medseg PV (1 mm maps)':>22}")
    for patch in (64, 80, 96):
        generator = SynthGenerator(patch_size=(patch,) * 3, spacing_mm=SPACING_MM)
        ours = time_per_call(generator, label_map, args.repeats)
        ref = time_per_call(monai_chain(patch, tables), label_map, max(3, args.repeats // 4))
        pv = time_per_call(SynthGenerator(patch_size=(patch,) * 3, spacing_mm=SPACING_MM, map_spacing_mm=1.0),
                           fine_map, args.repeats)
        print(f"{patch:>5}³ {ours[0] * 1e3:>7.1f} ({ours[1] * 1e3:>6.1f}) "
              f"{ref[0] * 1e3:>8.1f} ({ref[1] * 1e3:>7.1f}) {ref[0] / ours[0]:>5.1f}x "
              f"{pv[0] * 1e3:>13.1f} ({pv[1] * 1e3:>6.1f})")


if __name__ == "__main__":
    main()

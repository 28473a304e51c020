"""Label-maps-only training: a new synthetic image per label map per iteration (SynthSeg-style).

The dataset is a folder of label maps (FreeSurfer numbering for ``classes: brain16``). They are
brought once to RAS at ``synth.label_map_spacing_mm`` (default the working resolution;
``RUN_DIR/labelmaps/``), then
:class:`~medseg.transforms.synth.SynthGenerator` draws a random-contrast, randomly deformed and
corrupted image with its target for every patch. Validation runs on the real scans listed in the
config's ``synth.validation``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.data.plan import ChannelNorm, Plan
from medseg.errors import DatasetError
from medseg.io import read_volume
from medseg.io.formats import VOLUME_EXTENSIONS, extension_of
from medseg.io.volume import Volume
from medseg.training.config import SynthTrainConfig, TrainConfig, ValidationScan
from medseg.training.distributed import DistContext, barrier
from medseg.training.loop import FoldRun
from medseg.training.rng import derive_seed

log = logging.getLogger(__name__)

#: Brain structures that are one connected object each (largest component kept at inference).
SINGLE_OBJECT_CLASSES = ("brainstem", "third_ventricle", "fourth_ventricle")


def synth_plan(synth: SynthTrainConfig) -> Plan:
    """The plan of a label-maps-only model: one contrast-agnostic channel, percentile-normalised."""
    from medseg.data.planner import derive_topology
    from medseg.labels.freesurfer import brain_label_spec

    topology, patch = derive_topology(synth.target_spacing_mm, synth.patch_size, max_stages=5)
    return Plan(
        target_spacing_mm=tuple(float(s) for s in synth.target_spacing_mm),  # type: ignore[arg-type]
        patch_size=patch,
        channels=(ChannelNorm("image", scheme="percentile", percentile_low=0.5, percentile_high=99.5),),
        labels=brain_label_spec(),
        topology=topology,
        crop_to_nonzero=True,
        image_interpolation="linear",
        label_interpolation="linear_onehot",
    )


def synth_fold_run(label_dir: Path, config: TrainConfig, out: Path, *, seed: int, ctx: DistContext,
                   device: Any) -> FoldRun:
    """Everything :func:`~medseg.training.loop.train_fold` needs for a label-maps-only run."""
    assert config.synth is not None
    synth = config.synth
    plan = synth_plan(synth)
    maps_dir = out / "labelmaps"
    if ctx.is_main:
        _prepare(label_dir, maps_dir, synth)
    barrier(ctx)
    label_maps = [read_volume(p).array for p in sorted(maps_dir.glob("*.nii.gz"))]
    batches = SynthBatchSource(label_maps=label_maps, synth=synth, plan=plan, batch_size=config.loop.batch_size,
                               num_workers=config.loop.num_workers, seed=seed, rank=ctx.rank)
    validator = None
    if synth.validation:
        from medseg.training.validation import ScanValidator

        scans = [load_validation_scan(v) for v in synth.validation]
        validator = ScanValidator(scans=scans, plan=plan, device=device, amp=config.loop.amp)
    card = {
        "name": "medseg brain (synthetic-trained)",
        "description": "16 brain structures from any MRI contrast/resolution (SynthSeg-style training)",
        "classes": {str(k): v for k, v in plan.labels.names.items()},
        "postprocess": {"largest_component": list(SINGLE_OBJECT_CLASSES), "min_component_mm3": 0.0},
    }
    return FoldRun(run_dir=out / "fold_0", plan=plan, config=config, batches=batches, validator=validator,
                   device=device, seed=seed, ctx=ctx, model_card=card)


def _prepare(label_dir: Path, maps_dir: Path, synth: SynthTrainConfig) -> None:
    """Resample the label maps to the working resolution once (skipped if already done)."""
    from medseg.data.labelmaps import prepare_label_maps

    files = sorted(label_dir.iterdir()) if label_dir.is_dir() else []
    sources = [p for p in files if extension_of(p) in VOLUME_EXTENSIONS]
    if not sources:
        raise DatasetError("no label maps found; give a folder of label map files (.nii.gz, .mgz...)", path=label_dir)
    spacing = synth.map_spacing_mm
    if len(set(spacing)) != 1:
        raise DatasetError(f"label-maps-only training needs an isotropic working spacing, got {list(spacing)}")
    from medseg.transforms.synth import supersampling

    supersampling(synth.target_spacing_mm, spacing)  # a clear error before any work
    done = sorted(maps_dir.glob("*.nii.gz")) if maps_dir.is_dir() else []
    if len(done) == len(sources) and all(np.allclose(read_volume(p).spacing, spacing, atol=1e-3) for p in done):
        return
    maps_dir.mkdir(parents=True, exist_ok=True)
    prepare_label_maps(sources, maps_dir, spacing_mm=float(spacing[0]))


def load_validation_scan(scan: ValidationScan) -> tuple[Volume, Volume]:
    """Read a validation scan and its reference, mapping reference values to the plan's classes."""
    image = read_volume(scan.image)
    ref = read_volume(scan.label)
    if scan.label_mapping == "freesurfer":
        from medseg.labels.freesurfer import freesurfer_to_brain16

        ref = ref.with_array(freesurfer_to_brain16(ref.array, source=str(scan.label)))
    return image, ref


@dataclass
class SynthBatchSource:
    """Batches of synthetic images: every sample a random label map through the generator.

    The stream of epoch ``e`` on rank ``r`` (worker ``w``) is seeded by ``(seed, e, r, w)``.
    """

    label_maps: Sequence[np.ndarray]
    synth: SynthTrainConfig
    plan: Plan
    batch_size: int
    num_workers: int
    seed: int
    rank: int = 0

    def epoch(self, epoch: int) -> Iterator[Mapping[str, torch.Tensor]]:
        dataset = _SynthStream(self, derive_seed(self.seed, epoch, self.rank))
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                                             persistent_workers=False)
        return iter(loader)


class _SynthStream(torch.utils.data.IterableDataset):
    """An endless stream of synthetic samples seeded by ``(seed, worker id)``."""

    def __init__(self, source: SynthBatchSource, seed: int) -> None:
        super().__init__()
        self.source = source
        self.seed = seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        from medseg.transforms.synth import SynthGenerator
        from medseg.transforms.synth_params import SynthConfig

        info = torch.utils.data.get_worker_info()
        g = torch.Generator().manual_seed(derive_seed(self.seed, info.id if info is not None else 0))
        src = self.source
        overrides: dict[str, Any] = {k: tuple(v) if isinstance(v, list | tuple) else v
                                     for k, v in src.synth.generator.items()}
        config = SynthConfig(**overrides)
        generator = SynthGenerator(config, patch_size=src.plan.patch_size,
                                   spacing_mm=src.plan.target_spacing_mm, map_spacing_mm=src.synth.map_spacing_mm)
        # float32 once: grid_sample reads float maps (1 mm maps are ~10 M voxels each)
        maps = [torch.as_tensor(np.asarray(m, dtype=np.float32)) for m in src.label_maps]
        while True:
            index = int(torch.randint(len(maps), (1,), generator=g))
            sample = generator(maps[index], g)
            yield {"image": sample.image.float(), "label": sample.target[None].long()}

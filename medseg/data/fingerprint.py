"""Dataset fingerprint: what the planner needs to know about a dataset.

Per case: voxel spacing and shape in the canonical RAS axis order (shape after cropping to the
nonzero bounding box, as preprocessing will see it), and voxels per class. Per channel: intensity
statistics of the foreground (label > 0) voxels, pooled over the dataset from up to
``SAMPLES_PER_CASE`` voxels of each case (nnU-Net's approach).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.data.dataset import Case, Dataset
from medseg.errors import DatasetError
from medseg.transforms import spatial

log = logging.getLogger(__name__)

#: Foreground voxels sampled per case and channel for the intensity statistics.
SAMPLES_PER_CASE = 10_000


@dataclass(frozen=True)
class CaseFingerprint:
    """One case, in the canonical RAS axis order (x, y, z).

    Attributes:
        case_id: the case.
        spacing_mm: voxel size, millimetres.
        shape: voxels after cropping to the nonzero bounding box.
        shape_before_crop: voxels of the whole image.
        class_voxels: voxel count per label value (background included).
    """

    case_id: str
    spacing_mm: tuple[float, float, float]
    shape: tuple[int, int, int]
    shape_before_crop: tuple[int, int, int]
    class_voxels: Mapping[int, int]


@dataclass(frozen=True)
class ChannelStats:
    """Foreground intensity statistics of one channel, in the image's units (e.g. HU)."""

    name: str
    mean: float
    std: float
    median: float
    min: float
    max: float
    percentile_00_5: float
    percentile_99_5: float
    n_samples: int


@dataclass(frozen=True)
class Fingerprint:
    """The dataset fingerprint (see the module docstring)."""

    cases: tuple[CaseFingerprint, ...]
    channels: tuple[ChannelStats, ...]

    @property
    def spacings_mm(self) -> npt.NDArray[np.float64]:
        """``[n_cases, 3]`` spacings in RAS axis order."""
        return np.array([c.spacing_mm for c in self.cases], dtype=np.float64)

    @property
    def shapes(self) -> npt.NDArray[np.int64]:
        """``[n_cases, 3]`` cropped shapes in RAS axis order."""
        return np.array([c.shape for c in self.cases], dtype=np.int64)

    def class_fractions(self) -> dict[int, float]:
        """Share of all labelled voxels per label value (background included)."""
        totals: dict[int, int] = {}
        for c in self.cases:
            for v, n in c.class_voxels.items():
                totals[v] = totals.get(v, 0) + n
        grand = sum(totals.values()) or 1
        return {v: totals[v] / grand for v in sorted(totals)}

    def summary(self) -> dict[str, Any]:
        """A compact, YAML-friendly summary (stored in ``Plan.fingerprint``)."""
        sp, sh = self.spacings_mm, self.shapes
        return {
            "n_cases": len(self.cases),
            "median_spacing_mm": _round(np.median(sp, axis=0)),
            "min_spacing_mm": _round(sp.min(axis=0)),
            "max_spacing_mm": _round(sp.max(axis=0)),
            "median_shape": [int(round(x)) for x in np.median(sh, axis=0)],
            "channels": {c.name: {k: _round(getattr(c, k)) for k in
                                  ("mean", "std", "median", "min", "max", "percentile_00_5", "percentile_99_5")}
                         for c in self.channels},
            "class_fractions": {str(v): float(f"{f:.4g}") for v, f in self.class_fractions().items()},
        }


def compute_fingerprint(
    dataset: Dataset, *, jobs: int = 1, progress: Callable[[int, int], None] | None = None
) -> Fingerprint:
    """Fingerprint every labelled case of ``dataset``.

    Args:
        dataset: the dataset (cases without a label map are skipped).
        jobs: worker processes reading cases in parallel.
        progress: called with ``(done, total)`` after each case.

    Raises:
        DatasetError: no labelled case.
    """
    cases = [c for c in dataset.cases if c.label_path is not None]
    if not cases:
        raise DatasetError("no labelled case to fingerprint; add label maps", path=dataset.source)
    args = [(dataset, c, i) for i, c in enumerate(cases)]
    results: list[tuple[CaseFingerprint, list[npt.NDArray[np.float32]]]] = []
    if jobs > 1 and len(args) > 1:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for n, r in enumerate(pool.map(_fingerprint_args, args), start=1):
                results.append(r)
                if progress:
                    progress(n, len(args))
    else:
        for n, a in enumerate(args, start=1):
            results.append(_fingerprint_args(a))
            if progress:
                progress(n, len(args))
    channels = tuple(
        channel_stats(name, np.concatenate([samples[k] for _, samples in results]))
        for k, name in enumerate(dataset.channel_names)
    )
    return Fingerprint(tuple(r for r, _ in results), channels)


def _fingerprint_args(args: tuple[Dataset, Case, int]) -> tuple[CaseFingerprint, list[npt.NDArray[np.float32]]]:
    dataset, case, index = args
    return fingerprint_case(dataset, case, seed=index)


def fingerprint_case(
    dataset: Dataset, case: Case, *, seed: int = 0
) -> tuple[CaseFingerprint, list[npt.NDArray[np.float32]]]:
    """Fingerprint one case; also returns up to ``SAMPLES_PER_CASE`` foreground intensities per channel."""
    image, label = dataset.load_case(case)
    assert label is not None  # only labelled cases are fingerprinted
    ornt = spatial.ras_orientation(image.affine)
    data = spatial.reorient_array(image.array if image.is_multichannel else image.array[None], ornt)
    bbox = spatial.nonzero_bbox(data)
    canonical = spatial.reoriented_affine(image.affine, ornt, image.shape)
    spacing = np.linalg.norm(canonical[:3, :3], axis=0)
    values, counts = np.unique(label.array, return_counts=True)
    fg = np.flatnonzero(np.asarray(label.array).ravel() != 0)
    rng = np.random.default_rng(seed)
    pick = fg if fg.size <= SAMPLES_PER_CASE else rng.choice(fg, SAMPLES_PER_CASE, replace=False)
    channels = image.array if image.is_multichannel else image.array[None]
    samples = [np.asarray(ch).ravel()[pick].astype(np.float32) for ch in channels]
    fp = CaseFingerprint(
        case_id=case.case_id,
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        shape=tuple(hi - lo for lo, hi in bbox),  # type: ignore[arg-type]
        shape_before_crop=spatial.oriented_shape(image.shape, ornt),
        class_voxels={int(v): int(n) for v, n in zip(values, counts, strict=True)},
    )
    return fp, samples


def channel_stats(name: str, samples: npt.NDArray[np.float32]) -> ChannelStats:
    """Statistics of pooled foreground samples (NaN/Inf dropped; all NaN if there are none)."""
    x = samples[np.isfinite(samples)].astype(np.float64)
    if not x.size:
        log.warning("channel %s: no foreground voxels sampled; its statistics are undefined", name)
        nan = float("nan")
        return ChannelStats(name, nan, nan, nan, nan, nan, nan, nan, 0)
    p005, p50, p995 = np.percentile(x, [0.5, 50.0, 99.5])
    return ChannelStats(name, float(x.mean()), float(x.std()), float(p50), float(x.min()), float(x.max()),
                        float(p005), float(p995), int(x.size))


def _round(x: Any) -> Any:
    if np.ndim(x):
        return [float(f"{v:.6g}") for v in np.asarray(x).ravel()]
    return float(f"{float(x):.6g}")

"""Shared pieces of the training tests: a micro phantom dataset, its plan, configs, and the CLI.

The micro dataset (4 phantoms of 24 x 24 x 12 voxels at 1 x 1 x 2.5 mm, two blob classes) and a
fixed plan (patch 16 x 16 x 8) keep every functional training test to seconds; only the accuracy
test uses the bigger dataset of the issue's acceptance 1 with ``configs/tiny.yaml``.

Training tests run torch with ONE intra-op thread (:func:`one_thread`, ``OMP_NUM_THREADS=1``
for subprocesses): on a 2-core machine shared with other processes, OpenMP's spinning worker
threads made 2-thread training steps 5-20x slower in wall time. Results do not depend on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from medseg.cli import main
from medseg.data.synthetic import make_phantom_dataset

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "configs" / "tiny.yaml"

#: A network and loop small enough for tests that check mechanics, not accuracy.
MICRO_CONFIG: dict[str, Any] = {
    "model": {"name": "unet", "deep_supervision": True, "max_filters": 8},
    "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0, "schedule": "cosine"},
    "loop": {"epochs": 2, "iterations_per_epoch": 3, "batch_size": 2, "val_every": 1, "num_workers": 0,
             "folds": 2, "amp": "off", "sw_overlap": 0.25},
    "plan": {"patch_size": [16, 16, 8]},
}


def write_config(path: Path, *, base: Mapping[str, Any] = MICRO_CONFIG, **sections: Mapping[str, Any]) -> Path:
    """Write ``base`` with some sections' fields replaced (``loop={"epochs": 3}``) as YAML."""
    data = {k: dict(v) for k, v in base.items()}
    for name, fields in sections.items():
        data[name] = {**data.get(name, {}), **fields}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def make_micro_dataset(root: Path, *, n_cases: int = 4, seed: int = 0) -> Path:
    return make_phantom_dataset(root, n_cases=n_cases, shape=(24, 24, 12), spacing_mm=(1.0, 1.0, 2.5), seed=seed)


def make_micro_cache(dataset: Path, plan: Path, root: Path) -> Any:
    """The micro dataset preprocessed with the micro plan."""
    from medseg.data.cache import PreprocessedCache
    from medseg.data.dataset import load_dataset
    from medseg.data.plan import load_plan

    cache = PreprocessedCache(root, load_plan(plan))
    cache.build(load_dataset(dataset))
    return cache


def make_micro_plan(dataset: Path, path: Path) -> Path:
    """A plan for the micro dataset, made without the planner's memory estimate (saves seconds per run)."""
    from medseg.data.dataset import load_dataset
    from medseg.data.plan import ChannelNorm, Plan, save_plan
    from medseg.data.planner import derive_topology

    labels = load_dataset(dataset).labels
    topology, patch = derive_topology((1.0, 1.0, 2.5), (16, 16, 8))
    plan = Plan(target_spacing_mm=(1.0, 1.0, 2.5), patch_size=patch, channels=(ChannelNorm("MR", scheme="zscore"),),
                labels=labels, topology=topology)
    return save_plan(plan, path)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch with one intra-op thread inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a training subprocess: this one, one OpenMP thread, ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def cli(*args: str | Path) -> int:
    """Run ``medseg ARGS`` in this process; returns the exit code (output goes to capsys/capfd)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    code = exit_info.value.code
    return 0 if code is None else int(code)


def cli_subprocess(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m medseg ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "medseg", *map(str, args)], capture_output=True, text=True,
                          check=False, env=subprocess_env(), **kwargs)

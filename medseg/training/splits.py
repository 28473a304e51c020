"""Cross-validation splits grouped by subject (no subject in two folds), saved to ``splits.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medseg.errors import ConfigError, DatasetError
from medseg.io.atomic import atomic_write_text


def grouped_kfold(subject_of: Mapping[str, str], *, folds: int, seed: int) -> list[dict[str, list[str]]]:
    """Split cases into ``folds`` folds so that all cases of a subject share one fold.

    Args:
        subject_of: case id → subject id.
        folds: number of folds (≥ 2, ≤ number of subjects).
        seed: shuffling seed.

    Returns:
        One ``{"train": [...], "val": [...]}`` per fold (case ids, sorted).
    """
    subjects = sorted(set(subject_of.values()))
    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(subjects) < folds:
        raise ConfigError(f"{folds} folds need at least {folds} subjects; the dataset has {len(subjects)}")
    order = np.random.default_rng(seed).permutation(len(subjects))
    fold_of = {subjects[i]: n % folds for n, i in enumerate(order)}
    out = []
    for k in range(folds):
        val = sorted(c for c, s in subject_of.items() if fold_of[s] == k)
        train = sorted(c for c, s in subject_of.items() if fold_of[s] != k)
        out.append({"train": train, "val": val})
    return out


def load_or_make_splits(
    path: Path, subject_of: Mapping[str, str], *, folds: int, seed: int
) -> list[dict[str, list[str]]]:
    """Reuse ``path`` if it exists and covers exactly these cases; otherwise create and save it."""
    if path.is_file():
        splits = json.loads(path.read_text())
        covered = {c for s in splits for c in s["val"]}
        if covered != set(subject_of) or len(splits) != folds:
            raise DatasetError(
                f"existing splits cover {len(covered)} cases in {len(splits)} folds but the dataset has "
                f"{len(subject_of)} cases and {folds} folds are asked; delete splits.json or use a new run folder",
                path=path,
            )
        return list(splits)
    splits = grouped_kfold(subject_of, folds=folds, seed=seed)
    atomic_write_text(path, json.dumps(splits, indent=2))
    return splits


def fold_indices(spec: str, folds: int) -> Sequence[int]:
    """``"all"`` → every fold; ``"K"`` → that fold."""
    if spec == "all":
        return range(folds)
    if not spec.isdigit() or int(spec) >= folds:
        raise ConfigError(f"--fold must be 'all' or an integer 0..{folds - 1}, got {spec!r}")
    return [int(spec)]

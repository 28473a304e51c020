"""Cross-validation splits grouped by subject, saved and reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medseg.errors import ConfigError, DatasetError
from medseg.training.splits import fold_indices, grouped_kfold, load_or_make_splits

# 10 cases of 6 subjects: s0 has 3 cases, s1 and s2 two, the others one.
SUBJECT_OF = {"a0": "s0", "a1": "s0", "a2": "s0", "b0": "s1", "b1": "s1", "c0": "s2", "c1": "s2",
              "d0": "s3", "e0": "s4", "f0": "s5"}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_no_subject_in_two_folds_and_every_case_validated_once(seed: int) -> None:
    splits = grouped_kfold(SUBJECT_OF, folds=3, seed=seed)
    assert len(splits) == 3
    val_cases = [c for s in splits for c in s["val"]]
    assert sorted(val_cases) == sorted(SUBJECT_OF)
    for split in splits:
        assert set(split["train"]) | set(split["val"]) == set(SUBJECT_OF)
        assert not set(split["train"]) & set(split["val"])
        val_subjects = {SUBJECT_OF[c] for c in split["val"]}
        assert not val_subjects & {SUBJECT_OF[c] for c in split["train"]}
        assert len(val_subjects) == 2  # 6 subjects over 3 folds


def test_splits_depend_on_the_seed_only() -> None:
    assert grouped_kfold(SUBJECT_OF, folds=3, seed=5) == grouped_kfold(dict(reversed(SUBJECT_OF.items())),
                                                                       folds=3, seed=5)
    assert any(grouped_kfold(SUBJECT_OF, folds=3, seed=s) != grouped_kfold(SUBJECT_OF, folds=3, seed=0)
               for s in range(1, 5))


@pytest.mark.parametrize(("folds", "message"), [(1, "at least 2 folds"), (7, "7 folds need at least 7 subjects")])
def test_impossible_fold_counts_are_config_errors(folds: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        grouped_kfold(SUBJECT_OF, folds=folds, seed=0)


def test_splits_file_is_written_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "splits.json"
    first = load_or_make_splits(path, SUBJECT_OF, folds=3, seed=0)
    assert json.loads(path.read_text()) == first
    assert load_or_make_splits(path, SUBJECT_OF, folds=3, seed=99) == first  # reused, not redrawn
    with pytest.raises(DatasetError, match="delete splits.json or use a new run folder"):
        load_or_make_splits(path, {**SUBJECT_OF, "g0": "s6"}, folds=3, seed=0)
    with pytest.raises(DatasetError, match="2 folds are asked"):
        load_or_make_splits(path, SUBJECT_OF, folds=2, seed=0)


def test_fold_selection() -> None:
    assert list(fold_indices("all", 3)) == [0, 1, 2]
    assert list(fold_indices("2", 3)) == [2]
    for bad in ("3", "-1", "one"):
        with pytest.raises(ConfigError, match="--fold must be 'all' or an integer 0..2"):
            fold_indices(bad, 3)

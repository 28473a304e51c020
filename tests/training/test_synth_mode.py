"""Label-maps-only training (a ``synth:`` config) end to end on one real SynthSeg label map at 4 mm."""

from __future__ import annotations

from pathlib import Path

from medseg.models.checkpoint import load_checkpoint
from medseg.training.config import load_config
from medseg.training.run import TrainOptions, train
from tests.conftest import shared_path
from tests.training.helpers import write_config


def test_synth_run_trains_resumes_and_extends(tmp_path: Path) -> None:
    source = shared_path("synthseg_labelmaps", "training_label_maps", "training_seg_01.nii.gz")
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / source.name).symlink_to(source)
    config = load_config(write_config(
        tmp_path / "synth.yaml",
        base={"model": {"name": "unet", "max_filters": 8}, "optim": {"name": "adamw", "lr": 0.001},
              "loop": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 1, "num_workers": 0, "amp": "off"},
              "synth": {"target_spacing_mm": [4.0, 4.0, 4.0], "patch_size": [32, 32, 32]}}))
    run = tmp_path / "run"
    [first] = train(maps, config, run, options=TrainOptions(device="cpu"))
    assert (first.epochs, first.epochs_run, first.best_epoch) == (1, 1, 0)  # no validation scans: no best.pt
    assert sorted(p.name for p in (run / "fold_0").glob("*.pt")) == ["last.pt"]
    ckpt = load_checkpoint(run / "fold_0" / "last.pt")
    assert ckpt.plan.n_classes == 17 and ckpt.plan.target_spacing_mm == (4.0, 4.0, 4.0)
    assert ckpt.model_card["postprocess"]["largest_component"]
    [second] = train(maps, config, run, options=TrainOptions(device="cpu", resume=True, epochs=2))
    assert (second.epochs, second.epochs_run) == (2, 1)
    assert [r["epoch"] for r in load_checkpoint(run / "fold_0" / "last.pt").training["history"]] == [1, 2]


def test_finer_label_maps_are_prepared_once_at_their_spacing(tmp_path: Path) -> None:
    """``label_map_spacing_mm: 2`` with 4 mm patches: maps kept at 2 mm (partial volume from 2×2×2
    sub-voxels); a spacing that does not divide the patch spacing stops with a clear error."""
    import pytest

    from medseg.errors import ConfigError
    from medseg.io import read_volume

    source = shared_path("synthseg_labelmaps", "training_label_maps", "training_seg_02.nii.gz")
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / source.name).symlink_to(source)
    base = {"model": {"name": "unet", "max_filters": 8}, "optim": {"name": "adamw", "lr": 0.001},
            "loop": {"epochs": 1, "iterations_per_epoch": 1, "batch_size": 1, "num_workers": 0, "amp": "off"},
            "synth": {"target_spacing_mm": [4.0, 4.0, 4.0], "patch_size": [32, 32, 32], "label_map_spacing_mm": 2.0}}
    config = load_config(write_config(tmp_path / "pv.yaml", base=base))
    assert config.synth is not None and config.synth.map_spacing_mm == (2.0, 2.0, 2.0)
    run = tmp_path / "run"
    train(maps, config, run, options=TrainOptions(device="cpu"))
    [prepared] = (run / "labelmaps").glob("*.nii.gz")
    assert read_volume(prepared).spacing == pytest.approx((2.0, 2.0, 2.0))
    base["synth"]["label_map_spacing_mm"] = 1.5  # type: ignore[index]
    bad = load_config(write_config(tmp_path / "bad.yaml", base=base))
    with pytest.raises(ConfigError, match="whole multiple"):
        train(maps, bad, tmp_path / "run_bad", options=TrainOptions(device="cpu"))

"""Planning: target spacing (median, nnU-Net's anisotropy rule), topology, memory-bounded patch, YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medseg.cli import main
from medseg.data.dataset import load_dataset
from medseg.data.fingerprint import compute_fingerprint
from medseg.data.memory import count_saved_activations, dynunet_kwargs, estimate_training_memory_gb
from medseg.data.plan import Topology, load_plan, plan_to_dict
from medseg.data.planner import derive_topology, fit_patch_size, make_plan, target_spacing
from medseg.data.synthetic import make_phantom_dataset
from medseg.errors import ConfigError
from medseg.io import Volume, read_volume, write_volume


@pytest.mark.parametrize(("spacings", "shapes", "expected"), [
    pytest.param([(0.8, 0.8, 2.5), (0.7, 0.7, 3.0), (0.9, 0.9, 2.0)], [(512, 512, 100)] * 3, (0.8, 0.8, 2.1),
                 id="anisotropic-uses-10th-percentile"),
    pytest.param([(0.8, 0.8, 2.5), (0.7, 0.7, 3.0), (0.9, 0.9, 2.0)], [(200, 200, 100)] * 3, (0.8, 0.8, 2.5),
                 id="thick-slices-but-many-keeps-median"),
    pytest.param([(0.8, 0.8, 2.4), (0.8, 0.8, 2.4), (0.9, 0.9, 2.0)], [(512, 512, 100)] * 3, (0.8, 0.8, 2.4),
                 id="ratio-3-exactly-keeps-median"),
    pytest.param([(1.0, 1.0, 0.3), (1.0, 1.0, 0.3), (1.0, 1.0, 5.0), (1.0, 1.0, 5.0), (1.0, 1.0, 5.0)],
                 [(400, 400, 30)] * 5, (1.0, 1.0, 1.00001), id="percentile-finer-than-plane-is-clamped"),
    pytest.param([(3.0, 0.7, 0.7), (5.0, 0.7, 0.7), (4.0, 0.7, 0.7)], [(40, 512, 512)] * 3, (3.2, 0.7, 0.7),
                 id="anisotropic-x-axis"),
])
def test_target_spacing(spacings, shapes, expected) -> None:
    np.testing.assert_allclose(target_spacing(spacings, shapes), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("spacing", "patch", "kernels", "strides", "padded"), [
    pytest.param((1.0, 1.0, 1.0), (128, 128, 128), [(3, 3, 3)] * 6, [(1, 1, 1)] + [(2, 2, 2)] * 5, (128, 128, 128),
                 id="isotropic-128"),
    pytest.param((1.0, 1.0, 2.5), (48, 48, 44), [(3, 3, 1)] + [(3, 3, 3)] * 3,
                 [(1, 1, 1), (2, 2, 1), (2, 2, 2), (2, 2, 2)], (48, 48, 44), id="z-2.5mm"),
    pytest.param((0.5, 0.5, 5.0), (256, 256, 24), [(3, 3, 1)] * 3 + [(3, 3, 3)] * 3,
                 [(1, 1, 1), (2, 2, 1), (2, 2, 1), (2, 2, 1), (2, 2, 2), (2, 2, 2)], (256, 256, 24),
                 id="strongly-anisotropic-5mm"),
    pytest.param((1.0, 1.0, 1.0), (100, 60, 37), [(3, 3, 3)] * 5,
                 [(1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 1)], (112, 64, 40), id="rounded-up"),
])
def test_derive_topology_matches_hand_derivation(spacing, patch, kernels, strides, padded) -> None:
    topology, out = derive_topology(spacing, patch)
    assert list(topology.kernel_sizes) == kernels
    assert list(topology.strides) == strides
    assert topology.filters == tuple(min(32 * 2**s, 320) for s in range(len(strides)))
    assert out == padded


def test_patch_fits_the_memory_budget_and_grows_with_it() -> None:
    spacing, median = (1.0, 1.0, 1.0), (160, 160, 160)
    volumes = []
    for budget in (3.0, 8.0):
        patch, topo, gb = fit_patch_size(spacing, median, gpu_memory_gb=budget, batch_size=2, n_channels=1, n_classes=3)
        assert gb == estimate_training_memory_gb(patch, topo, n_channels=1, n_classes=3, batch_size=2)
        assert gb <= budget
        assert all(p % d == 0 for p, d in zip(patch, topo.downsampling, strict=True))
        volumes.append(np.prod(patch))
    assert volumes[0] < volumes[1]
    assert patch == (128, 128, 128), "nnU-Net's default patch for isotropic data at 8 GB"
    # one topology step larger along any axis no longer fits
    for axis in range(3):
        bigger = list(patch)
        bigger[axis] += topo.downsampling[axis]
        topo_b, bigger_p = derive_topology(spacing, bigger)
        assert estimate_training_memory_gb(bigger_p, topo_b, n_channels=1, n_classes=3, batch_size=2) > 8.0


def test_budget_too_small_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cannot hold even"):
        fit_patch_size((1.0, 1.0, 1.0), (64, 64, 64), gpu_memory_gb=0.5, batch_size=2, n_channels=1, n_classes=2)


def test_meta_device_count_equals_a_real_forward_pass() -> None:
    """The planner counts saved activations on the meta device; a real CPU forward saves the same."""
    import torch
    from monai.networks.nets import DynUNet

    topo = Topology(((3, 3, 1), (3, 3, 3), (3, 3, 3)), ((1, 1, 1), (2, 2, 1), (2, 2, 2)), (4, 8, 16))
    meta_count, n_params = count_saved_activations((16, 16, 8), (topo.kernel_sizes, topo.strides, topo.filters),
                                                   n_channels=2, n_classes=3)
    torch.manual_seed(0)
    net = DynUNet(**dynunet_kwargs(topo, n_channels=2, n_classes=3))  # type: ignore[arg-type]
    saved: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[id(t)] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net.train()
        net(torch.randn(1, 2, 16, 16, 8))
    assert meta_count == sum(t.numel() for t in saved.values())
    assert n_params == sum(p.numel() for p in net.parameters())


def test_memory_model_calibration_point() -> None:
    """nnU-Net's default configuration (128³, batch 2, 6 stages) is estimated at 8.0 GB (module docstring)."""
    topo, _ = derive_topology((1.0, 1.0, 1.0), (128, 128, 128))
    gb = estimate_training_memory_gb((128, 128, 128), topo, n_channels=1, n_classes=3, batch_size=2)
    assert 7.9 < gb <= 8.0


def permute_case_files(root: Path) -> None:
    """Rewrite every file with voxel axes stored (z, x, y) flipped: same world geometry, odd file order."""
    for path in sorted((root / "imagesTr").glob("*.nii.gz")) + sorted((root / "labelsTr").glob("*.nii.gz")):
        v = read_volume(path)
        array = np.transpose(np.asarray(v.array), (2, 0, 1))[::-1]
        perm = np.eye(4)[:, [2, 0, 1, 3]]
        flip = np.eye(4)
        flip[0, 0], flip[0, 3] = -1.0, array.shape[0] - 1
        write_volume(Volume(np.ascontiguousarray(array), v.affine @ perm @ flip), path)


def test_plan_cli_on_a_ct_dataset_in_odd_orientation(tmp_path: Path) -> None:
    root = make_phantom_dataset(tmp_path / "ct", n_cases=3, shape=(24, 24, 16), channel_names=("CT",), seed=2)
    permute_case_files(root)
    assert read_volume(root / "labelsTr" / "phantom_000.nii.gz").orientation == "IRA"
    out = tmp_path / "plan.yaml"
    with pytest.raises(SystemExit) as done:
        main(["plan", str(root), "-o", str(out), "--gpu-memory-gb", "4"])
    assert done.value.code == 0
    plan = load_plan(out)
    assert plan.target_spacing_mm == (1.0, 1.0, 2.5), "RAS axis order, not file order"
    assert plan.fingerprint["planning"]["estimated_memory_gb"] <= 4.0
    # CT statistics: every foreground voxel is sampled here (fewer than 10 000 per case), so exact
    ds = load_dataset(root)
    fg = np.concatenate([np.asarray(i.array)[np.asarray(lab.array) > 0]
                         for i, lab in (ds.load_case(c) for c in ds.cases)]).astype(np.float64)
    ct = plan.channels[0]
    assert ct.scheme == "ct"
    np.testing.assert_allclose([ct.clip_low, ct.clip_high, ct.mean, ct.std],
                               [np.percentile(fg, 0.5), np.percentile(fg, 99.5), fg.mean(), fg.std()], rtol=1e-5)
    # YAML round trip
    again = tmp_path / "again.yaml"
    from medseg.data.plan import save_plan

    save_plan(plan, again)
    assert plan_to_dict(load_plan(again)) == plan_to_dict(plan)
    assert (out.read_text() == again.read_text())


def test_make_plan_multichannel_zscore_and_class_fractions(phantom2ch_root: Path) -> None:
    ds = load_dataset(phantom2ch_root)
    fp = compute_fingerprint(ds)
    plan = make_plan(fp, ds, gpu_memory_gb=2.0)
    assert [(c.name, c.scheme) for c in plan.channels] == [("T1", "zscore"), ("T2", "zscore")]
    assert plan.n_classes == 4 and plan.target_spacing_mm == (1.0, 1.0, 2.5)
    fractions = plan.fingerprint["class_fractions"]
    assert set(fractions) == {"0", "1", "2", "3"} and abs(sum(fractions.values()) - 1) < 1e-3
    assert fp.cases[0].shape_before_crop == (20, 20, 12)


def test_tiny_budget_on_small_anisotropic_cases_is_a_clear_error() -> None:
    """Shrinking must stop with the budget message, not fail inside the topology (48³ at 1×1×2.5 mm)."""
    with pytest.raises(ConfigError, match="cannot hold even"):
        fit_patch_size((1.0, 1.0, 2.5), (48, 48, 48), gpu_memory_gb=0.5, batch_size=2, n_channels=1, n_classes=3)

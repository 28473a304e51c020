"""Slab-wise inversion + argmax equals the global inversion, whatever the slab size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.data.plan import ChannelNorm, Plan, Topology
from medseg.inference.stitching import SlabArgmax, axis_map, resize_axis, slab_bounds, stitched_labels
from medseg.io import Volume
from medseg.labels import LabelSpec
from medseg.transforms.preprocess import invert, preprocess_image

TOPO = Topology(kernel_sizes=((3, 3, 3),) * 2, strides=((1, 1, 1), (2, 2, 2)), filters=(4, 8))


def plan_for(spacing: tuple[float, float, float], patch=(8, 8, 8)) -> Plan:
    return Plan(target_spacing_mm=spacing, patch_size=patch, channels=(ChannelNorm("x", "none"),),
                labels=LabelSpec.from_values([1, 2, 3]), topology=TOPO, crop_to_nonzero=True)


@pytest.mark.parametrize(("n_src", "n_out"), [(7, 13), (13, 7), (5, 5), (1, 4), (9, 2)])
def test_axis_map_matches_torch_linear(n_src: int, n_out: int) -> None:
    x = torch.randn(3, n_src, 2)
    ours = resize_axis(x, 1, axis_map(n_src, n_out, nearest=False))
    ref = torch.nn.functional.interpolate(x.permute(0, 2, 1), size=n_out, mode="linear", align_corners=False)
    torch.testing.assert_close(ours, ref.permute(0, 2, 1))


def odd_volume(rng: np.random.Generator) -> Volume:
    affine = np.array([[0.0, 0.0, -2.5, 10.0], [0.8, 0.0, 0.0, -5.0], [0.0, -0.9, 0.0, 3.0], [0, 0, 0, 1]])
    data = np.zeros((11, 23, 19), np.float32)
    data[1:10, 2:21, 1:18] = rng.random((9, 19, 17)) + 0.1
    return Volume(data, affine)


@pytest.mark.parametrize("slab", [1, 3, 7, 1000])
def test_slab_argmax_equals_global_invert(slab: int) -> None:
    rng = np.random.default_rng(0)
    vol = odd_volume(rng)
    image, record = preprocess_image(vol, plan_for((1.3, 1.1, 1.7)))
    k = 4
    logits = torch.from_numpy(rng.standard_normal((k, *image.shape)).astype(np.float32))
    acc = SlabArgmax(record, k)
    zn = image.shape[2]
    for a, b in slab_bounds(zn, slab):
        first, last = max(0, a - 1), min(zn, b + 1)
        acc.add(logits[..., first:last], first, a, b)
    ours = acc.result()
    fills = [1e4] + [-1e4] * (k - 1)
    ref = np.argmax(invert(logits.numpy(), record, kind="continuous", fill=fills), axis=0)
    assert ours.shape == vol.shape
    assert np.mean(ours == ref) > 0.999  # equal up to float rounding at exact ties


def test_stitched_inference_independent_of_slab_count() -> None:
    """A position-wise 'network' gives the same labels with one slab or many."""
    rng = np.random.default_rng(1)
    vol = odd_volume(rng)
    plan = plan_for((1.0, 1.0, 1.0))
    image, record = preprocess_image(vol, plan)
    weights = torch.tensor([0.5, -1.0, 2.0, 0.3]).view(1, 4, 1, 1, 1)

    def net(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(7 * x) * weights + x * weights.flip(1)

    kwargs = dict(n_classes=4, patch_size=plan.patch_size, overlap=0.5, sw_batch_size=2, device=torch.device("cpu"))
    one = stitched_labels(net, torch.from_numpy(image.array), record, max_memory_gb=10.0, **kwargs)
    many = stitched_labels(net, torch.from_numpy(image.array), record, max_memory_gb=1e-6, **kwargs)
    assert one.shape == vol.shape
    np.testing.assert_array_equal(one, many)
    assert len(np.unique(one)) > 1

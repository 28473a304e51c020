"""The Predictor and ``predict_file`` API: padding, progress, options, probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medseg.errors import ConfigError, InvalidInputError
from medseg.inference import predict_file
from medseg.inference.sliding import window_count
from medseg.io import Volume, read_volume, write_volume
from tests.inference.test_geometry import canonical_spacing, synthetic_volume, threshold_predictor


def test_input_smaller_than_the_patch_is_padded() -> None:
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    data = np.zeros((5, 7, 3), np.float32)
    data[1:4, 2:6, 1] = 1.0
    out = threshold_predictor((1.0, 1.0, 1.0), patch=(16, 16, 16)).predict(Volume(data, affine))
    assert out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out.array, (data > 0.5).astype(out.array.dtype))


@pytest.mark.parametrize(("shape", "patch", "overlap"), [
    ((16, 16, 16), (16, 16, 16), 0.5),
    ((10, 4, 2), (16, 16, 16), 0.5),
    ((24, 16, 16), (16, 16, 16), 0.5),
    ((40, 33, 17), (16, 16, 16), 0.5),
    ((40, 33, 17), (16, 8, 16), 0.25),
    ((61, 20, 9), (16, 16, 16), 0.8),
])
def test_window_count_matches_monai(shape, patch, overlap) -> None:
    import torch
    from monai.inferers import sliding_window_inference

    seen = []

    def predictor(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return x

    sliding_window_inference(torch.zeros(1, 1, *shape), patch, 1, predictor, overlap=overlap)
    assert window_count(shape, patch, overlap) == sum(seen)


def test_progress_reaches_the_window_total() -> None:
    volume, _ = synthetic_volume("lps_flipped")
    calls: list[tuple[int, int]] = []
    for budget in (None, 1e-5):  # one slab, many slabs
        calls.clear()
        predictor = threshold_predictor(canonical_spacing(volume.affine), max_memory_gb=budget)
        predictor.predict_case(volume, progress=lambda done, total: calls.append((done, total)))
        assert calls, "progress was never reported"
        totals = {t for _, t in calls}
        assert len(totals) == 1
        assert calls[-1][0] == calls[-1][1] == totals.pop()
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_probabilities_sum_to_one_on_the_input_grid(tmp_path: Path) -> None:
    volume, expected = synthetic_volume("permuted_lia")
    src = write_volume(volume, tmp_path / "scan.nii.gz")
    out = predict_file(src, tmp_path / "out" / "scan_seg.nii.gz",
                       predictor=threshold_predictor(canonical_spacing(volume.affine)), save_probabilities=True)
    probs = read_volume(tmp_path / "out" / "scan_seg_probabilities.nii.gz")
    assert probs.array.shape == (2, *volume.shape)
    np.testing.assert_allclose(probs.array.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(probs.array, axis=0), expected)
    np.testing.assert_array_equal(read_volume(out).array, expected)


def test_unknown_option_and_wrong_suffix_are_clear_errors(tmp_path: Path) -> None:
    volume, _ = synthetic_volume("ras_iso")
    src = write_volume(volume, tmp_path / "scan.nii.gz")
    predictor = threshold_predictor(canonical_spacing(volume.affine))
    with pytest.raises(ConfigError, match="unknown inference option"):
        predict_file(src, None, predictor=predictor, overlapp=0.5)
    with pytest.raises(InvalidInputError, match="for --format seg.nrrd"):
        predict_file(src, tmp_path / "x.nii.gz", predictor=predictor, output_format="seg.nrrd")
    assert not (tmp_path / "x.nii.gz").exists()


def test_settings_override_the_predictor_options(tmp_path: Path) -> None:
    volume, expected = synthetic_volume("oblique")
    src = write_volume(volume, tmp_path / "scan.mha")
    out = predict_file(src, tmp_path / "scan_seg.nrrd", predictor=threshold_predictor(canonical_spacing(volume.affine)),
                       overlap=0.25, tta=True, max_memory_gb=1e-5)
    np.testing.assert_array_equal(read_volume(out).array, expected)


def test_tta_flips_only_the_given_axes_and_undoes_each_flip() -> None:
    """A network that adds a ramp along x: averaging it with its x-flip gives a constant offset, and
    TTA over x alone runs 2 forward passes, over all axes 8."""
    import torch

    from medseg.inference.sliding import windowed_predictor

    class Ramp(torch.nn.Module):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Ramp.calls += 1
            ramp = torch.arange(x.shape[2], dtype=x.dtype).view(1, 1, -1, 1, 1)
            return torch.cat([x, x + ramp], dim=1)

    x = torch.rand(1, 1, 6, 5, 4)
    plain = windowed_predictor(Ramp(), amp_dtype=None, tta=False)(x)
    lr = windowed_predictor(Ramp(), amp_dtype=None, tta=True, mirror_axes=(0,))(x)
    assert Ramp.calls == 3
    torch.testing.assert_close(lr[:, 0], plain[:, 0])  # the input comes back unflipped
    torch.testing.assert_close(lr[:, 1], x[:, 0] + 2.5)  # (ramp + flipped ramp) / 2 = (n - 1) / 2
    windowed_predictor(Ramp(), amp_dtype=None, tta=True)(x)
    assert Ramp.calls == 3 + 8

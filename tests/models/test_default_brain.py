"""The bundled default brain model (issue 8): listed, verified, contrast-agnostic, orientation-proof.

Runs the real model on real scans from ../shared/data (skipped when they are missing). Each
inference is a 2 mm network pass over a brain, a few seconds on one CPU core.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.inference import Predictor
from medseg.io import Volume, read_volume
from medseg.labels.freesurfer import freesurfer_to_brain16
from medseg.metrics import evaluate_case
from medseg.models.zoo import bundled_models
from medseg.runtime import cpu_supports_bf16
from tests.conftest import REPO, shared_path

BRAIN_CLASSES = ["cerebral_white_matter", "cerebral_cortex", "lateral_ventricle", "cerebellum_white_matter",
                 "cerebellum_cortex", "thalamus", "caudate", "putamen", "pallidum", "third_ventricle",
                 "fourth_ventricle", "brainstem", "hippocampus", "amygdala", "accumbens", "ventral_dc"]
MNI_T1 = ("nilearn_mni152", "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
FS = ("niivue_samples", "freesurfer_subject")


def default_entry():
    defaults = [m for m in bundled_models() if m.default]
    if not defaults:
        pytest.skip("no default model is bundled in medseg/models/weights")
    return defaults[0]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    import torch

    torch.set_num_threads(1)
    entry = default_entry()
    return Predictor.from_checkpoint(entry.path, device="cpu", sha256=entry.sha256)


def test_models_list_json_names_the_default(tmp_path: Path) -> None:
    entry = default_entry()
    run = subprocess.run([sys.executable, "-m", "medseg", "models", "list", "--json", "--models-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    models = json.loads(run.stdout)
    default = [m for m in models if m["default"]]
    assert len(default) == 1 and default[0]["name"] == entry.name == "brain"
    assert [default[0]["classes"][str(v)] for v in range(1, 17)] == BRAIN_CLASSES
    assert Path(default[0]["path"]).stat().st_size <= 20 * 2**20
    Predictor.from_checkpoint(default[0]["path"], device="cpu")  # the path is loadable as it is


def test_a_tampered_bundled_model_is_refused(tmp_path: Path) -> None:
    from medseg.errors import CheckpointError

    entry = default_entry()
    copy = tmp_path / "brain.pt"
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        Predictor.from_checkpoint(copy, device="cpu", sha256=entry.sha256)


def permuted_and_flipped(volume: Volume) -> Volume:
    """The same scan stored with voxel axes permuted (k, i, j) and the first and last flipped."""
    array = np.transpose(volume.array, (2, 0, 1))[::-1, :, ::-1].copy()
    shape = volume.shape
    # new index (a, b, c) holds old voxel (i, j, k) = (b, shape[2]-1-c... ) → build the index map as an affine
    perm = np.zeros((4, 4))
    perm[3, 3] = 1.0
    # old i = b, old j = (shape[1] - 1) - c, old k = (shape[2] - 1) - a
    perm[0, 1] = 1.0
    perm[1, 2], perm[1, 3] = -1.0, shape[1] - 1
    perm[2, 0], perm[2, 3] = -1.0, shape[2] - 1
    out = Volume(array, volume.affine @ perm)
    corner = out.voxel_to_world([1, 2, 3])
    old = volume.world_to_voxel(corner)
    assert out.array[1, 2, 3] == volume.array[tuple(np.round(old).astype(int))]
    return out


def test_permuted_flipped_t1_gives_the_same_world_result(predictor: Predictor) -> None:
    t1 = read_volume(shared_path(*MNI_T1))
    odd = permuted_and_flipped(t1)
    assert odd.orientation != t1.orientation
    a = predictor.predict(t1)
    b = predictor.predict(odd)
    np.testing.assert_array_equal(b.affine, odd.affine)
    back = np.transpose(b.array[::-1, :, ::-1], (1, 2, 0))
    assert np.mean(back == a.array) > 0.999
    found = set(np.unique(a.array).tolist()) - {0}
    assert {1, 2} <= found and len(found) >= 6, f"a T1 should show at least white matter, cortex and more: {found}"


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no bf16 support; inference runs in float32")
def test_bf16_autocast_agrees_with_float32(predictor: Predictor) -> None:
    from dataclasses import replace

    scan = read_volume(shared_path(*FS, "norm.mgz"))
    bf16 = replace(predictor, options=replace(predictor.options, amp="bf16")).predict(scan)
    fp32 = replace(predictor, options=replace(predictor.options, amp="off")).predict(scan)
    dice = [2 * ((bf16.array == c) & (fp32.array == c)).sum() / ((bf16.array == c).sum() + (fp32.array == c).sum())
            for c in range(1, 17) if (fp32.array == c).any()]
    assert np.mean(dice) >= 0.99


def card_mean_dice() -> float:
    card = (REPO / "docs" / "models" / "brain.md").read_text(encoding="utf-8")
    match = re.search(r"\*\*mean\*\* \| \*\*([0-9.]+)\*\*", card)
    assert match, "docs/models/brain.md must state the mean Dice as '| **mean** | **0.xxx** |'"
    return float(match.group(1))


def test_freesurfer_subject_dice_matches_the_model_card(predictor: Predictor) -> None:
    """The number in the model card is what the bundled model scores (within rounding)."""
    scan = read_volume(shared_path(*FS, "norm.mgz"))
    ref = read_volume(shared_path(*FS, "aparc.a2009s+aseg.mgz"))
    labels = predictor.predict(scan)
    reference = ref.with_array(freesurfer_to_brain16(ref.array))
    report = evaluate_case(labels.array, reference.array, spacing_mm=scan.spacing, labels=list(range(1, 17)))
    mean = float(np.mean([m.dice for m in report]))
    assert abs(mean - card_mean_dice()) < 0.006


def test_tta_mirrors_left_right_only_and_keeps_the_accuracy(predictor: Predictor) -> None:
    """The model saw left-right flips only: TTA averages those 2 (all 8 flips, upside-down heads
    included, took the mean Dice from 0.65 to 0.15)."""
    from dataclasses import replace

    assert predictor.mirror_axes == (0,)
    scan = read_volume(shared_path(*FS, "norm.mgz"))
    ref = read_volume(shared_path(*FS, "aparc.a2009s+aseg.mgz"))
    labels = replace(predictor, options=replace(predictor.options, tta=True)).predict(scan)
    report = evaluate_case(labels.array, freesurfer_to_brain16(ref.array), spacing_mm=scan.spacing,
                           labels=list(range(1, 17)))
    assert float(np.mean([m.dice for m in report])) >= card_mean_dice() - 0.01

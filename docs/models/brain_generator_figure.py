"""Draw ``docs/models/brain_generator.png``: real scans at 2 mm beside synthetic training patches.

    python docs/models/brain_generator_figure.py [--seed 3] [--out docs/models/brain_generator.png]

Real scans (FreeSurfer ``norm.mgz``, MNI152 T1, FLAIR) are resampled to 2 mm by trilinear
interpolation and scaled to [0, 1] (clipped at the 99.9th percentile); synthetic patches come from
``training_seg_02`` prepared at 2 mm with the default :class:`~medseg.transforms.synth.SynthConfig`.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from medseg.data.labelmaps import prepare_label_map  # noqa: E402
from medseg.io import Volume, read_volume  # noqa: E402
from medseg.labels.freesurfer import brain_label_spec  # noqa: E402
from medseg.transforms.synth import SynthGenerator  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL = {
    "norm.mgz": DATA / "niivue_samples" / "freesurfer_subject" / "norm.mgz",
    "MNI152 T1": DATA / "nilearn_mni152" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "FLAIR": DATA / "niivue_samples" / "flair_lesion" / "FLAIR.nii.gz",
}
LABEL_MAP = DATA / "synthseg_labelmaps" / "training_label_maps" / "training_seg_02.nii.gz"
PATCH = 96
SPACING_MM = 2.0


def real_patch(path: Path) -> np.ndarray:
    """A scan as RAS at 2 mm, scaled to [0, 1], centred on its non-zero voxels in a PATCH³ box."""
    volume = read_volume(path)
    ornt = nib.orientations.io_orientation(volume.affine)
    array = nib.orientations.apply_orientation(volume.array.astype(np.float32), ornt)
    ras = Volume(array, volume.affine @ nib.orientations.inv_ornt_aff(ornt, volume.shape))
    size = [max(1, round(n * s / SPACING_MM)) for n, s in zip(ras.shape, ras.spacing, strict=True)]
    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(ras.array))[None, None], size=size,
                      mode="trilinear", align_corners=False)[0, 0]
    centre = torch.nonzero(t > 0).float().mean(0).round().long().tolist()
    out = torch.zeros((PATCH,) * 3)
    lo = [c - PATCH // 2 for c in centre]
    src = tuple(slice(max(a, 0), min(a + PATCH, n)) for a, n in zip(lo, t.shape, strict=True))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
    out[dst] = t[src]
    high = torch.quantile(out[out > 0][::5], 0.999)
    return (out.clamp(0, high) / high).numpy()


def colour_labels(target: np.ndarray) -> np.ndarray:
    lut = np.zeros((17, 3), np.uint8)
    for lab in brain_label_spec().labels:
        lut[lab.value] = lab.color
    return lut[target]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--n", type=int, default=5, help="synthetic samples")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "brain_generator.png")
    args = parser.parse_args()
    label_map = torch.from_numpy(prepare_label_map(read_volume(LABEL_MAP), spacing_mm=SPACING_MM).array)
    generator = SynthGenerator(patch_size=(PATCH,) * 3, spacing_mm=SPACING_MM)
    rng = torch.Generator().manual_seed(args.seed)
    samples = [generator(label_map, rng) for _ in range(args.n)]
    cols = len(REAL) + args.n
    fig, ax = plt.subplots(3, cols, figsize=(1.55 * cols, 4.9))
    mid = PATCH // 2
    for c, (name, path) in enumerate(REAL.items()):
        scan = real_patch(path)
        ax[0, c].imshow(np.rot90(scan[:, :, mid]), cmap="gray", vmin=0, vmax=1)
        ax[1, c].imshow(np.rot90(scan[:, mid, :]), cmap="gray", vmin=0, vmax=1)
        ax[0, c].set_title(name, fontsize=7)
    for c, (image, target) in enumerate(samples, start=len(REAL)):
        ax[0, c].imshow(np.rot90(image[0, :, :, mid].numpy()), cmap="gray", vmin=0, vmax=1)
        ax[1, c].imshow(np.rot90(image[0, :, mid, :].numpy()), cmap="gray", vmin=0, vmax=1)
        ax[2, c].imshow(np.rot90(colour_labels(target[:, :, mid].numpy()), axes=(0, 1)))
        ax[0, c].set_title(f"synthetic {c - len(REAL) + 1}", fontsize=7)
    for a in ax.ravel():
        a.axis("off")
    fig.tight_layout(pad=0.2)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=80, format="png")
    Image.open(buffer).convert("RGB").quantize(colors=128).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()

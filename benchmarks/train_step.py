"""Seconds per training iteration: medseg's ``train_step`` vs a plain MONAI/PyTorch loop.

Both train the same DynUNet (built by medseg's registry from a plan) with the same Dice + CE loss and
AdamW on the same random batch. The reference is what a MONAI script does: fp32, ``DiceCELoss`` on
the main output only, no gradient clipping. medseg adds deep-supervision weighting and clipping,
and runs under ``loop.amp`` (bf16 autocast on CPUs with AMX/AVX512-BF16) and ``--deterministic``.

    python benchmarks/train_step.py [--threads 2] [--repeats 5] [--network all|tiny] [--device cuda]

Prints the median wall time per iteration (after 2 warm-up steps) and the ratio to the reference.
On CUDA the autocast rows use bf16 as well (``loop.amp: auto`` picks it on GPUs that support it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from medseg.data.plan import ChannelNorm, Plan
from medseg.data.planner import derive_topology
from medseg.labels import LabelSpec
from medseg.models import ModelConfig, create_model
from medseg.runtime import cpu_supports_bf16
from medseg.training.loop import train_step
from medseg.training.losses import SegmentationLoss
from medseg.training.run import determinism

#: (name, patch, spacing_mm, model) — the tiny.yaml network and a mid-sized 3D U-Net.
NETWORKS = [
    ("tiny.yaml (16 filters, 32³)", (32, 32, 32), (1.0, 1.0, 2.5), ModelConfig(name="unet", max_filters=16)),
    ("unet, 64³, filters ≤ 128", (64, 64, 64), (1.0, 1.0, 1.0), ModelConfig(name="unet", max_filters=128)),
]


def make_plan(patch: tuple[int, int, int], spacing: tuple[float, float, float]) -> Plan:
    topology, patch = derive_topology(spacing, patch)
    return Plan(target_spacing_mm=spacing, patch_size=patch, channels=(ChannelNorm("image"),),
                labels=LabelSpec.from_values([1, 2]), topology=topology)


def timed(step: Callable[[], object], repeats: int, device: torch.device) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reference_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], object]:
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def step() -> float:
        out = net(x)
        loss = loss_fn(out[:, 0] if out.dim() == 6 else out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def medseg_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, amp: torch.dtype | None,
                ) -> Callable[[], object]:
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(x.device.type, enabled=False)
    loss_fn = SegmentationLoss()
    batch = {"image": x, "label": y}
    return lambda: train_step(net, batch, optimizer=optimizer, scaler=scaler, loss_fn=loss_fn,
                              device=x.device, amp_dtype=amp, grad_clip=12.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--network", choices=("all", "tiny"), default="all")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU bf16 support: {cpu_supports_bf16()}"
    print(f"torch {torch.__version__}, {args.threads} thread(s), {where}")
    for name, patch, spacing, model in NETWORKS[:1] if args.network == "tiny" else NETWORKS:
        plan = make_plan(patch, spacing)
        x = torch.randn(2, 1, *plan.patch_size, device=device)
        y = torch.randint(0, 3, (2, 1, *plan.patch_size), device=device)

        def fresh(config: ModelConfig = model, plan: Plan = plan) -> torch.nn.Module:
            torch.manual_seed(0)
            return create_model(config, plan).to(device).train()

        ref = timed(reference_step(fresh(replace(model, deep_supervision=False)), x, y), args.repeats, device)
        rows = [("MONAI loop, fp32 (reference)", ref)]
        rows.append(("medseg train_step, fp32", timed(medseg_step(fresh(), x, y, None), args.repeats, device)))
        rows.append(("medseg train_step, bf16 autocast",
                     timed(medseg_step(fresh(), x, y, torch.bfloat16), args.repeats, device)))
        with determinism(seed=0, enabled=True):
            rows.append(("medseg train_step, bf16, --deterministic",
                         timed(medseg_step(fresh(), x, y, torch.bfloat16), args.repeats, device)))
        print(f"\n{name}: patch {list(plan.patch_size)}, batch 2")
        for label, seconds in rows:
            print(f"  {label:44s} {seconds:7.3f} s/it   {seconds / ref:5.2f}x reference")


if __name__ == "__main__":
    main()

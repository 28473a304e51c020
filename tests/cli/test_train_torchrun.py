"""Issue 4 acceptance 3: ``torchrun --nproc_per_node 2 -m medseg train`` on CPU (gloo).

Two processes train 2 epochs with DistributedDataParallel. Checked: one set of checkpoints and
logs (rank 0 writes, the other rank does not), different patches on the two ranks, identical
weights on both ranks after every epoch (so DDP averaged the gradients: with different batches and
no synchronisation they would diverge), equal to the saved ``last.pt``, and the logged training loss
is the mean over both ranks. ``--debug`` makes every rank log digests of its first batch and of its
weights (``rank R epoch E first batch <sha1>`` / ``weights <sha1>``).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from medseg.models.checkpoint import load_checkpoint
from medseg.training.loop import state_digest
from tests.training.helpers import make_micro_dataset, subprocess_env, write_config

DIGEST = re.compile(r"rank (\d) epoch (\d+) (first batch|weights) ([0-9a-f]{16})")
LOSS = re.compile(r"rank (\d) epoch (\d+) iteration \d+/\d+ loss ([0-9.]+)")


def torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    data = make_micro_dataset(tmp_path / "data")
    config = write_config(tmp_path / "c.yaml", loop={"epochs": 2, "iterations_per_epoch": 3, "val_every": 2},
                          plan={"patch_size": [16, 16, 8]})
    run = tmp_path / "run"
    command = [*torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "medseg", "--debug", "train", str(data),
               "--config", str(config), "--output", str(run), "--device", "cpu", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), timeout=600, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]

    digests: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    for rank, epoch, kind, digest in DIGEST.findall(log):
        digests[(kind, int(epoch))][int(rank)] = digest
    for epoch in (1, 2):
        batches, weights = digests[("first batch", epoch)], digests[("weights", epoch)]
        assert set(batches) == set(weights) == {0, 1}
        assert batches[0] != batches[1]  # each rank samples its own patches
        assert weights[0] == weights[1]  # ... and DDP keeps the replicas identical
    last = load_checkpoint(run / "fold_0" / "last.pt")
    assert state_digest(last.state_dict) == digests[("weights", 2)][0]

    losses: dict[tuple[int, int], list[float]] = defaultdict(list)
    for rank, epoch, loss in LOSS.findall(log):
        losses[(int(rank), int(epoch))].append(float(loss))
    with (run / "fold_0" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # one row per epoch: only rank 0 writes
    for row in rows:
        per_rank = [sum(losses[(r, int(row["epoch"]))]) / 3 for r in (0, 1)]
        assert float(row["train_loss"]) == pytest.approx(sum(per_rank) / 2, abs=1e-5)

    fold = run / "fold_0"
    assert sorted(p.name for p in fold.iterdir()) == ["best.pt", "last.pt", "metrics.csv", "progress.png",
                                                      "tensorboard", "validation.json"]
    assert len(list((fold / "tensorboard").iterdir())) == 1
    assert sorted(p.name for p in run.iterdir()) == ["cache", "config.yaml", "fold_0", "plan.yaml", "splits.json"]
    assert last.training["epoch"] == 2 and len(last.training["history"]) == 2

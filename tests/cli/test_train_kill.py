"""Issue 4 acceptance 2: a ``--deterministic`` run killed with SIGKILL in the middle of an epoch and
resumed with ``--resume`` ends with exactly the weights of an uninterrupted run with the same seed,
and the run folder never holds a checkpoint that does not load.

Three ``python -m medseg train`` processes (one OpenMP thread each): the uninterrupted reference
(started with ``--resume`` on a folder that does not exist yet, which must simply start it) runs
beside the run that is killed and then resumed. ``--debug`` makes the trained run log every
iteration (``rank 0 epoch E iteration I/N``), which tells the test when epoch 2 is under way.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from medseg.errors import CheckpointError
from medseg.models.checkpoint import load_checkpoint
from medseg.training.loop import remove_stale_temporaries
from tests.training.helpers import make_micro_dataset, make_micro_plan, subprocess_env, write_config

EPOCHS, ITERATIONS = 3, 40
ATTEMPTS = 3  # a kill that lands after the epoch ended (a slow, busy machine) is retried on a fresh folder
ITERATION = re.compile(r"rank 0 epoch (\d+) iteration (\d+)/(\d+)")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes the test starts; any still running at the end (a failed test) are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start(processes: list[subprocess.Popen[str]], *args: str | Path, debug: bool = False,
          log: Path | None = None) -> subprocess.Popen[str]:
    """``python -m medseg [--debug] train ARGS``; stderr to ``log`` or a pipe."""
    command = [sys.executable, "-m", "medseg", *(["--debug"] if debug else []), "train", *map(str, args)]
    err = log.open("w") if log is not None else subprocess.PIPE
    processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, text=True,
                                      env=subprocess_env()))
    return processes[-1]


def checkpoints_load(folder: Path) -> list[str]:
    """Load every finished ``*.pt`` under ``folder`` (a corrupt one raises); return their names."""
    names = []
    for path in sorted(folder.rglob("*.pt")):
        if path.name.startswith("."):  # atomic_path's temporary, renamed onto its target only once complete
            continue
        try:
            load_checkpoint(path)
        except CheckpointError:
            if path.exists():  # replaced between listing and loading is fine; corrupt is not
                raise
        names.append(path.name)
    return names


class Watcher(threading.Thread):
    """Loads every checkpoint in ``folder`` again and again while ``process`` runs; keeps any failure."""

    def __init__(self, process: subprocess.Popen[str], folder: Path) -> None:
        super().__init__(daemon=True)
        self.process, self.folder = process, folder
        self.rounds, self.failures = 0, list[str]()

    def run(self) -> None:
        while self.process.poll() is None:
            try:
                checkpoints_load(self.folder)
            except CheckpointError as exc:
                self.failures.append(str(exc))
            self.rounds += 1
            time.sleep(0.02)

    def check(self) -> None:
        self.join()
        assert self.rounds > 0 and not self.failures, self.failures


def progress(lines: list[str]) -> tuple[int, int, int]:
    """(epoch, iteration, iterations per epoch) of the last iteration the run logged."""
    last = [m for line in lines if (m := ITERATION.search(line))][-1]
    return int(last[1]), int(last[2]), int(last[3])


def kill_in_epoch_two(processes: list[subprocess.Popen[str]], data: Path, killed_dir: Path,
                      common: tuple[str | Path, ...]) -> int | None:
    """Start a run in ``killed_dir``, SIGKILL it once epoch 2 is logged; the epoch it died in.

    None when the kill landed too late to be in the middle of an epoch (the run had already
    logged the epoch's last iteration, or finished): the caller tries again.
    """
    victim = start(processes, data, "--output", killed_dir, *common, debug=True)
    watcher = Watcher(victim, killed_dir)
    watcher.start()
    assert victim.stderr is not None
    lines = []
    for line in victim.stderr:
        lines.append(line)
        if "rank 0 epoch 2 iteration 1/" in line:
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait(timeout=60)
    lines += victim.stderr.read().splitlines()  # what it wrote before the kill
    watcher.check()
    if victim.returncode != -signal.SIGKILL:
        assert victim.returncode == 0, "".join(lines[-20:])
        return None
    epoch, iteration, per_epoch = progress(lines)
    if iteration == per_epoch:
        return None
    assert epoch >= 2
    return epoch


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path: Path,
                                                            processes: list[subprocess.Popen[str]]) -> None:
    data = make_micro_dataset(tmp_path / "data")
    plan = make_micro_plan(data, tmp_path / "plan.yaml")
    config = write_config(tmp_path / "c.yaml", loop={"epochs": EPOCHS, "iterations_per_epoch": ITERATIONS,
                                                     "val_every": EPOCHS, "amp": "auto"})
    common = ("--config", config, "--plan", plan, "--seed", "7", "--deterministic", "--quiet")
    reference = start(processes, data, "--output", tmp_path / "reference", "--resume", *common,
                      log=tmp_path / "reference.log")
    for attempt in range(ATTEMPTS):
        killed_dir = tmp_path / f"killed{attempt}"
        epoch = kill_in_epoch_two(processes, data, killed_dir, common)
        if epoch is not None:
            break
    assert epoch is not None, f"the kill never landed inside an epoch in {ATTEMPTS} attempts"
    assert load_checkpoint(killed_dir / "fold_0" / "last.pt").training["epoch"] == epoch - 1  # the last finished epoch
    assert checkpoints_load(killed_dir) == ["last.pt"]

    resumed = start(processes, data, "--output", killed_dir, "--resume", *common, debug=True)
    watcher = Watcher(resumed, killed_dir)
    watcher.start()
    _, log = resumed.communicate(timeout=300)
    watcher.check()
    assert resumed.returncode == 0, log[-3000:]
    assert f"after epoch {epoch - 1}" in log and f"rank 0 epoch {epoch - 1} iteration" not in log  # not retrained
    assert f"rank 0 epoch {epoch} iteration 1/" in log  # the interrupted epoch runs again from its start
    assert reference.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-3000:]

    ours, theirs = (load_checkpoint(d / "fold_0" / "last.pt") for d in (killed_dir, tmp_path / "reference"))
    assert ours.training["epoch"] == theirs.training["epoch"] == EPOCHS
    assert ours.state_dict.keys() == theirs.state_dict.keys()
    for key, value in ours.state_dict.items():
        assert torch.equal(value, theirs.state_dict[key]), (key, (value - theirs.state_dict[key]).abs().max())
    assert ([r["train_loss"] for r in ours.training["history"]]
            == [r["train_loss"] for r in theirs.training["history"]])
    assert torch.equal(ours.training["rng"]["torch"], theirs.training["rng"]["torch"])
    assert sorted(checkpoints_load(killed_dir)) == ["best.pt", "last.pt"]
    assert remove_stale_temporaries(killed_dir / "fold_0") == []
    assert not [p for p in killed_dir.rglob("*") if ".part" in p.name]

"""A run killed with SIGKILL and resumed ends with exactly the same weights as the same run uninterrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlit.training.checkpoint import latest_checkpoint
from vlit.training.loop import Trainer


def _command(train_config, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vlit.cli", "train", "debug", f"data.root={train_config.data.root}",
            "data.build=null", f"train.cache_dir={train_config.train.cache_dir}", "train.save_every=3",
            "--out", str(out), *extra]


def _kill_after_checkpoint(cmd: list[str], out: Path, step: int) -> None:
    target = out / "checkpoints" / f"step-{step:08d}" / "trainer_state.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.exists(), "the run never wrote the checkpoint to be killed after"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model" / "model.safetensors")


@pytest.mark.slow
# Mid stage 1, the stage boundary, mid stage 2; and with DataLoader workers, which prefetch past the checkpoint.
@pytest.mark.parametrize("kill_after, workers", [(3, None), (6, None), (9, None), (3, 2), (9, 2)])
def test_sigkill_and_resume_is_bit_identical(train_config, tmp_path, kill_after, workers):
    reference = Trainer(train_config, tmp_path / "reference").run()
    resumed = tmp_path / "resumed"
    extra = [] if workers is None else [f"train.num_workers={workers}"]
    _kill_after_checkpoint(_command(train_config, resumed, *extra), resumed, kill_after)
    subprocess.run(_command(train_config, resumed, *extra, "--resume"), check=True, capture_output=True)
    expected, got = _weights(reference.parent), _weights(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_checkpoints_are_atomic_and_pruned(train_config, tmp_path):
    Trainer(train_config, tmp_path / "run").run()
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["step-00000009", "step-00000012"]  # keep_last 2 of 3, 6, 9, 12
    # A write killed half way leaves a temporary folder, which resume ignores.
    (tmp_path / "run" / "checkpoints" / ".step-00000015.tmp").mkdir()
    assert latest_checkpoint(tmp_path / "run").name == "step-00000012"
    files = {p.name for p in (tmp_path / "run" / "checkpoints" / "step-00000012").rglob("*") if p.is_file()}
    assert not {f for f in files if f.endswith((".bin", ".pt", ".pkl"))}
    assert {"optimizer.safetensors", "rng.safetensors", "trainer_state.json", "model.safetensors"} <= files
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000

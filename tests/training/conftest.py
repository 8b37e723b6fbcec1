from __future__ import annotations

import dataclasses

import pytest

from vlit.config import Config, load_yaml


@pytest.fixture(scope="session")
def debug_data(tmp_path_factory):
    """The debug recipe's tiny quickstart build, made once per test session."""
    from vlit.data.sources.build import build_quickstart

    root = tmp_path_factory.mktemp("debug-data")
    build_quickstart(root, seed=0, scale=0.05, progress=False)
    return root


@pytest.fixture
def train_config(debug_data, tmp_path) -> Config:
    cfg = load_yaml(Config, "debug", [f"data.root={debug_data}", f"train.cache_dir={tmp_path / 'features'}"])
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, build=None))


def _kill_after_checkpoint(cmd: list[str], out, step: int) -> None:
    """Run a `vlit train` command and SIGKILL it as soon as its checkpoint of `step` is complete."""
    import os
    import signal
    import subprocess
    import time

    target = out / "checkpoints" / f"step-{step:08d}" / "trainer_state.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.exists(), "the run never wrote the checkpoint to be killed after"


@pytest.fixture
def kill_after_checkpoint():
    """`kill_after_checkpoint(cmd, out, step)`: the kill -9 of the resume tests."""
    return _kill_after_checkpoint

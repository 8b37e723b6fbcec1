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
    # No DataLoader workers, whatever the machine's cores (its default): the runs the tests compare bit for bit
    # repeat themselves then (see `one_thread`).
    cfg = load_yaml(Config, "debug", [f"data.root={debug_data}", f"train.cache_dir={tmp_path / 'features'}",
                                      "train.num_workers=0"])
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, build=None))


def _kill_after_checkpoint(cmd: list[str], out, step: int, env: dict[str, str] | None = None) -> None:
    """Run a `vlit train` command (in `env`, else this process's) and SIGKILL it as soon as its checkpoint of
    `step` is complete."""
    import os
    import signal
    import subprocess
    import time

    target = out / "checkpoints" / f"step-{step:08d}" / "trainer_state.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 180
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.exists(), "the run never wrote the checkpoint to be killed after"


@pytest.fixture
def kill_after_checkpoint():
    """`kill_after_checkpoint(cmd, out, step, env=None)`: the kill -9 of the resume tests."""
    return _kill_after_checkpoint


@pytest.fixture
def one_thread() -> dict[str, str]:
    """The environment of the training processes whose weights a resume test compares bit for bit: one thread.

    With DataLoader workers beside a two-thread training process on a 2-core machine, torch's CPU kernels
    occasionally round differently from run to run: two *uninterrupted* runs of the same command differed
    after step 1 in 1-3 runs of 5 there (a rotary `cos` off by 1.5e-4 in the second OpenMP thread's half of the
    batch, its `sin` and the same `cos` recomputed in the same process exact), and never in 16 runs on one
    thread. What resuming must reproduce -- the batches, the RNG, the optimizer -- is what the tests check;
    that noise is not."""
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1"}

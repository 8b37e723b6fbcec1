"""Two CPU processes under `accelerate launch` (DDP over gloo) train the debug recipes (a decoder-only LLM and
an encoder-decoder T5) and agree on weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["debug", "debug-t5"])
def test_two_processes_agree_on_the_weights(train_config, tmp_path, recipe):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    config = Path(__file__).resolve().parents[2] / "configs" / "accelerate" / "cpu-ddp.yaml"
    cmd = [accelerate, "launch", "--config_file", str(config), "--main_process_port", "29533",
           str(Path(__file__).with_name("ddp_train.py")), str(tmp_path), recipe, f"data.root={train_config.data.root}",
           "data.build=null", f"train.cache_dir={train_config.train.cache_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # They trained: the connector moved away from its initial values.
    from vlit.config import Config, load_yaml
    from vlit.models.build import build_model

    fresh, _ = build_model(load_yaml(Config, recipe).model)
    start = fresh.state_dict()
    assert any(not torch.equal(start[k], a[k]) for k in a if k.startswith("connector."))

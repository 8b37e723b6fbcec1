"""`vlit train debug-t5`: an encoder-decoder LLM (a tiny random T5) trains through every stage kind (connector,
connector + LoRA on T5's attention, per-token and per-sample loss), with the feature cache, and a run killed
with SIGKILL and resumed ends with exactly the weights of the uninterrupted run."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from vlit.config import Config, load_yaml
from vlit.training.loop import Trainer


@pytest.fixture
def t5_config(debug_data, tmp_path) -> Config:
    cfg = load_yaml(Config, "debug-t5", [f"data.root={debug_data}", f"train.cache_dir={tmp_path / 'features'}"])
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, build=None))


def _command(cfg, out, *extra):
    return [sys.executable, "-m", "vlit.cli", "train", "debug-t5", f"data.root={cfg.data.root}", "data.build=null",
            f"train.cache_dir={cfg.train.cache_dir}", "--out", str(out), *extra]


@pytest.mark.slow
def test_debug_t5_killed_and_resumed_is_bit_identical(t5_config, tmp_path, kill_after_checkpoint, one_thread):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(_command(t5_config, reference), check=True, capture_output=True, env=one_thread)
    # Killed mid stage 2 (LoRA, per-sample loss).
    kill_after_checkpoint(_command(t5_config, resumed), resumed, 9, env=one_thread)
    subprocess.run(_command(t5_config, resumed, "--resume"), check=True, capture_output=True, env=one_thread)
    expected = load_file(reference / "model" / "model.safetensors")
    got = load_file(resumed / "model" / "model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_the_stages_train_what_they_name(t5_config, tmp_path):
    final = Trainer(t5_config, tmp_path / "run").run()
    weights = load_file(final / "model.safetensors")
    assert any("lora_A" in k and ".q." in k for k in weights)
    assert any(k.startswith("connector.qformer.") for k in weights)
    rows = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"stage": "instruct"' in rows and "nan" not in rows.lower()

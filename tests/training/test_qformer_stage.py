"""A `qformer` stage (BLIP-2's first stage) in the one training loop: configured and validated like any stage,
never runs the LLM, logs each loss, saves the plain model, and resumes exactly from a mid-stage checkpoint."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from vlit.config import Config, ConfigError, load_yaml
from vlit.models.build import build_model
from vlit.training import loop
from vlit.training.checkpoint import HEADS_FILE
from vlit.training.loop import Trainer

TINY_QFORMER = ("model.connector={kind: qformer, init: random, num_queries: 4, hidden_size: 32, num_layers: 2, "
                "num_heads: 4, intermediate_size: 64}")


def _config(train_config, *overrides: str, only_first: bool = False) -> Config:
    """The debug recipe (its data and feature cache) with a tiny Q-Former; its first stage of kind `qformer`."""
    cfg = load_yaml(Config, "debug", [TINY_QFORMER, "stages.0.objective=qformer", f"data.root={train_config.data.root}",
                                      "data.build=null", f"train.cache_dir={train_config.train.cache_dir}",
                                      "train.num_workers=0", *overrides])
    return dataclasses.replace(cfg, stages=cfg.stages[:1]) if only_first else cfg


@pytest.mark.parametrize("overrides, message", [
    (["stages.0.train=[connector, lora]", "stages.0.lr={connector: 1.0e-3, lora: 1.0e-3}"],
     r"stages\[0\].train: a stage of objective 'qformer' trains only \[connector\]"),
    (["model.connector={kind: mlp}"], r"stages\[0\].objective: 'qformer' trains a Q-Former connector; "
                                      "model.connector.kind is 'mlp'"),
    ([TINY_QFORMER[:-1] + ", instruction_aware: false}"],
     r"stages\[0\].objective: 'qformer' needs model.connector.instruction_aware: true"),
    (["stages.1.qformer={losses: [itc]}"], r"stages\[1\].qformer: only a stage of objective 'qformer'"),
    (["stages.0.qformer={losses: [itc, mlm]}"], r"stages\[0\].qformer.losses"),
])
def test_a_qformer_stage_is_validated_naming_the_field(train_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        _config(train_config, *overrides)


def test_defaults_are_blip2s(train_config):
    stage = _config(train_config).stages[0]
    assert stage.qformer.losses == ["itc", "itm", "itg"] and stage.qformer.embed_dim == 256
    assert stage.qformer.max_text_tokens == 32


def test_qformer_stage_then_llm_stage_end_to_end(train_config, tmp_path, monkeypatch):
    """The LLM never runs in the `qformer` stage (its LoRA adapters train only in the next one, so every LLM call
    must see them trainable); the model after the stage is the plain model, `language_projection` untouched."""
    cfg = _config(train_config, "train.keep_last=4")
    built = {}
    calls: list[bool] = []

    def build_and_watch(model_cfg):
        model, processor = build_model(model_cfg)
        built["start"] = {k: v.clone() for k, v in model.state_dict().items()}
        lora = [p for n, p in model.llm.named_parameters() if "lora_" in n]
        model.llm.register_forward_pre_hook(lambda *_: calls.append(all(p.requires_grad for p in lora)))
        built["model"] = model
        return model, processor

    monkeypatch.setattr(loop, "build_model", build_and_watch)
    out = tmp_path / "run"
    Trainer(cfg, out).run()
    assert calls and all(calls), "the LLM ran during the qformer stage"

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    qformer_rows = [r for r in rows if r.get("stage") == "pretrain" and "loss" in r]
    assert qformer_rows and all({"itc", "itm", "itg"} <= set(r) for r in qformer_rows)
    assert all(r["loss"] == pytest.approx(r["itc"] + r["itm"] + r["itg"], abs=1e-4) for r in qformer_rows)
    assert all("itc" not in r for r in rows if r.get("stage") == "instruct")
    assert set(qformer_rows[0]["lr"]) == {"connector", "connector/no_decay", "heads", "heads/no_decay"}

    # The stage's checkpoints hold the heads beside the model; the next stage's and the model do not.
    checkpoints = out / "checkpoints"
    assert (checkpoints / "step-00000003" / HEADS_FILE).is_file()
    assert (checkpoints / "step-00000006" / HEADS_FILE).is_file()
    assert not (checkpoints / "step-00000009" / HEADS_FILE).exists()
    after = load_file(checkpoints / "step-00000006" / "model" / "model.safetensors")
    start = built["start"]
    assert after.keys() == start.keys()  # no head in the model
    changed = {k for k in after if not torch.equal(after[k], start[k])}
    assert any(k.startswith("connector.qformer.") for k in changed)
    assert {"connector.query_tokens", "connector.ln_vision.weight"} <= changed
    assert not [k for k in changed if not k.startswith("connector.") or "language_projection" in k]


def test_a_qformer_stage_resumes_exactly_from_a_mid_stage_checkpoint(train_config, tmp_path):
    cfg = _config(train_config, "stages.0.steps=4", "train.save_every=2", "train.keep_last=3", only_first=True)
    reference = tmp_path / "reference"
    Trainer(cfg, reference).run()
    # What a run killed after its step-2 checkpoint leaves behind.
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(reference / "checkpoints" / "step-00000002", resumed / "checkpoints" / "step-00000002")
    Trainer(cfg, resumed).run(resume=True)
    expected, got = (load_file(run / "model" / "model.safetensors") for run in (reference, resumed))
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    metrics = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    reference_rows = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [r["itc"] for r in metrics if r.get("step") == 4] == [r["itc"] for r in reference_rows
                                                                 if r.get("step") == 4]

    # Without its heads the checkpoint cannot continue the stage, and says so.
    again = tmp_path / "again"
    shutil.copytree(resumed / "checkpoints" / "step-00000002", again / "checkpoints" / "step-00000002")
    (again / "checkpoints" / "step-00000002" / HEADS_FILE).unlink()
    from vlit.errors import VlitError

    with pytest.raises(VlitError, match=f"{HEADS_FILE}: missing"):
        Trainer(cfg, again).run(resume=True)

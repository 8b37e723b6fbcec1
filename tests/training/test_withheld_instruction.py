"""A stage that withholds the instruction from an instruction-aware Q-Former (`qformer_reads_instruction: false`,
BLIP-2's LLM-facing stage): its Q-Former sees zero instruction tokens while the LLM reads the whole prompt; the next
stage's Q-Former reads the instruction again."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from vlit.config import Config, ConfigError, load_yaml
from vlit.models.build import build_model
from vlit.training import loop
from vlit.training.loop import Trainer

TINY_QFORMER = ("model.connector={kind: qformer, init: random, num_queries: 4, hidden_size: 32, num_layers: 2, "
                "num_heads: 4, intermediate_size: 64}")


def _config(train_config, *overrides: str) -> Config:
    return load_yaml(Config, "debug", [TINY_QFORMER, f"data.root={train_config.data.root}", "data.build=null",
                                       f"train.cache_dir={train_config.train.cache_dir}", "train.num_workers=0",
                                       *overrides])


@pytest.mark.parametrize("overrides, message", [
    (["model.connector={kind: mlp}", "stages.0.qformer_reads_instruction=false"],
     r"stages\[0\].qformer_reads_instruction: false withholds the instruction from an instruction-aware Q-Former"),
    ([TINY_QFORMER[:-1] + ", instruction_aware: false}", "stages.1.qformer_reads_instruction=false"],
     r"stages\[1\].qformer_reads_instruction"),
    (["stages.0.objective=qformer", "stages.0.qformer_reads_instruction=false"],
     r"qformer_reads_instruction: a stage of objective 'qformer' reads each row's answer"),
])
def test_withholding_needs_an_instruction_aware_qformer_and_an_lm_stage(train_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        _config(train_config, *overrides)


def test_the_qformer_reads_no_instruction_in_the_stage_and_the_llm_reads_the_prompt(train_config, tmp_path,
                                                                                     monkeypatch):
    cfg = _config(train_config, "stages.0.qformer_reads_instruction=false", "train.keep_last=4")
    seen: list[tuple[int, int]] = []  # (instruction tokens given to the Q-Former, LLM prompt tokens) per forward
    built = {}

    def build_and_watch(model_cfg):
        model, processor = build_model(model_cfg)
        built["start"] = {k: v.clone() for k, v in model.state_dict().items()}
        prompt = {}
        model.llm.register_forward_pre_hook(lambda _m, _a, kw: prompt.update(n=int(kw["attention_mask"].sum())),
                                            with_kwargs=True)
        model.connector.register_forward_pre_hook(lambda _m, args: seen.append((int(args[1].mask.sum()), 0)))
        model.llm.register_forward_hook(lambda *_: seen.__setitem__(-1, (seen[-1][0], prompt["n"])))
        return model, processor

    monkeypatch.setattr(loop, "build_model", build_and_watch)
    out = tmp_path / "run"
    Trainer(cfg, out).run()
    forwards = [s.steps * s.grad_accum for s in cfg.stages]
    withheld, read = seen[:forwards[0]], seen[forwards[0]:]
    assert len(read) == forwards[1]
    assert all(q == 0 and llm > 0 for q, llm in withheld)
    assert all(q > 0 for q, _ in read)
    # After the withholding stage the Q-Former's text path (word embeddings) is as it started; queries moved.
    after = load_file(out / "checkpoints" / f"step-{cfg.stages[0].steps:08d}" / "model" / "model.safetensors")
    start = built["start"]
    words = "connector.qformer.embeddings.word_embeddings.weight"
    assert torch.equal(after[words], start[words])
    assert not torch.equal(after["connector.query_tokens"], start["connector.query_tokens"])
    final = load_file(out / "model" / "model.safetensors")
    assert not torch.equal(final[words], start[words])

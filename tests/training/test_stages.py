from __future__ import annotations

import dataclasses

import pytest
import torch

from vlit.config import StageConfig
from vlit.models.build import build_model
from vlit.models.parts import count_parameters, part_of
from vlit.training.stages import apply_stage, build_optimizer, param_groups
from vlit.training.stream import StageStream


def _stage(cfg, train, lr=1e-2):
    base = cfg.stages[1]
    return dataclasses.replace(base, train=train, lr=dict.fromkeys(train, lr))


@pytest.mark.parametrize("train", [["connector"], ["connector", "lora"], ["connector", "llm"], ["vision"],
                                   ["vision", "connector", "llm"]])
def test_apply_stage_freezes_exactly_the_named_parts(train_config, train):
    model, _ = build_model(train_config.model)
    counts = apply_stage(model, _stage(train_config, train))
    for part, (total, trainable) in counts.items():
        assert trainable == (total if part in train else 0), part
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(counts[p][0] for p in train)
    # Frozen modules run in eval mode (no dropout, frozen BatchNorm statistics); trained ones in train mode.
    assert model.vision.training == ("vision" in train)
    assert model.llm.training == ("llm" in train or "lora" in train)


def test_param_groups_rates_and_no_decay_on_norms_and_biases(train_config):
    model, _ = build_model(train_config.model)
    stage = dataclasses.replace(_stage(train_config, ["connector", "llm"]), lr={"connector": 1e-3, "llm": 2e-5},
                                weight_decay=0.1)
    apply_stage(model, stage)
    groups = param_groups(model, stage)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in groups:
        for p in group["params"]:
            assert group["lr"] == stage.lr[part_of(names[id(p)])]
            assert group["weight_decay"] == (0.1 if p.ndim >= 2 else 0.0)
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)


def _fixed_batch(train_config, processor):
    stream = StageStream(train_config.stages[1], train_config.data.root, processor, seed=0)
    batch, _ = next(iter(stream))
    return batch


def _loss(model, batch):
    return model(**batch.model_inputs()).loss


@pytest.mark.parametrize("train", [["connector"], ["connector", "lora"]])
def test_one_step_lowers_the_loss_on_a_fixed_batch(train_config, train):
    model, processor = build_model(train_config.model)
    stage = _stage(train_config, train, lr=5e-3)
    apply_stage(model, stage)
    batch = _fixed_batch(train_config, processor)
    optimizer = build_optimizer(model, stage)
    before = _loss(model, batch)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = _loss(model, batch)
    assert after < before


def test_lora_stage_trains_only_adapters(train_config):
    model, processor = build_model(train_config.model)
    stage = _stage(train_config, ["lora"], lr=1e-2)
    apply_stage(model, stage)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(model, stage)
    for _ in range(2):
        _loss(model, _fixed_batch(train_config, processor)).backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {part_of(k) for k, v in model.state_dict().items() if not torch.equal(v, start[k])}
    assert changed == {"lora"}
    assert count_parameters(model)["lora"][1] > 0


def test_stage_config_validation():
    from vlit.config import ConfigError, MixtureConfig
    from vlit.config.data import DatasetConfig

    data = MixtureConfig(datasets=[DatasetConfig(name="a", path="a.json")])
    with pytest.raises(ConfigError, match="lr: no learning rate for trained part 'lora'"):
        StageConfig(name="s", data=data, train=["connector", "lora"], lr={"connector": 1e-3}, steps=1)
    with pytest.raises(ConfigError, match="'llm' .* or 'lora', not both"):
        StageConfig(name="s", data=data, train=["llm", "lora"], lr={"llm": 1.0, "lora": 1.0}, steps=1)
    with pytest.raises(ConfigError, match="exactly one of steps or epochs"):
        StageConfig(name="s", data=data, train=["connector"], lr={"connector": 1.0})


@pytest.mark.parametrize("supported, expected", [(True, "bf16"), (False, "no")])
def test_bf16_falls_back_to_float32_on_a_cpu_without_bf16_matmuls(train_config, monkeypatch, supported, expected):
    from vlit.training.accelerator import make_accelerator

    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: supported)
    cfg = dataclasses.replace(train_config, train=dataclasses.replace(train_config.train, mixed_precision="bf16"))
    assert make_accelerator(cfg).mixed_precision == expected

"""`vlit.config.model`: the model parts' configs validate themselves and name the bad field."""

from __future__ import annotations

import pytest

from vlit.config import (
    ConfigError,
    LLMConfig,
    LoRAConfig,
    MergeConnectorConfig,
    ModelConfig,
    QFormerConnectorConfig,
    VisionConfig,
    from_dict,
)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: VisionConfig(source="packaged", name="resnet"), "packaged vision encoder 'resnet' unknown"),
    (lambda: VisionConfig(source="random"), "random_config: required"),
    (lambda: VisionConfig(image_size=8), "image_size: 8 is too small"),
    (lambda: MergeConnectorConfig(merge=0), "merge: must be >= 1"),
    (lambda: QFormerConnectorConfig(init="random", hidden_size=100, num_heads=12), "does not divide"),
    (lambda: QFormerConnectorConfig(num_queries=0), "num_queries: must be >= 1"),
    (lambda: QFormerConnectorConfig(cross_attention_frequency=0), "cross_attention_frequency"),
    (lambda: QFormerConnectorConfig(max_instruction_tokens=513), "max_instruction_tokens: must be in 1..512"),
    (lambda: LLMConfig(source="packaged", name="llama"), "packaged LLM 'llama' unknown"),
    (lambda: LLMConfig(source="random"), "random_config: required"),
    (lambda: LoRAConfig(r=0), "r: must be >= 1"),
    (lambda: LoRAConfig(target_modules=[]), "target_modules: name at least one"),
])
def test_invalid_values_are_refused_naming_the_field(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_defaults_are_the_embedded_default_parts():
    cfg = ModelConfig()
    assert (cfg.vision.source, cfg.vision.name) == ("packaged", "efficientnet-lite0")
    assert (cfg.llm.source, cfg.llm.name) == ("packaged", "smollm2-135m-instruct")
    assert cfg.connector.kind == "mlp" and cfg.lora is None


def test_a_random_qformer_may_take_any_size_that_divides():
    cfg = from_dict(ModelConfig, {"connector": {"kind": "qformer", "init": "random", "hidden_size": 64,
                                                "num_heads": 4, "num_layers": 2}})
    assert cfg.connector.hidden_size == 64 and cfg.connector.num_layers == 2

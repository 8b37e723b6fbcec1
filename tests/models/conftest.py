"""Model fixtures: tiny InstructBLIP and BLIP-2 configs (what the exports and `vlit export` take)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from vlit.config import LLMConfig, LoRAConfig, ModelConfig, QFormerConnectorConfig, VisionConfig

TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "image_size": 32, "patch_size": 8}
OPT = LLMConfig(source="random", name="opt",
                random_config={"hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "vocab_size": 49153, "max_position_embeddings": 1024})


@pytest.fixture(scope="session")
def blip_model_config(debug_config) -> Callable[[bool], ModelConfig]:
    """`make(instruction_aware)`: InstructBLIP in miniature (random EVA tower, Q-Former and the debug Llama), or
    BLIP-2 in miniature on an OPT, its classic LLM (tied embeddings). LoRA on both, merged on export."""

    def make(instruction_aware: bool) -> ModelConfig:
        qformer = QFormerConnectorConfig(num_queries=4, init="random", hidden_size=32, num_layers=2, num_heads=4,
                                         intermediate_size=64, cross_attention_frequency=1,
                                         instruction_aware=instruction_aware, vision_norm_eps=1e-6)
        vision = VisionConfig(source="random", name="instructblip_vision_model" if instruction_aware else
                              "blip_2_vision_model", random_config=TOWER, feature_layer=-1, drop_cls=False)
        return replace(debug_config.model, vision=vision, connector=qformer, template="instructblip",
                       prompt_style="instructblip", llm=debug_config.model.llm if instruction_aware else OPT,
                       lora=LoRAConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))

    return make

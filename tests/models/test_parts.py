"""`vlit.models.parts`: a model's weights as the four parts stages, checkpoints and counts speak of."""

from __future__ import annotations

import pytest

from vlit.models.parts import PARTS, count_parameters, part_of, part_state, set_trainable, trainable_parts


@pytest.mark.parametrize(("name", "part"), [
    ("vision.model.embeddings.patch_embedding.weight", "vision"),
    ("connector.linear_1.weight", "connector"),
    ("llm.model.layers.0.self_attn.q_proj.weight", "llm"),
    ("llm.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", "lora"),
])
def test_every_name_belongs_to_one_part(name, part):
    assert part_of(name) == part


def test_state_of_parts_and_counts(debug_model):
    model, _ = debug_model
    connector = part_state(model, ["connector"])
    assert connector and all(part_of(k) == "connector" for k in connector)
    assert set(part_state(model, ["connector", "lora"])) >= set(connector)
    counts = count_parameters(model)
    assert set(counts) == set(PARTS)
    # Each parameter is counted once, in its part (tied embeddings are one parameter).
    assert sum(total for total, _ in counts.values()) == sum(p.numel() for p in model.parameters())


def test_set_trainable_sets_grads_and_modes(debug_model):
    model, _ = debug_model
    set_trainable(model, {"connector", "lora"})
    assert trainable_parts(model) == ["connector", "lora"]
    assert model.connector.training and model.llm.training and not model.vision.training
    set_trainable(model, {"vision"})
    assert trainable_parts(model) == ["vision"]
    assert model.vision.training and not model.connector.training and not model.llm.training

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vlit.data.conversation import Conversation
from vlit.errors import VlitError
from vlit.models.saving import load_model, save_model


def test_save_load_gives_identical_logits(tmp_path, debug_model, red_image):
    model, processor = debug_model
    with torch.no_grad():
        for p in model.connector.parameters():
            p.add_(torch.randn_like(p))  # "trained": differs from a fresh build
    save_model(model, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    # Random parts cannot be rebuilt from a hub name, so they are stored; so are the connector and LoRA.
    assert meta["stored_parts"] == ["vision", "connector", "llm", "lora"]
    assert not list(tmp_path.glob("ckpt/*.bin")) and not list(tmp_path.glob("ckpt/*.pt"))
    loaded, loaded_processor = load_model(tmp_path / "ckpt")
    batch = processor([Conversation.single("What colour?", "Red.", image=red_image)])
    inputs = {k: getattr(batch, k) for k in ("input_ids", "attention_mask", "pixel_values", "labels")}
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)
    assert loaded_processor.render(Conversation.single("x")) == processor.render(Conversation.single("x"))


def test_only_trained_and_unbuildable_parts_are_stored(tmp_path, debug_config):
    from dataclasses import replace

    from vlit.config import LLMConfig
    from vlit.models.build import build_model

    model, _ = build_model(replace(debug_config.model, llm=LLMConfig()))  # packaged SmolLM2: rebuildable
    save_model(model, tmp_path / "ckpt")
    keys = load_file(tmp_path / "ckpt" / "model.safetensors").keys()
    assert {"lora" if "lora_" in k else k.split(".")[0] for k in keys} == {"vision", "connector", "lora"}
    model.llm.requires_grad_(True)  # a stage that trains the LLM stores it too
    save_model(model, tmp_path / "ckpt2")
    meta = json.loads((tmp_path / "ckpt2" / "config.json").read_text())
    assert meta["stored_parts"] == ["vision", "connector", "llm", "lora"]


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(VlitError, match="not a vlit checkpoint"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(VlitError, match="config.json: not valid JSON"):
        load_model(tmp_path)


def test_an_older_checkpoint_keeps_its_prompt_style(tmp_path):
    from vlit.config import ModelConfig, to_dict
    from vlit.models.saving import read_checkpoint_config

    model = to_dict(ModelConfig())
    del model["prompt_style"]  # written before the model config held it: a top-level guess instead
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "prompt_style": "minigptv2"}))
    cfg, meta = read_checkpoint_config(tmp_path)
    assert cfg.prompt_style == "minigptv2"
    model["prompt_style"] = "instructblip"  # a config that states it wins
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "prompt_style": "minigptv2"}))
    assert read_checkpoint_config(tmp_path)[0].prompt_style == "instructblip"


def test_checkpoint_holds_its_prompt_as_a_jinja_chat_template(tmp_path, checkpoint, debug_model, debug_config):
    """`chat_template.jinja` renders transformers-style messages as the model's processor renders them, its
    configured system prompt included."""
    from dataclasses import replace

    from vlit.models.saving import write_checkpoint

    _, processor = debug_model
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    conversation = Conversation.single("What colour?", image="x.png")

    def render(folder):
        jinja = (folder / "chat_template.jinja").read_text(encoding="utf-8")
        return processor.tokenizer.apply_chat_template(messages, chat_template=jinja, tokenize=False,
                                                       add_generation_prompt=True)

    assert render(checkpoint) == processor.render(conversation, add_generation_prompt=True)
    cfg = replace(debug_config.model, template="vicuna_v1", system_prompt="Réponds brièvement.")
    write_checkpoint(tmp_path / "vicuna", cfg, {}, [])
    assert render(tmp_path / "vicuna") == "Réponds brièvement. USER: <image>\nWhat colour? ASSISTANT:"

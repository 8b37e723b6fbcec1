"""An `mlp` model with a CLIP tower is LLaVA-1.5: same logits and greedy tokens as transformers' own
LlavaForConditionalGeneration holding the same weights, in memory and after export; the exported processor's
chat template and tokenization give vlit's prompt and ids, and transformers' pipeline runs on the folder."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import AutoProcessor, LlavaForConditionalGeneration, pipeline

from vlit.data.conversation import Conversation
from vlit.errors import VlitError
from vlit.models.build import build_model
from vlit.models.export import export_llava, export_model, llava_config, llava_state_dict


@pytest.fixture
def prompts(red_image):
    from PIL import Image

    blue = Image.new("RGB", (25, 60), (10, 30, 200))
    return [Conversation.single("What colour is this?", image=red_image),
            Conversation.single("And this one?", image=blue)]


def _compare(model, llava, batch):
    inputs = {k: getattr(batch, k) for k in ("input_ids", "attention_mask", "pixel_values")}
    with torch.no_grad():
        ours = model(**inputs).logits
        theirs = llava(**inputs).logits
    mask = batch.attention_mask.bool()
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-4, rtol=0)
    kwargs = {"max_new_tokens": 8, "do_sample": False, "suppress_tokens": [model.image_token_id]}
    our_tokens = model.generate(**inputs, **kwargs)
    their_tokens = llava.generate(**inputs, **kwargs)[:, inputs["input_ids"].shape[1]:]
    assert our_tokens.tolist() == their_tokens.tolist()


def test_same_logits_and_greedy_tokens_as_llava(debug_model, prompts):
    model, processor = debug_model
    llava = LlavaForConditionalGeneration(llava_config(model)).eval()
    missing, unexpected = llava.load_state_dict(llava_state_dict(model), strict=False)
    assert not unexpected and not [k for k in missing if k != "lm_head.weight" or not llava.config.tie_word_embeddings]
    _compare(model, llava, processor(prompts, add_generation_prompt=True))


def test_exported_folder_loads_in_transformers_with_same_outputs(tmp_path, debug_model, prompts):
    model, processor = debug_model
    folder = export_llava(model, processor, tmp_path / "llava")
    llava = LlavaForConditionalGeneration.from_pretrained(folder).eval()
    batch = processor(prompts, add_generation_prompt=True)
    _compare(model, llava, batch)
    # The exported processor reproduces vlit's own inputs: placeholder expansion and pixels.
    hf = AutoProcessor.from_pretrained(folder)
    text = processor.render(prompts[0], add_generation_prompt=True)
    enc = hf(images=prompts[0].images[0], text=text, return_tensors="pt")
    one = processor([prompts[0]], add_generation_prompt=True)
    assert enc["input_ids"].tolist() == one.input_ids.tolist()
    torch.testing.assert_close(enc["pixel_values"], one.pixel_values, atol=1e-5, rtol=0)


def _messages(image, question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": question}]}]


@pytest.mark.parametrize(("template", "system"), [("chatml", None), ("vicuna_v1", None),
                                                  ("vicuna_v1", "Answer briefly."), ("llm", None)])
def test_exported_chat_template_gives_vlits_prompt_and_ids(tmp_path, debug_config, red_image, template, system):
    model, processor = build_model(replace(debug_config.model, template=template, system_prompt=system))
    folder, model_class = export_model(model, processor, tmp_path / "llava")
    assert model_class == "LlavaForConditionalGeneration"
    hf = AutoProcessor.from_pretrained(folder)
    conversation = Conversation.single("What colour is this?", image=red_image)
    prompt = hf.apply_chat_template(_messages(red_image, "What colour is this?"), add_generation_prompt=True)
    assert prompt == processor.render(conversation, add_generation_prompt=True)
    enc = hf(images=red_image, text=prompt, return_tensors="pt")
    assert enc["input_ids"].tolist() == processor([conversation], add_generation_prompt=True).input_ids.tolist()


def test_transformers_pipeline_chats_with_the_exported_folder(tmp_path, debug_model, red_image):
    model, processor = debug_model
    folder = export_llava(model, processor, tmp_path / "llava")
    pipe = pipeline("image-text-to-text", model=str(folder))
    out = pipe(text=_messages(red_image, "What colour is this?"), max_new_tokens=3)
    answer = out[0]["generated_text"][-1]
    assert answer["role"] == "assistant" and isinstance(answer["content"], str) and answer["content"]


def test_export_refuses_non_llava_models(debug_config):
    from vlit.config import MergeConnectorConfig

    model, processor = build_model(replace(debug_config.model, connector=MergeConnectorConfig(merge=4)))
    with pytest.raises(VlitError, match="only `mlp` connector models"):
        llava_config(model)
    with pytest.raises(VlitError, match="no class for a 'merge' connector"):
        export_model(model, processor, "unused")


def test_export_refuses_what_llava_computes_differently(tmp_path, debug_config):
    model, processor = build_model(replace(debug_config.model, template="instructblip"))
    with pytest.raises(VlitError, match="template: 'instructblip' puts the image tokens before BOS"):
        export_llava(model, processor, tmp_path / "llava")
    vision = replace(debug_config.model.vision, post_layernorm=True)
    model, _ = build_model(replace(debug_config.model, vision=vision))
    with pytest.raises(VlitError, match="vision.post_layernorm"):
        llava_config(model)

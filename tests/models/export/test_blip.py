"""A `qformer` model with BLIP-2's vision tower exports to transformers' InstructBlipForConditionalGeneration
(instruction-aware) or Blip2ForConditionalGeneration: the folder loads with every weight in place, its processor
reproduces vlit's ids, pixels and Q-Former instruction, and the logits and greedy tokens are vlit's."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import torch
from transformers import AutoProcessor, Blip2ForConditionalGeneration, InstructBlipForConditionalGeneration, pipeline

from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.errors import VlitError
from vlit.models.build import build_model
from vlit.models.export import blip_config, export_model
from vlit.models.published.importing import import_checkpoint
from vlit.models.saving import load_model

QUESTION = "What colour is this?"
CLASSES = {True: InstructBlipForConditionalGeneration, False: Blip2ForConditionalGeneration}


@pytest.fixture(scope="module", params=[True, False], ids=["instructblip", "blip2"])
def exported(request, blip_model_config, tmp_path_factory, train_lora):
    """(model, processor, folder, transformers class) with trained-looking LoRA adapters (B != 0)."""
    model, processor = build_model(blip_model_config(request.param))
    train_lora(model.llm)
    model.eval()
    folder, model_class = export_model(model, processor, tmp_path_factory.mktemp("blip") / "hf")
    assert model_class == CLASSES[request.param].__name__
    return model, processor, folder, CLASSES[request.param]


def _inputs(exported, image):
    model, processor, folder, _ = exported
    conversation = Conversation.single(QUESTION, image=image)
    hf = AutoProcessor.from_pretrained(folder)
    return processor([conversation], add_generation_prompt=True), hf(images=image, text=QUESTION,
                                                                      return_tensors="pt")


def test_folder_loads_with_every_weight_in_place(exported):
    *_, folder, model_class = exported
    _, info = model_class.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info


def test_processor_reproduces_vlits_ids_pixels_and_instruction(exported, red_image):
    model, processor, folder, model_class = exported
    ours, theirs = _inputs(exported, red_image)
    assert theirs["input_ids"].tolist() == ours.input_ids.tolist()
    assert theirs["input_ids"][0, : model.num_image_tokens].eq(model.image_token_id).all()
    torch.testing.assert_close(theirs["pixel_values"], ours.pixel_values, atol=1e-5, rtol=0)
    if model_class is InstructBlipForConditionalGeneration:
        assert theirs["qformer_input_ids"].tolist() == ours.side["instruction"].ids.tolist()
    # The chat template prints the text only: transformers' BLIP processors put the query tokens before BOS.
    hf = AutoProcessor.from_pretrained(folder)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = hf.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    rendered = processor.render(Conversation.single(QUESTION, image=red_image), add_generation_prompt=True)
    assert IMAGE_TOKEN + prompt == rendered == IMAGE_TOKEN + QUESTION


def test_same_logits_and_greedy_tokens_as_transformers(exported, red_image):
    model, _, folder, model_class = exported
    hf_model = model_class.from_pretrained(folder).eval()
    ours, theirs = _inputs(exported, red_image)
    inputs = {"input_ids": ours.input_ids, "attention_mask": ours.attention_mask, "pixel_values": ours.pixel_values,
              "side": ours.side}
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, hf_model(**theirs).logits, atol=1e-5, rtol=0)
    kwargs = {"max_new_tokens": 6, "do_sample": False, "suppress_tokens": [model.image_token_id]}
    our_tokens = model.generate(**inputs, **kwargs)
    their_tokens = hf_model.generate(**theirs, **kwargs)[:, theirs["input_ids"].shape[1]:]
    assert our_tokens.tolist() == their_tokens.tolist()


def test_transformers_pipeline_runs_on_the_folder(exported, red_image):
    """Text and image run as they are. Chat messages need the chat template named: transformers' BLIP-2 and
    InstructBLIP processors drop theirs on loading (their constructors do not pass it on); the tokenizer keeps it."""
    *_, folder, _ = exported
    pipe = pipeline("image-text-to-text", model=str(folder))
    out = pipe(images=red_image, text=QUESTION, max_new_tokens=3)
    assert isinstance(out[0]["generated_text"], str)
    assert pipe.processor.chat_template is None
    content = [{"type": "image", "image": red_image}, {"type": "text", "text": QUESTION}]
    messages = [{"role": "user", "content": content}]
    out = pipe(text=messages, max_new_tokens=3, chat_template=pipe.processor.tokenizer.chat_template)
    answer = out[0]["generated_text"][-1]
    assert answer["role"] == "assistant" and isinstance(answer["content"], str)


def test_vlit_import_of_the_exported_folder_gives_back_the_model(exported, red_image, tmp_path):
    """Export and `vlit import` are inverses."""
    model, processor, folder, _ = exported
    import_checkpoint(str(folder), tmp_path / "vlit")
    loaded, loaded_processor = load_model(tmp_path / "vlit")
    conversation = Conversation.single(QUESTION, image=red_image)
    ours, theirs = processor([conversation], True), loaded_processor([conversation], True)
    assert theirs.input_ids.tolist() == ours.input_ids.tolist()
    inputs = {k: getattr(ours, k) for k in ("input_ids", "attention_mask", "pixel_values", "side")}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=1e-5, rtol=0)


def test_export_import_export_is_bit_identical(exported, tmp_path):
    from safetensors.torch import load_file

    _, _, folder, _ = exported
    import_checkpoint(str(folder), tmp_path / "vlit")
    again, _ = export_model(*load_model(tmp_path / "vlit"), tmp_path / "again")
    first = {k: v for f in folder.glob("*.safetensors") for k, v in load_file(f).items()}
    second = {k: v for f in again.glob("*.safetensors") for k, v in load_file(f).items()}
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_layer_norm_epsilon_that_differs_is_reported(blip_model_config, caplog):
    cfg = blip_model_config(True)
    model, _ = build_model(replace(cfg, connector=replace(cfg.connector, vision_norm_eps=1e-5)))
    with caplog.at_level(logging.WARNING, logger="vlit.models.export.blip"):
        blip_config(model)
    assert "vision_norm_eps 1e-05 becomes post_layernorm with the tower's layer_norm_eps 1e-06" in caplog.text


@pytest.mark.parametrize(("change", "error"), [
    ({"feature_layer": -2}, "feature_layer -1, drop_cls false"),
    ({"drop_cls": True}, "feature_layer -1, drop_cls false"),
    ({"name": "clip_vision_model"}, "not CLIPVisionModel"),
])
def test_export_refuses_what_transformers_computes_differently(blip_model_config, change, error):
    cfg = blip_model_config(True)
    model, _ = build_model(replace(cfg, vision=replace(cfg.vision, **change)))
    with pytest.raises(VlitError, match=error):
        blip_config(model)


def test_export_refuses_a_template_with_images_after_bos(blip_model_config, tmp_path):
    model, processor = build_model(replace(blip_model_config(True), template="chatml"))
    with pytest.raises(VlitError, match="this model's is 'chatml'"):
        export_model(model, processor, tmp_path / "hf")


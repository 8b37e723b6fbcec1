"""A `qformer` model on a T5 (FlanT5's architecture) exports to transformers' InstructBlipForConditionalGeneration or
Blip2ForConditionalGeneration with the T5 `text_config` (`use_decoder_only_language_model: false`): the folder
loads with every weight in place, LoRA merged; its processor and tokenizer give vlit's encoder ids, Q-Former ids and
decoder labels; loss, logits and greedy tokens are vlit's; export -> import -> export is bit-identical."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor, Blip2ForConditionalGeneration, InstructBlipForConditionalGeneration

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.models.build import build_model
from vlit.models.export import export_model, merged_llm
from vlit.models.published.importing import import_checkpoint
from vlit.models.saving import load_model
from vlit.models.vlm import VisionLanguageModel

CLASSES = {True: InstructBlipForConditionalGeneration, False: Blip2ForConditionalGeneration}
PAIRS = [("What colour is this picture?", "red"), ("Describe the image briefly.", "a blue square in the picture")]


@pytest.fixture(scope="module", params=[True, False], ids=["instructblip-t5", "blip2-t5"])
def exported(request, blip_t5_model_config, tmp_path_factory, train_lora):
    """(model, processor, folder, transformers class) with trained-looking LoRA adapters (B != 0)."""
    model, processor = build_model(blip_t5_model_config(request.param))
    assert model.seq2seq
    train_lora(model.llm)
    model.eval()
    folder, model_class = export_model(model, processor, tmp_path_factory.mktemp("blip-t5") / "hf")
    assert model_class == CLASSES[request.param].__name__
    return model, processor, folder, CLASSES[request.param]


def _images(red_image):
    return [red_image, red_image.rotate(90)]


def test_folder_is_a_t5_blip_that_loads_with_every_weight_in_place(exported):
    model, _, folder, model_class = exported
    config = json.loads((folder / "config.json").read_text())
    assert config["use_decoder_only_language_model"] is False
    assert config["text_config"]["model_type"] == "t5" and config["image_token_index"] == model.image_token_id
    hf_model, info = model_class.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info
    # LoRA is merged: the folder's T5 holds no adapter and differs from the frozen base where LoRA sits.
    state = {k: v for f in folder.glob("*.safetensors") for k, v in load_file(f).items()}
    assert not any("lora" in k for k in state)
    base = model.llm.get_base_model().encoder.block[0].layer[0].SelfAttention.q.base_layer.weight
    assert not torch.equal(state["language_model.encoder.block.0.layer.0.SelfAttention.q.weight"], base)


def test_processor_and_tokenizer_reproduce_vlits_encoder_ids_instruction_and_labels(exported, red_image):
    model, processor, folder, model_class = exported
    images = _images(red_image)
    ours = processor([Conversation.single(q, a, image=im) for (q, a), im in zip(PAIRS, images, strict=True)])
    hf = AutoProcessor.from_pretrained(folder)
    theirs = hf(images=images, text=[q for q, _ in PAIRS], padding=True, return_tensors="pt")
    assert theirs["input_ids"].tolist() == ours.input_ids.tolist()
    assert theirs["attention_mask"].tolist() == ours.attention_mask.tolist()
    assert theirs["input_ids"][:, : model.num_image_tokens].eq(model.image_token_id).all()
    torch.testing.assert_close(theirs["pixel_values"], ours.pixel_values, atol=1e-5, rtol=0)
    if model_class is InstructBlipForConditionalGeneration:
        assert theirs["qformer_input_ids"].tolist() == ours.side["instruction"].ids.tolist()
    # T5's tokenizer appends `</s>`: to the encoder's text and to the decoder's answer.
    labels = hf.tokenizer([a for _, a in PAIRS], padding=True, return_tensors="pt")
    assert labels.input_ids.masked_fill(labels.attention_mask == 0, IGNORE_INDEX).tolist() == ours.labels.tolist()
    assert ours.labels[1, -1] == ours.input_ids[1, -1] == hf.tokenizer.eos_token_id


def test_same_loss_logits_and_greedy_tokens_as_transformers(exported, red_image):
    model, processor, folder, model_class = exported
    hf_model = model_class.from_pretrained(folder).eval()
    hf = AutoProcessor.from_pretrained(folder)
    images = _images(red_image)
    batch = processor([Conversation.single(q, a, image=im) for (q, a), im in zip(PAIRS, images, strict=True)])
    theirs = hf(images=images, text=[q for q, _ in PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model(**batch.model_inputs())
        out = hf_model(**theirs, labels=batch.labels)
    # With LoRA merged as the folder holds it, vlit computes transformers' function to the bit.
    merged = VisionLanguageModel(model.config, model.vision, model.connector, merged_llm(model), model.image_token_id)
    with torch.no_grad():
        exact = merged(**batch.model_inputs())
    torch.testing.assert_close(exact.logits, out.logits, atol=0, rtol=0)
    # With adapters applied, not merged, the sums round differently: 1.3e-5 apart at most, where the random T5's
    # head (its N(0, 1) embeddings: transformers ties a new T5's) gives logits up to |40|; a float32 ulp there is 4e-6.
    torch.testing.assert_close(ours.logits, out.logits, atol=1e-6 * float(out.logits.abs().max()), rtol=0)
    torch.testing.assert_close(ours.loss, out.loss, atol=1e-5, rtol=0)
    prompts = processor([Conversation.single(q, image=im) for (q, _), im in zip(PAIRS, images, strict=True)],
                        add_generation_prompt=True)
    kwargs = {"max_new_tokens": 6, "do_sample": False, "suppress_tokens": [model.image_token_id]}
    our_tokens = model.generate(prompts.input_ids, prompts.attention_mask, prompts.pixel_values, side=prompts.side,
                                **kwargs)
    their_tokens = hf_model.generate(**theirs, **kwargs)
    assert our_tokens.tolist() == their_tokens[:, 1:].tolist()


def test_export_import_export_is_bit_identical(exported, red_image, tmp_path):
    model, processor, folder, _ = exported
    import_checkpoint(str(folder), tmp_path / "vlit")
    loaded, loaded_processor = load_model(tmp_path / "vlit")
    conversation = Conversation.single(*PAIRS[0], image=red_image)
    ours, theirs = processor([conversation]), loaded_processor([conversation])
    assert theirs.input_ids.tolist() == ours.input_ids.tolist() and theirs.labels.tolist() == ours.labels.tolist()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**theirs.model_inputs()).loss, model(**ours.model_inputs()).loss,
                                   atol=1e-5, rtol=0)
    again, _ = export_model(loaded, loaded_processor, tmp_path / "again")
    first = {k: v for f in folder.glob("*.safetensors") for k, v in load_file(f).items()}
    second = {k: v for f in again.glob("*.safetensors") for k, v in load_file(f).items()}
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_an_encoder_decoder_transformers_would_build_as_a_decoder_is_refused(blip_t5_model_config):
    """BART has a causal LM class too, so transformers' BLIP config would call it decoder-only."""
    from vlit.config import LLMConfig
    from vlit.errors import VlitError
    from vlit.models.export import blip_config

    bart = LLMConfig(source="random", name="bart", random_config={
        "d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "vocab_size": 176})
    cfg = blip_t5_model_config(True)
    model, _ = build_model(replace(cfg, llm=replace(bart, tokenizer=cfg.llm.tokenizer), lora=None))
    assert model.seq2seq
    with pytest.raises(VlitError, match="'bart' seq2seq LM as a causal LM"):
        blip_config(model)

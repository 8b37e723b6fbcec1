"""InstructBLIP (Llama) and BLIP-2 (OPT) in: tiny random models saved in transformers' layout, imported by
`vlit import`, give the source class's logits and greedy tokens from its own processor's input ids."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import (
    AutoTokenizer,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
    InstructBlipConfig,
    InstructBlipForConditionalGeneration,
    InstructBlipProcessor,
)

from vlit.assets import minilm_path, smollm2_folder
from vlit.cli import main as cli
from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.models.saving import load_model

VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "image_size": 28, "patch_size": 14}
QFORMER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
           "cross_attention_frequency": 1, "encoder_hidden_size": 32}


def _llm_tokenizer():
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder())
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    return tokenizer


def _save(model, processor, folder):
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture
def instructblip(tmp_path):
    tokenizer = _llm_tokenizer()
    qtok = AutoTokenizer.from_pretrained(minilm_path())
    qtok.add_special_tokens({"bos_token": "[DEC]"})
    qtok.truncation_side = "left"
    text = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": len(tokenizer),
            "tie_word_embeddings": False}
    config = InstructBlipConfig(vision_config=VISION, qformer_config={**QFORMER, "vocab_size": len(qtok)},
                                text_config=text, num_query_tokens=4,
                                image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    torch.manual_seed(0)
    model = InstructBlipForConditionalGeneration(config).eval()
    with torch.no_grad():  # post_init leaves some norms at 1/0; make every weight count
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    processor = InstructBlipProcessor(BlipImageProcessor(size={"height": 28, "width": 28}), tokenizer, qtok,
                                      num_query_tokens=4)
    return _save(model, processor, tmp_path / "instructblip"), model


@pytest.fixture
def blip2(tmp_path):
    tokenizer = _llm_tokenizer()
    text = {"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "vocab_size": len(tokenizer), "word_embed_proj_dim": 32, "bos_token_id": tokenizer.bos_token_id or 0}
    config = Blip2Config(vision_config=VISION, qformer_config=QFORMER, text_config=text, num_query_tokens=4,
                         image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    processor = Blip2Processor(BlipImageProcessor(size={"height": 28, "width": 28}), tokenizer, num_query_tokens=4)
    return _save(model, processor, tmp_path / "blip2"), model


def _check(tmp_path, folder, source, image, expected_format, capsys, qformer=True):
    assert cli(["import", str(folder), "--out", str(tmp_path / "ckpt")]) == 0
    assert f"detected: {expected_format}\n" in capsys.readouterr().out
    model, processor = load_model(tmp_path / "ckpt")
    conversation = Conversation.single("What colour is this picture?", image=image)
    batch = processor([conversation], add_generation_prompt=True)
    hf = type(source).from_pretrained(folder) and None
    from transformers import AutoProcessor

    hf = AutoProcessor.from_pretrained(folder)
    enc = hf(images=image, text="What colour is this picture?", return_tensors="pt")
    # The published prompt: the query tokens before BOS, then the raw instruction.
    assert enc["input_ids"].tolist() == batch.input_ids.tolist()
    if qformer:
        assert enc["qformer_input_ids"].tolist() == batch.side["instruction"].ids.tolist()
    torch.testing.assert_close(enc["pixel_values"], batch.pixel_values, atol=1e-5, rtol=0)
    inputs = {k: v for k, v in enc.items()}
    with torch.no_grad():
        ours = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     pixel_values=enc["pixel_values"], side=batch.side).logits
        theirs = source(**inputs).logits
    torch.testing.assert_close(ours, theirs[:, -ours.shape[1]:], atol=1e-5, rtol=0)
    ours_tokens = model.generate(batch.input_ids, batch.attention_mask, enc["pixel_values"], side=batch.side,
                                 max_new_tokens=6, do_sample=False)
    theirs_tokens = source.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert ours_tokens.tolist() == theirs_tokens[:, -6:].tolist()
    return model


def test_instructblip_import_matches_transformers(tmp_path, instructblip, red_image, capsys):
    folder, _ = instructblip
    source = InstructBlipForConditionalGeneration.from_pretrained(folder).eval()
    image = red_image.resize((28, 28))
    model = _check(tmp_path, folder, source, image, "instructblip", capsys)
    assert model.config.template == "instructblip" and model.config.connector.vocab_size == 30523


def test_blip2_import_matches_transformers(tmp_path, blip2, red_image, capsys):
    folder, _ = blip2
    source = Blip2ForConditionalGeneration.from_pretrained(folder).eval()
    model = _check(tmp_path, folder, source, red_image.resize((28, 28)), "blip2", capsys, qformer=False)
    assert not model.config.connector.instruction_aware


def test_instructblip_instruction_tuning_starts_from_blip2(tmp_path, blip2):
    """InstructBLIP is instruction-tuned from BLIP-2's Q-Former: an instruction-aware Q-Former started from an
    imported BLIP-2 holds BLIP-2's weights wherever BLIP-2 has them, and a BERT's for the instruction's
    embeddings and FFN, which transformers' BLIP-2 checkpoints do not hold."""
    from transformers import BertConfig, BertModel

    from vlit.config import ModelConfig, from_dict
    from vlit.config.checkpoint import with_init_from
    from vlit.models.build import build_model
    from vlit.models.saving import load_init

    folder, source = blip2
    from vlit.models.published.importing import import_checkpoint

    import_checkpoint(str(folder), tmp_path / "blip2-vlit")
    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48))
    bert.save_pretrained(tmp_path / "bert")
    raw = with_init_from({"init_from": str(tmp_path / "blip2-vlit"),
                          "connector": {"kind": "qformer", "instruction_aware": True, "init": str(tmp_path / "bert")}})
    cfg = from_dict(ModelConfig, raw)
    model, processor = build_model(cfg)
    assert load_init(model, cfg.init_from) == ["connector"]
    qformer = model.connector.qformer.state_dict()
    blip = source.qformer.state_dict()
    assert torch.equal(qformer["embeddings.layernorm.weight"], blip["layernorm.weight"])
    assert torch.equal(qformer["encoder.layer.1.crossattention.attention.key.weight"],
                       blip["encoder.layer.1.crossattention.attention.key.weight"])
    assert torch.equal(qformer["encoder.layer.0.output_query.dense.weight"],
                       blip["encoder.layer.0.output_query.dense.weight"])
    assert torch.equal(qformer["embeddings.word_embeddings.weight"], bert.embeddings.word_embeddings.weight)
    assert torch.equal(qformer["encoder.layer.0.intermediate.dense.weight"],
                       bert.encoder.layer[0].intermediate.dense.weight)
    assert torch.equal(model.connector.query_tokens, source.query_tokens)
    batch = processor([Conversation.single("What is shown?", image=Image.new("RGB", (28, 28)))],
                      add_generation_prompt=True)
    assert batch.side["instruction"].ids.shape[0] == 1
    with torch.no_grad():
        assert torch.isfinite(model(**batch.model_inputs()).logits).all()


def test_a_checkpoint_missing_qformer_weights_is_refused(tmp_path, blip2):
    """Without a BERT init, BLIP-2 leaves the instruction embeddings unset: an error naming them, never noise."""
    from vlit.config import ModelConfig, from_dict
    from vlit.config.checkpoint import with_init_from
    from vlit.errors import VlitError
    from vlit.models.build import build_model
    from vlit.models.published.importing import import_checkpoint
    from vlit.models.saving import load_init

    import_checkpoint(str(blip2[0]), tmp_path / "blip2-vlit")
    raw = with_init_from({"init_from": str(tmp_path / "blip2-vlit"),
                          "connector": {"kind": "qformer", "instruction_aware": True}})
    cfg = from_dict(ModelConfig, raw)
    assert cfg.connector.init == "random"  # the imported checkpoint's; the recipe named no BERT
    model, _ = build_model(cfg)
    with pytest.raises(VlitError, match="missing.*word_embeddings"):
        load_init(model, cfg.init_from)

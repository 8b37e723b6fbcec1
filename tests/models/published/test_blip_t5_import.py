"""InstructBLIP and BLIP-2 with FlanT5 in (`Salesforce/instructblip-flan-t5-xl`, `Salesforce/blip2-flan-t5-xl`):
tiny random models in transformers' layout (a T5 with its own output head, as FlanT5's), imported by `vlit import`,
take the same encoder ids, Q-Former ids and decoder labels from vlit's processor as from transformers' processor
and tokenizer, and give the source class's loss, logits and greedy tokens; the import exports back bit-identical.
Both tokenizer forms: the current folders hold `<image>` (`image_token_index`), older ones neither (and may have a
generation config without T5's start and end tokens)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoProcessor,
    AutoTokenizer,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
    InstructBlipConfig,
    InstructBlipForConditionalGeneration,
    InstructBlipProcessor,
)

from vlit.assets import minilm_path
from vlit.cli import main as cli
from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.models.export import export_model
from vlit.models.published.importing import import_checkpoint
from vlit.models.saving import load_model

VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "image_size": 28, "patch_size": 14}
QFORMER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
           "cross_attention_frequency": 1, "encoder_hidden_size": 32}
# Two samples of different lengths, so padding is checked too: (question, answer).
PAIRS = [("What colour is this picture?", "red"), ("Describe the image briefly.", "a blue square in the picture")]


@pytest.fixture(params=[True, False], ids=["instructblip", "blip2"])
def source(request, tmp_path, t5_tokenizer, t5_text_config):
    """(folder, transformers model, transformers class name): a random InstructBLIP or BLIP-2 on a tiny FlanT5
    whose output head is its own (FlanT5 does not tie it to the embeddings), saved as transformers saves it."""
    instruct = request.param
    t5_tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    image_token = t5_tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    images = BlipImageProcessor(size={"height": 28, "width": 28})
    if instruct:
        qtok = AutoTokenizer.from_pretrained(minilm_path())
        qtok.add_special_tokens({"bos_token": "[DEC]"})
        qtok.truncation_side = "left"
        config = InstructBlipConfig(vision_config=VISION, qformer_config={**QFORMER, "vocab_size": len(qtok)},
                                    text_config=t5_text_config, num_query_tokens=4, image_token_index=image_token)
        model_class, processor = InstructBlipForConditionalGeneration, InstructBlipProcessor(
            images, t5_tokenizer, qtok, num_query_tokens=4)
    else:
        config = Blip2Config(vision_config=VISION, qformer_config=QFORMER, text_config=t5_text_config,
                             num_query_tokens=4, image_token_index=image_token)
        model_class, processor = Blip2ForConditionalGeneration, Blip2Processor(images, t5_tokenizer,
                                                                               num_query_tokens=4)
    assert not config.use_decoder_only_language_model
    torch.manual_seed(0)
    model = model_class(config).eval()
    with torch.no_grad():  # post_init leaves some norms at 1/0; make every weight count
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        # transformers 5 builds every T5 with its head tied to the embeddings; FlanT5's checkpoints hold their own.
        lm = model.language_model
        lm.lm_head.weight = torch.nn.Parameter(torch.randn_like(lm.shared.weight) * 0.05)
    folder = tmp_path / ("instructblip" if instruct else "blip2")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert "language_model.lm_head.weight" in load_file(folder / "model.safetensors")
    return folder, model_class.from_pretrained(folder).eval(), model_class.__name__


def _first_revision(folder, target, plain_tokenizer):
    """The folder as the hub's first revisions may be: no `<image>` in the tokenizer, no `image_token_index`, and
    a generation config without the LLM's special tokens (older transformers wrote the composite config's)."""
    shutil.copytree(folder, target)
    config = json.loads((target / "config.json").read_text())
    del config["image_token_index"]
    (target / "config.json").write_text(json.dumps(config))
    (target / "generation_config.json").write_text(json.dumps({"_from_model_config": True,
                                                                "transformers_version": "4.31.0"}))
    for file in plain_tokenizer.iterdir():
        shutil.copy(file, target / file.name)
    assert IMAGE_TOKEN not in AutoTokenizer.from_pretrained(target).get_vocab()
    return target


def _hf_inputs(folder, images, training=True):
    """transformers' processor over the questions, and decoder labels from its tokenizer (the answer and `</s>`,
    padding ignored), as one trains InstructBLIP with T5 in transformers."""
    hf = AutoProcessor.from_pretrained(folder)
    enc = hf(images=images, text=[q for q, _ in PAIRS], padding=True, return_tensors="pt")
    if training:
        labels = hf.tokenizer([a for _, a in PAIRS], padding=True, return_tensors="pt")
        enc["labels"] = labels.input_ids.masked_fill(labels.attention_mask == 0, IGNORE_INDEX)
    return enc


@pytest.mark.parametrize("image_token", ["held", "added"])
def test_flant5_import_matches_transformers(tmp_path, source, image_token, t5_tokenizer_folder, red_image, capsys):
    folder, hf_model, class_name = source
    instruct = class_name == InstructBlipForConditionalGeneration.__name__
    if image_token == "added":
        folder = _first_revision(folder, tmp_path / "old", t5_tokenizer_folder)
    assert cli(["import", str(folder), "--out", str(tmp_path / "ckpt")]) == 0
    out = capsys.readouterr().out
    assert f"detected: {'instructblip' if instruct else 'blip2'}\n" in out
    assert ("vlit adds <image>" in out) == (image_token == "added")
    model, processor = load_model(tmp_path / "ckpt")
    assert model.seq2seq
    # Added or held, `<image>` is the id after the tokenizer's pieces: a row FlanT5 has but no piece uses.
    assert model.image_token_id == hf_model.config.image_token_index
    assert not torch.equal(model.llm.lm_head.weight, model.llm.shared.weight)
    images = [red_image.resize((28, 28)), red_image.resize((28, 28)).rotate(90)]
    conversations = [Conversation.single(q, a, image=im) for (q, a), im in zip(PAIRS, images, strict=True)]
    batch = processor(conversations)
    enc = _hf_inputs(folder, images)
    # The encoder reads the query tokens, then the question and T5's `</s>`; the decoder learns the answer and `</s>`.
    assert batch.input_ids.tolist() == enc["input_ids"].tolist()
    assert batch.attention_mask.tolist() == enc["attention_mask"].tolist()
    assert batch.labels.tolist() == enc["labels"].tolist()
    assert batch.labels[0, :2].tolist() == [AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids("\u2581red"), 1]
    if instruct:
        assert batch.side["instruction"].ids.tolist() == enc["qformer_input_ids"].tolist()
        assert batch.side["instruction"].mask.tolist() == enc["qformer_attention_mask"].tolist()
    torch.testing.assert_close(batch.pixel_values, enc["pixel_values"], atol=1e-5, rtol=0)
    with torch.no_grad():
        ours = model(**batch.model_inputs())
        theirs = hf_model(**enc)
        per_sample = model(**batch.model_inputs(), loss_per="sample").loss
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-5, rtol=0)
    # Per sample: each answer's mean token loss, then the mean over the answers, from transformers' logits.
    tokens = torch.nn.functional.cross_entropy(theirs.logits.transpose(1, 2), enc["labels"], reduction="none")
    learned = enc["labels"] != IGNORE_INDEX
    torch.testing.assert_close(per_sample, ((tokens * learned).sum(1) / learned.sum(1)).mean(), atol=1e-5, rtol=0)

    prompts = processor([Conversation.single(q, image=im) for (q, _), im in zip(PAIRS, images, strict=True)],
                        add_generation_prompt=True)
    kwargs = {"max_new_tokens": 6, "do_sample": False, "suppress_tokens": [model.image_token_id]}
    ours_tokens = model.generate(prompts.input_ids, prompts.attention_mask, prompts.pixel_values, side=prompts.side,
                                 **kwargs)
    prompt_enc = _hf_inputs(folder, images, training=False)
    theirs_tokens = hf_model.generate(**prompt_enc, **kwargs)
    # transformers' encoder-decoder output starts with the decoder start token; vlit's holds the answer only.
    assert theirs_tokens[:, 0].eq(hf_model.config.text_config.decoder_start_token_id).all()
    assert ours_tokens.tolist() == theirs_tokens[:, 1:].tolist()


def test_flant5_import_exports_back_bit_identical(tmp_path, source):
    """`vlit import` then `vlit export` gives transformers' folder back: every weight (T5's shared embeddings, its
    own head, the encoder and decoder), bit for bit; and export -> import -> export is the identity too."""
    folder, _, class_name = source
    import_checkpoint(str(folder), tmp_path / "vlit")
    exported, model_class = export_model(*load_model(tmp_path / "vlit"), tmp_path / "hf")
    assert model_class == class_name
    first = load_file(folder / "model.safetensors")
    second = {k: v for f in exported.glob("*.safetensors") for k, v in load_file(f).items()}
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    config = json.loads((exported / "config.json").read_text())
    assert config["use_decoder_only_language_model"] is False and config["text_config"]["model_type"] == "t5"
    import_checkpoint(str(exported), tmp_path / "vlit2")
    again, _ = export_model(*load_model(tmp_path / "vlit2"), tmp_path / "hf2")
    third = {k: v for f in again.glob("*.safetensors") for k, v in load_file(f).items()}
    assert third.keys() == second.keys() and all(torch.equal(second[k], third[k]) for k in second)


@pytest.mark.parametrize("source", [False], ids=["blip2"], indirect=True)
def test_the_flant5_recipe_builds_over_a_blip2_flant5_import(tmp_path, source, red_image):
    """`hub/instructblip-flant5xl` over an imported BLIP-2 FlanT5 (a BERT of the Q-Former's size for
    bert-base-uncased): BLIP-2's Q-Former made instruction-aware, and the loss of an answer reaches the Q-Former
    side only; the T5 keeps the import's weights and is frozen."""
    from transformers import BertConfig, BertModel

    from vlit.config import Config, load_yaml
    from vlit.models.build import build_model
    from vlit.models.saving import load_init
    from vlit.training.stages import apply_stage

    folder, hf_model, _ = source
    import_checkpoint(str(folder), tmp_path / "blip2-flan-t5")
    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48))
    bert.save_pretrained(tmp_path / "bert")
    cfg = load_yaml(Config, "hub/instructblip-flant5xl", [
        f"model.init_from={tmp_path / 'blip2-flan-t5'}", f"model.connector.init={tmp_path / 'bert'}",
        f"model.connector.tokenizer={minilm_path()}", "model.llm.dtype=float32"])
    model, processor = build_model(cfg.model)
    assert load_init(model, cfg.model.init_from) == ["connector"]
    assert model.seq2seq and model.connector.instruction_aware
    assert torch.equal(model.llm.lm_head.weight, hf_model.language_model.lm_head.weight)
    apply_stage(model, cfg.stages[0])
    batch = processor([Conversation.single(*PAIRS[0], image=red_image)])
    model(**batch.model_inputs()).loss.backward()
    grads = {name.split(".")[0] for name, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    assert grads == {"connector"}
    assert not any(p.requires_grad for p in model.llm.parameters())


def test_truncation_keeps_t5s_end_token_as_transformers_processor(tmp_path, source, red_image):
    """`max_length` cuts the question, not `</s>`: transformers' processor tokenizes the text with
    `max_length - num_query_tokens` and truncation, which keeps T5's end token."""
    import dataclasses

    folder, _, _ = source
    import_checkpoint(str(folder), tmp_path / "ckpt")
    _, processor = load_model(tmp_path / "ckpt")
    image = red_image.resize((28, 28))
    question = "What colour is the big red picture on the left of the image here?"
    full = processor.encode(Conversation.single(question, image=image), add_generation_prompt=True).input_ids
    limit = len(full) - 3
    cut = dataclasses.replace(processor, max_length=limit)
    ours = cut.encode(Conversation.single(question, image=image), add_generation_prompt=True).input_ids
    hf = AutoProcessor.from_pretrained(folder)
    theirs = hf(images=image, text=question, truncation=True, max_length=limit, return_tensors="pt")["input_ids"]
    assert ours == theirs[0].tolist() and ours[-1] == hf.tokenizer.eos_token_id

"""LLaVA-1.5 in: a tiny random model saved in transformers' layout (new and old weight names) and in LLaVA's
original layout is imported by `vlit import`, and vlit gives the source class's logits and greedy tokens from
the source processor's input ids."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoProcessor,
    AutoTokenizer,
    CLIPImageProcessor,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaForConditionalGeneration,
)

from vlit.assets import smollm2_folder
from vlit.cli import main as cli
from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.errors import VlitError
from vlit.models.export import export_llava
from vlit.models.published.importing import import_checkpoint
from vlit.models.saving import load_model


@pytest.fixture
def conversation(red_image):
    return Conversation.single("What colour is this?", image=red_image)


@pytest.fixture
def llava_hf(tmp_path, debug_model):
    model, processor = debug_model
    return export_llava(model, processor, tmp_path / "llava-hf")


def _rename_to_old_layout(folder):
    """The key names the hub's llava-hf folders still hold (transformers 4)."""
    rules = [(r"^model\.vision_tower\.", "vision_tower."),
             (r"^model\.multi_modal_projector\.", "multi_modal_projector."),
             (r"^model\.language_model\.", "language_model.model."), (r"^lm_head\.", "language_model.lm_head.")]
    for file in folder.glob("*.safetensors"):
        state = load_file(file)
        renamed = {}
        for k, v in state.items():
            for pattern, repl in rules:
                k = re.sub(pattern, repl, k)
            renamed[k] = v
        save_file(renamed, file, metadata={"format": "pt"})
    index = folder / "model.safetensors.index.json"
    if index.exists():
        index.unlink()


def _compare(vlit_model, vlit_batch, source, source_inputs, vocab=None):
    with torch.no_grad():
        ours = vlit_model(input_ids=vlit_batch.input_ids, attention_mask=vlit_batch.attention_mask,
                          pixel_values=vlit_batch.pixel_values, side=vlit_batch.side).logits
        theirs = source(**source_inputs).logits
    vocab = vocab or theirs.shape[-1]
    torch.testing.assert_close(ours[..., :vocab], theirs[..., :vocab], atol=1e-5, rtol=0)
    ours_tokens = vlit_model.generate(vlit_batch.input_ids, vlit_batch.attention_mask, vlit_batch.pixel_values,
                                      side=vlit_batch.side, max_new_tokens=6, do_sample=False)
    theirs_tokens = source.generate(**source_inputs, max_new_tokens=6, do_sample=False)
    assert ours_tokens.tolist() == theirs_tokens[:, source_inputs["input_ids"].shape[1]:].tolist()


@pytest.mark.parametrize("layout", ["transformers-5", "hub (transformers-4 names)"])
def test_llava_hf_import_matches_transformers(tmp_path, llava_hf, conversation, layout, capsys):
    if layout != "transformers-5":
        _rename_to_old_layout(llava_hf)
    assert cli(["import", str(llava_hf), "--out", str(tmp_path / "ckpt")]) == 0
    out = capsys.readouterr().out
    assert "detected: llava-hf" in out
    model, processor = load_model(tmp_path / "ckpt")
    assert (model.config.template, model.config.prompt_style) == ("vicuna_v1", "llava15")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["stored_parts"] == ["connector"]
    source = LlavaForConditionalGeneration.from_pretrained(llava_hf).eval()
    hf = AutoProcessor.from_pretrained(llava_hf)
    batch = processor([conversation], add_generation_prompt=True)
    text = processor.render(conversation, add_generation_prompt=True)
    assert text.startswith("A chat between a curious user and an artificial intelligence assistant.")
    enc = hf(images=conversation.images[0], text=text, return_tensors="pt")
    assert enc["input_ids"].tolist() == batch.input_ids.tolist()
    _compare(model, batch, source, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                    "pixel_values": batch.pixel_values})


def test_export_import_export_is_bit_identical(tmp_path, llava_hf):
    import_checkpoint(str(llava_hf), tmp_path / "ckpt")
    model, processor = load_model(tmp_path / "ckpt")
    again = export_llava(model, processor, tmp_path / "again")
    first = {k: v for f in llava_hf.glob("*.safetensors") for k, v in load_file(f).items()}
    second = {k: v for f in again.glob("*.safetensors") for k, v in load_file(f).items()}
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def _sentencepiece_tokenizer():
    """A tiny Llama-style tokenizer (SentencePiece BPE, `▁` word marks, BOS added, legacy spacing after special
    tokens as LLaVA's Vicuna tokenizer has), trained here: no Llama tokenizer ships offline."""
    from tokenizers import SentencePieceBPETokenizer
    from transformers import LlamaTokenizerFast

    corpus = ["A chat between a curious user and an artificial intelligence assistant. The assistant gives "
              "helpful, detailed, and polite answers to the user's questions.", "USER: What colour is this?\n",
              "ASSISTANT: A red picture.</s>"] * 10
    sp = SentencePieceBPETokenizer(add_prefix_space=True)
    sp.train_from_iterator(corpus, vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    return LlamaTokenizerFast(tokenizer_object=sp._tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                              add_bos_token=True, legacy=True)


TOKENIZERS = {"byte-level BPE (SmolLM2)": lambda: AutoTokenizer.from_pretrained(smollm2_folder()),
              "SentencePiece (Llama-style)": _sentencepiece_tokenizer}


def _llava_original(tmp_path, debug_model, tokenizer_kind="byte-level BPE (SmolLM2)"):
    """A tiny checkpoint in LLaVA's own layout: a `llava_llama` LLM folder holding `model.mm_projector.*`,
    the CLIP tower in a folder of its own (mm_vision_tower), a tokenizer without <image>; and the reference:
    the same weights in transformers' LlavaForConditionalGeneration (as its conversion script builds it)."""
    model, _ = debug_model
    tokenizer = TOKENIZERS[tokenizer_kind]()
    assert IMAGE_TOKEN not in tokenizer.get_vocab()
    tower = tmp_path / "clip"
    model.vision.model.save_pretrained(tower)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tower)
    text_cfg = model.llm.get_base_model().config.to_dict()
    text_cfg = {k: v for k, v in text_cfg.items() if k not in ("model_type", "architectures", "transformers_version")}
    text_cfg["vocab_size"] = len(tokenizer)
    torch.manual_seed(3)
    llm = LlamaForCausalLM(LlamaConfig(**text_cfg)).eval()
    folder = tmp_path / "llava-v1.5-tiny"
    state = {k: v.contiguous() for k, v in llm.state_dict().items()}
    state |= {"model.mm_projector.0.weight": model.connector.linear_1.weight.detach().clone(),
              "model.mm_projector.0.bias": model.connector.linear_1.bias.detach().clone(),
              "model.mm_projector.2.weight": model.connector.linear_2.weight.detach().clone(),
              "model.mm_projector.2.bias": model.connector.linear_2.bias.detach().clone()}
    folder.mkdir()
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    config = {**llm.config.to_dict(), "model_type": "llava_llama", "architectures": ["LlavaLlamaForCausalLM"],
              "mm_vision_tower": str(tower), "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
              "mm_projector_type": "mlp2x_gelu", "image_aspect_ratio": "pad", "mm_hidden_size": 32}
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(folder)
    return folder, llm, state


def _tokenizer_image_token(prompt, tokenizer, sentinel):
    """LLaVA's own `tokenizer_image_token` (llava/mm_utils.py): chunks around <image>, BOS once, a sentinel."""
    chunks = [tokenizer(c).input_ids for c in prompt.split("<image>")]
    ids, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(sentinel)
        ids.extend(chunk[offset:] if i or offset else chunk)
    return ids


@pytest.mark.parametrize("tokenizer_kind", TOKENIZERS)
def test_llava_original_layout_import_matches_the_published_function(tmp_path, debug_model, conversation, capsys,
                                                                     tokenizer_kind):
    folder, llm, state = _llava_original(tmp_path, debug_model, tokenizer_kind)
    assert cli(["import", str(folder), "--out", str(tmp_path / "ckpt")]) == 0
    assert "detected: llava\n" in capsys.readouterr().out
    model, processor = load_model(tmp_path / "ckpt")
    assert (model.config.vision.resize, model.config.vision.feature_layer, model.config.vision.drop_cls) == \
        ("pad", -2, True)
    assert model.config.llm.model_type == "llama"
    text = processor.render(conversation, add_generation_prompt=True)
    batch = processor([conversation], add_generation_prompt=True)
    # The original's input ids: LLaVA's rule, with its -200 sentinel where vlit expands the image tokens.
    source_ids = _tokenizer_image_token(text, processor.tokenizer, -200)
    ours = batch.input_ids[0].tolist()
    first = ours.index(model.image_token_id)
    collapsed = ours[:first] + [-200] + ours[first + model.num_image_tokens:]
    assert collapsed == source_ids
    # The reference function: transformers' LLaVA holding the same weights, its vocabulary grown by one row
    # for the image token as transformers' conversion script does (compared on the original vocabulary).
    vocab = llm.config.vocab_size
    debug = debug_model[0]
    from vlit.models.export import llava_config

    config = llava_config(debug)
    config.text_config.vocab_size = vocab + 1
    config.image_token_index = config.image_token_id = model.image_token_id
    reference = LlavaForConditionalGeneration(config).eval()
    ref_state = {f"model.vision_tower.{k}": v for k, v in debug.vision.model.state_dict().items()}
    ref_state |= {f"model.multi_modal_projector.{k}": v for k, v in debug.connector.state_dict().items()}
    grown = model.llm.state_dict()
    ref_state |= {f"model.language_model.{k[len('model.'):]}": v for k, v in grown.items() if k.startswith("model.")}
    ref_state["lm_head.weight"] = grown["lm_head.weight"]
    reference.load_state_dict(ref_state, strict=True)
    _compare(model, batch, reference, {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                                       "pixel_values": batch.pixel_values}, vocab=vocab)
    assert torch.equal(grown["model.embed_tokens.weight"][:vocab], state["model.embed_tokens.weight"])


def test_stage_one_projector_lands_in_the_connector_exactly(tmp_path, debug_model):
    folder, llm, state = _llava_original(tmp_path, debug_model)
    vicuna = tmp_path / "vicuna"  # the LLM stage 1 ran on (`_name_or_path` of the pretrain folder's config)
    llm.save_pretrained(vicuna)
    AutoTokenizer.from_pretrained(folder).save_pretrained(vicuna)
    pretrain = tmp_path / "pretrain"
    pretrain.mkdir()
    projector = {k: v for k, v in state.items() if "mm_projector" in k}
    torch.save(projector, pretrain / "mm_projector.bin")
    config = json.loads((folder / "config.json").read_text())
    (pretrain / "config.json").write_text(json.dumps({**config, "_name_or_path": str(vicuna)}))
    imported = import_checkpoint(str(pretrain / "mm_projector.bin"), tmp_path / "ckpt")
    assert imported.format == "llava-projector"
    model, _ = load_model(tmp_path / "ckpt")
    assert torch.equal(model.connector.linear_1.weight, projector["model.mm_projector.0.weight"])
    assert torch.equal(model.connector.linear_2.bias, projector["model.mm_projector.2.bias"])
    # And a stage's `load` puts it into a model being trained (LLaVA's --pretrain_mm_mlp_adapter).
    from vlit.models.saving import load_part

    other, _ = debug_model
    load_part(other, "connector", pretrain / "mm_projector.bin")
    assert torch.equal(other.connector.linear_2.weight, projector["model.mm_projector.2.weight"])


def test_bad_sources_are_one_line_errors(tmp_path, llava_hf, capsys):
    state = load_file(llava_hf / "model.safetensors")
    save_file({**state, "model.extra_head.weight": torch.zeros(2)}, llava_hf / "model.safetensors")
    assert cli(["import", str(llava_hf), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected weights" in err and "model.extra_head.weight" in err
    save_file({k: v for k, v in state.items() if k != "model.multi_modal_projector.linear_2.bias"},
              llava_hf / "model.safetensors")
    assert cli(["import", str(llava_hf), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "connector.linear_2.bias" in err
    (tmp_path / "notes.txt").write_text("hello")
    assert cli(["import", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "c")]) == 2
    assert "not a weights file" in capsys.readouterr().err
    torch.save({"w": torch.zeros(1), "opt": VlitError("x")}, tmp_path / "evil.bin")
    assert cli(["import", str(tmp_path / "evil.bin"), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights_only=True" in err
    with pytest.raises(VlitError, match="model_type 'bert'"):
        (tmp_path / "bert").mkdir()
        (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
        import_checkpoint(str(tmp_path / "bert"), tmp_path / "e")


def test_copy_makes_the_checkpoint_stand_alone(tmp_path, llava_hf, conversation):
    import_checkpoint(str(llava_hf), tmp_path / "ckpt", copy=True)
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["model"]["vision"]["name"].startswith("./base/") and meta["model"]["llm"]["name"].startswith("./base/")
    before, processor = load_model(tmp_path / "ckpt")
    batch = processor([conversation], add_generation_prompt=True)
    with torch.no_grad():
        expected = before(**batch.model_inputs()).logits
    llava_hf.rename(tmp_path / "gone")  # the source disappears; the folder moves
    (tmp_path / "ckpt").rename(tmp_path / "moved")
    after, _ = load_model(tmp_path / "moved")
    with torch.no_grad():
        assert torch.equal(after(**batch.model_inputs()).logits, expected)


def test_every_command_takes_an_imported_checkpoint(tmp_path, llava_hf, red_image, capsys):
    import_checkpoint(str(llava_hf), tmp_path / "ckpt")
    red_image.save(tmp_path / "red.png")
    assert cli(["info", str(tmp_path / "ckpt")]) == 0
    assert "vicuna_v1" in capsys.readouterr().out
    assert cli(["ask", "--checkpoint", str(tmp_path / "ckpt"), "--image", str(tmp_path / "red.png"),
                "--max-new-tokens", "3", "What is it?"]) == 0
    assert cli(["export", "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "hf")]) == 0


def test_an_import_carries_a_manifest_and_a_full_disk_is_one_line(tmp_path, llava_hf, monkeypatch, capsys):
    import safetensors.torch
    from safetensors import SafetensorError

    from vlit.manifest import verify_manifest

    import_checkpoint(str(llava_hf), tmp_path / "ckpt")
    assert verify_manifest(tmp_path / "ckpt")

    def full(tensors, filename, metadata=None):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert cli(["import", str(llava_hf), "--out", str(tmp_path / "full")]) == 2
    assert capsys.readouterr().err == (f"vlit import: error: {tmp_path / 'full'}: cannot write the imported "
                                       "checkpoint (No space left on device); free space on that disk (or write "
                                       "elsewhere), then run vlit import again\n")

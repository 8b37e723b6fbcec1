"""MiniGPT-v2's checkpoint + BLIP-2's EVA ViT-g -> a vlit checkpoint, on a tiny EVA (width 32, 3 blocks in the
file of which 2 are used, as LAVIS uses 39 of 40) and a tiny LLaMA. The reference is MiniGPT-v2's own arithmetic
(eva_vit.py's attention with q/v biases, `interpolate_pos_embed`, a fresh `ln_vision`, `encode_img`), written
out here, and transformers' own Blip2VisionModel."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoTokenizer, Blip2VisionConfig, Blip2VisionModel, LlamaConfig, LlamaForCausalLM

from vlit.assets import smollm2_folder
from vlit.errors import VlitError
from vlit.models.build import build_model
from vlit.models.published.eva import read_eva
from vlit.models.published.minigptv2 import convert_minigptv2, looks_like_minigptv2
from vlit.models.saving import load_model, write_checkpoint
from vlit.models.vision import load_vision

WIDTH, HEADS, MLP, PATCH, SIZE, TARGET, USED = 32, 4, 48, 14, 28, 56, 2
LLM_WIDTH, LLM_LAYERS, RANK = 64, 2, 8
LORA = "llama_model.base_model.model.model.layers.{}.self_attn.{}.lora_{}{}.weight"


def _random(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda *shape, scale=0.2: torch.randn(*shape, generator=generator) * scale


def eva_state(blocks: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """EVA's own names and float16, as LAVIS's eva_vit_g.pth."""
    r, grid = _random(seed), SIZE // PATCH
    state = {"cls_token": r(1, 1, WIDTH), "pos_embed": r(1, grid * grid + 1, WIDTH),
             "patch_embed.proj.weight": r(WIDTH, 3, PATCH, PATCH, scale=0.02), "patch_embed.proj.bias": r(WIDTH)}
    for i in range(blocks):
        state |= {f"blocks.{i}.{k}": v for k, v in {
            "norm1.weight": 1 + r(WIDTH), "norm1.bias": r(WIDTH), "attn.qkv.weight": r(3 * WIDTH, WIDTH),
            "attn.q_bias": r(WIDTH), "attn.v_bias": r(WIDTH), "attn.proj.weight": r(WIDTH, WIDTH),
            "attn.proj.bias": r(WIDTH), "norm2.weight": 1 + r(WIDTH), "norm2.bias": r(WIDTH),
            "mlp.fc1.weight": r(MLP, WIDTH), "mlp.fc1.bias": r(MLP), "mlp.fc2.weight": r(WIDTH, MLP),
            "mlp.fc2.bias": r(WIDTH)}.items()}
    return {k: v.half() for k, v in state.items()}


def minigpt_state(default: bool = True, seed: int = 1) -> dict[str, torch.Tensor]:
    r, suffix = _random(seed), ".default" if default else ""
    state = {"llama_proj.weight": r(LLM_WIDTH, 4 * WIDTH), "llama_proj.bias": r(LLM_WIDTH)}
    for i in range(LLM_LAYERS):
        for module in ("q_proj", "v_proj"):
            state[LORA.format(i, module, "A", suffix)] = r(RANK, LLM_WIDTH)
            state[LORA.format(i, module, "B", suffix)] = r(LLM_WIDTH, RANK)
    return state


def minigpt_interpolate(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """eva_vit.py's interpolate_pos_embed."""
    extra, tokens = pos[:, :1], pos[:, 1:]
    old = int(tokens.shape[1] ** 0.5)
    tokens = tokens.reshape(-1, old, old, WIDTH).permute(0, 3, 1, 2)
    tokens = F.interpolate(tokens, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat((extra, tokens.permute(0, 2, 3, 1).flatten(1, 2)), dim=1)


def minigpt_features(eva: dict[str, torch.Tensor], pixels: torch.Tensor, ln_eps: float = 1e-5) -> torch.Tensor:
    """MiniGPT-v2's `ln_vision(visual_encoder(image))[:, 1:]`: EVA (eva_vit.py) with USED blocks, float32."""
    s = {k: v.float() for k, v in eva.items()}
    x = F.conv2d(pixels, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=PATCH)
    x = torch.cat((s["cls_token"].expand(len(x), -1, -1), x.flatten(2).transpose(1, 2)), dim=1)
    x = x + minigpt_interpolate(s["pos_embed"], pixels.shape[-1] // PATCH)
    for i in range(USED):
        p = {k.removeprefix(f"blocks.{i}."): v for k, v in s.items() if k.startswith(f"blocks.{i}.")}
        h = F.layer_norm(x, (WIDTH,), p["norm1.weight"], p["norm1.bias"], eps=1e-6)
        bias = torch.cat((p["attn.q_bias"], torch.zeros_like(p["attn.v_bias"]), p["attn.v_bias"]))
        q, k, v = F.linear(h, p["attn.qkv.weight"], bias).reshape(*x.shape[:2], 3, HEADS, -1).permute(2, 0, 3, 1, 4)
        attention = ((q * (WIDTH // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = x + F.linear((attention @ v).transpose(1, 2).reshape(x.shape), p["attn.proj.weight"], p["attn.proj.bias"])
        h = F.layer_norm(x, (WIDTH,), p["norm2.weight"], p["norm2.bias"], eps=1e-6)
        x = x + F.linear(F.gelu(F.linear(h, p["mlp.fc1.weight"], p["mlp.fc1.bias"])), p["mlp.fc2.weight"],
                         p["mlp.fc2.bias"])
    return F.layer_norm(x, (WIDTH,), eps=ln_eps)[:, 1:]  # ln_vision: a fresh LayerNorm, weight 1, bias 0


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A tiny random LLaMA folder with a tokenizer: what `llama` names (a hub id or folder)."""
    folder = tmp_path_factory.mktemp("llama")
    config = LlamaConfig(hidden_size=LLM_WIDTH, intermediate_size=128, num_hidden_layers=LLM_LAYERS,
                         num_attention_heads=4, num_key_value_heads=4, vocab_size=49152,
                         max_position_embeddings=256, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(smollm2_folder()).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def files(tmp_path):
    """(minigptv2_checkpoint.pth, eva_vit_g.pth) of the tiny model."""
    checkpoint, eva = tmp_path / "minigptv2_checkpoint.pth", tmp_path / "eva_vit_g.pth"
    torch.save({"model": minigpt_state()}, checkpoint)
    torch.save(eva_state(), eva)
    return checkpoint, eva


def convert(checkpoint, eva, llama, **kwargs):
    return convert_minigptv2(checkpoint, eva, llama, image_size=TARGET, vision_layers=USED, vision_heads=HEADS,
                             **kwargs)


def tower_of(imported):
    encoder = load_vision(imported.config.vision)
    state = {k.removeprefix("vision.model."): v for k, v in imported.weights.items() if k.startswith("vision.")}
    encoder.model.load_state_dict(state, strict=True)  # strict: every Blip2VisionModel weight, nothing else
    return encoder


@pytest.mark.parametrize("prefix", ["", "visual_encoder."])
def test_eva_file_gives_minigptv2_features(tmp_path, files, llama, prefix):
    checkpoint, _ = files
    eva = tmp_path / "eva.pth"
    torch.save({prefix + k: v for k, v in eva_state().items()}, eva)
    imported = convert(checkpoint, eva, llama)
    pixels = torch.randn(2, 3, TARGET, TARGET, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        features = tower_of(imported)(pixels)
    assert features.shape == (2, (TARGET // PATCH) ** 2, WIDTH)
    # Exact but for ln_vision's eps (MiniGPT-v2's 1e-5; Blip2VisionModel has its blocks' 1e-6 everywhere).
    torch.testing.assert_close(features, minigpt_features(eva_state(), pixels, ln_eps=1e-6), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(features, minigpt_features(eva_state(), pixels), atol=1e-4, rtol=1e-4)
    assert any("blocks.2" in note for note in imported.notes)  # the file's last block is not used


def test_positions_are_transformers_interpolation(files, llama):
    """The stored 448-px-style table is transformers' `interpolate_pos_encoding` of the file's (and MiniGPT-v2's
    `interpolate_pos_embed`); the tower at the target size equals transformers' model at the original size
    asked to interpolate."""
    checkpoint, eva = files
    imported = convert(checkpoint, eva, llama)
    tower, _ = read_eva(eva, USED)
    original = Blip2VisionModel(Blip2VisionConfig(hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=USED,
                                                  num_attention_heads=HEADS, image_size=SIZE, patch_size=PATCH))
    original.load_state_dict(tower | {"post_layernorm.weight": torch.ones(WIDTH),
                                      "post_layernorm.bias": torch.zeros(WIDTH)}, strict=True)
    converted = imported.weights["vision.model.embeddings.position_embedding"]
    probe = torch.zeros(1, (TARGET // PATCH) ** 2 + 1, WIDTH)
    with torch.no_grad():
        expected = original.embeddings.interpolate_pos_encoding(probe, TARGET, TARGET)
        assert torch.equal(converted, expected)
        torch.testing.assert_close(converted, minigpt_interpolate(eva_state()["pos_embed"].float(), TARGET // PATCH))
        pixels = torch.randn(1, 3, TARGET, TARGET)
        reference = original(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
        ours = tower_of(imported).model(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("sharded", [False, True])
def test_transformers_blip2_folder_gives_the_same_tower(tmp_path, files, llama, sharded):
    checkpoint, eva = files
    tower, _ = read_eva(eva, 3)
    vision = {f"vision_model.{k}": v for k, v in tower.items()}
    # BLIP-2's trained ln_vision is there as post_layernorm; MiniGPT-v2 never loads it.
    vision |= {f"vision_model.post_layernorm.{k}": torch.rand(WIDTH) for k in ("weight", "bias")}
    others = {"qformer.layernorm.weight": torch.ones(8), "language_model.lm_head.weight": torch.ones(4, 8)}
    folder = tmp_path / "blip2"
    folder.mkdir()
    if sharded:
        save_file(vision, folder / "model-1.safetensors")
        save_file(others, folder / "model-2.safetensors")
        index = {k: "model-1.safetensors" for k in vision} | {k: "model-2.safetensors" for k in others}
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": index}))
    else:
        save_file(vision | others, folder / "model.safetensors")
    from_folder, from_file = convert(checkpoint, folder, llama), convert(checkpoint, eva, llama)
    assert from_folder.weights.keys() == from_file.weights.keys()
    assert all(torch.equal(from_folder.weights[k], from_file.weights[k]) for k in from_file.weights)
    assert any("post_layernorm" in note and "encoder.layers.2" in note for note in from_folder.notes)


@pytest.mark.parametrize("default", [True, False])
def test_lora_and_projector_land_under_vlit_names(tmp_path, llama, default):
    state = minigpt_state(default=default)
    torch.save({"model": state}, tmp_path / "ckpt.pth")
    torch.save(eva_state(), tmp_path / "eva.pth")
    imported = convert(tmp_path / "ckpt.pth", tmp_path / "eva.pth", llama)
    assert imported.format == "minigptv2" and imported.parts == ["vision", "connector", "lora"]
    assert torch.equal(imported.weights["connector.proj.weight"], state["llama_proj.weight"])
    assert torch.equal(imported.weights["connector.proj.bias"], state["llama_proj.bias"])
    model, _ = build_model(imported.config)
    lora_names = {k for k in model.state_dict() if "lora_" in k}
    assert lora_names == {k for k in imported.weights if "lora_" in k}
    suffix = ".default" if default else ""
    name = "llm.base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight"
    assert torch.equal(imported.weights[name], state[LORA.format(1, "v_proj", "B", suffix)])
    lora = imported.config.lora
    assert (lora.r, lora.alpha, lora.dropout, lora.target_modules) == (RANK, 16, 0.05, ["q_proj", "v_proj"])
    assert looks_like_minigptv2(state) and not looks_like_minigptv2({"llama_proj.weight": 0})


def test_imported_checkpoint_loads_and_runs_as_minigptv2(tmp_path, files, llama):
    checkpoint, eva = files
    imported = convert(checkpoint, eva, llama, dtype="float32")
    cfg = imported.config
    assert (cfg.llm.source, cfg.llm.name, cfg.template, cfg.prompt_style, cfg.system_prompt) == \
        ("hub", llama, "llama2_inst", "minigptv2", "")
    assert convert(checkpoint, eva, llama).config.llm.dtype == "float16"  # MiniGPT-v2 runs LLaMA in float16
    folder = write_checkpoint(tmp_path / "vlit", cfg, imported.weights, imported.parts)
    model, processor = load_model(folder)
    state = model.state_dict()
    assert all(torch.equal(state[k], v.to(state[k].dtype)) for k, v in imported.weights.items())
    assert model.num_image_tokens == (TARGET // PATCH) ** 2 // 4 == processor.num_image_tokens
    pixels = torch.randn(1, 3, TARGET, TARGET)
    with torch.no_grad():
        tokens = model.connector(model.vision(pixels))
    # encode_img: 4 adjacent tokens concatenated, then llama_proj.
    merged = minigpt_features(eva_state(), pixels).reshape(1, -1, 4 * WIDTH)
    raw = minigpt_state()
    torch.testing.assert_close(tokens, F.linear(merged, raw["llama_proj.weight"], raw["llama_proj.bias"]),
                               atol=1e-4, rtol=1e-4)
    # The prompt as MiniGPT-v2's code writes and tokenizes it: `[INST] <Img><ImageHere></Img> [task] instruction
    # [/INST]`, split at the image, the first piece with special tokens, the rest without (get_context_emb).
    from vlit.data.conversation import Conversation

    conversation = Conversation.single("[vqa] What is it?", image="x.png")
    text = processor.render(conversation, add_generation_prompt=True)
    assert text == "[INST] <Img><image></Img> [vqa] What is it? [/INST]"
    before, after = text.split("<image>")
    tokenizer = processor.tokenizer
    expected = tokenizer(before).input_ids + [processor.image_token_id] * processor.num_image_tokens \
        + tokenizer(after, add_special_tokens=False).input_ids
    assert processor.encode(conversation, add_generation_prompt=True).input_ids == expected


def test_dropped_buffers_and_a_mismatched_llama(tmp_path, files, llama):
    checkpoint, eva = files
    state = minigpt_state(default=False)
    state |= {f"llama_model.base_model.model.model.layers.{i}.self_attn.rotary_emb.inv_freq": torch.ones(8)
              for i in range(LLM_LAYERS)}
    torch.save({"model": state}, tmp_path / "with_buffers.pth")
    assert any("2 rotary_emb.inv_freq" in note for note in convert(tmp_path / "with_buffers.pth", eva, llama).notes)
    state["llama_proj.weight"], state["llama_proj.bias"] = torch.zeros(48, 4 * WIDTH), torch.zeros(48)
    torch.save({"model": state}, tmp_path / "wider.pth")
    with pytest.raises(VlitError, match="width 64 and 2 layers, but the checkpoint was trained on width 48"):
        convert(tmp_path / "wider.pth", eva, llama)


class Payload:
    """Not a tensor: a pickle holding it is refused before anything runs."""


def _edit(state, drop=(), add=None):
    return {k: v for k, v in state.items() if k not in drop} | (add or {})


@pytest.mark.parametrize("which, state, message", [
    ("checkpoint", {"model": {"llama_proj.weight": Payload()}}, "not plain tensors"),
    ("checkpoint", {"model": _edit(minigpt_state(), drop=["llama_proj.bias"])}, "missing llama_proj.bias$"),
    ("checkpoint", {"model": _edit(minigpt_state(False), drop=[LORA.format(1, "v_proj", "B", "")])},
     r"missing llama_model\.base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight$"),
    ("checkpoint", {"model": _edit(minigpt_state(), add={"llama_model.base_model.model.model.embed_tokens.weight":
                                                          torch.ones(2)})},
     r"unexpected llama_model\.base_model\.model\.model\.embed_tokens\.weight \(MiniGPT-v2 stores"),
    ("checkpoint", {"model": _edit(minigpt_state(), drop=[k for k in minigpt_state() if "lora" in k])},
     "missing the LoRA weights"),
    ("eva", _edit(eva_state(), drop=["blocks.1.attn.v_bias"]), "not BLIP-2's EVA ViT-g: missing blocks.1.attn.v_bias$"),
    ("eva", _edit(eva_state(), add={"blocks.0.attn.relative_position_bias_table": torch.ones(2)}),
     r"unexpected blocks\.0\.attn\.relative_position_bias_table \(not EVA"),
    ("eva", {"visual_encoder." + k: v for k, v in eva_state().items()} | {"ln_vision.weight": torch.ones(2)},
     r"unexpected ln_vision\.weight beside visual_encoder"),
])
def test_refusals_are_one_line_naming_file_and_keys(tmp_path, files, llama, which, state, message):
    checkpoint, eva = files
    bad = tmp_path / f"bad_{which}.pth"
    torch.save(state, bad)
    with pytest.raises(VlitError) as error:
        convert(bad, eva, llama) if which == "checkpoint" else convert(checkpoint, bad, llama)
    text = str(error.value)
    assert "\n" not in text and text.startswith(str(bad)), text
    assert re.search(message, text), text


def test_vlit_import_detects_minigptv2_and_asks_for_its_parts(tmp_path, files, capsys):
    from vlit.cli import main as cli

    checkpoint, _ = files
    assert cli(["import", str(checkpoint), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MiniGPT-v2 checkpoint" in err and "--eva" in err and "--llm" in err

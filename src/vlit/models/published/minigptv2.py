"""MiniGPT-v2's released checkpoint as a vlit checkpoint.

MiniGPT-v2 ships only what it trained: `minigptv2_checkpoint.pth` holds `llama_proj` (4 concatenated EVA tokens
-> LLaMA width) and LoRA on LLaMA-2-chat's attention projections. Its frozen parts come from elsewhere: BLIP-2's
EVA ViT-g (LAVIS's `eva_vit_g.pth` in EVA's own names, or the `vision_model.*` weights of a transformers BLIP-2 /
InstructBLIP folder) and a LLaMA-2-chat folder. vlit stores the tower converted to transformers'
`Blip2VisionModel` (a `stored` part: no transformers folder holds it at 448 px), the connector and the LoRA
adapters, and references the LLM by name.

What MiniGPT-v2 does when it loads (minigpt4/models/eva_vit.py, base_model.py, minigpt_v2.py), reproduced here:
- `create_eva_vit_g` builds depth 39 and loads the file non-strictly: blocks past the 39th are never used;
- `interpolate_pos_embed` resizes the 16x16 position grid to 32x32 (448 px) bicubically, CLS position kept;
- `ln_vision` is a fresh `LayerNorm(1408)` (eps 1e-5), frozen and never loaded, so weight 1 and bias 0; frozen
  weights are not saved in its checkpoints, so the released file has no `ln_vision.*` either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoConfig

from vlit.config import LLMConfig, LoRAConfig, MergeConnectorConfig, ModelConfig, VisionConfig
from vlit.errors import VlitError
from vlit.models.published.common import name_keys
from vlit.models.published.eva import EVA_HEADS, EVA_LAYERS, grid_side, interpolate_positions, read_eva
from vlit.models.published.files import read_state_dict
from vlit.models.published.imported import Imported

MERGE = 4
"""`encode_img` concatenates 4 adjacent EVA tokens: 1024 tokens at 448 px become 256."""
LN_VISION_EPS = 1e-5
"""`ln_vision` is torch's default LayerNorm; Blip2VisionModel has one eps for every LayerNorm (1e-6)."""

LLM = r"llama_model\.base_model\.model\.model\.layers\.(\d+)\."  # peft model -> LoraModel -> LlamaForCausalLM
LORA_KEY = re.compile(LLM + r"((?:self_attn|mlp)\.[a-z]+_proj)\.lora_([AB])(\.default)?\.weight")
INV_FREQ = re.compile(LLM + r"self_attn\.rotary_emb\.inv_freq")
"""A buffer that transformers <= 4.30 (MiniGPT-v2's pin) saved; recomputed from the LLM's config."""
PROJ = ("llama_proj.weight", "llama_proj.bias")
LN_VISION = ("ln_vision.weight", "ln_vision.bias")


def looks_like_minigptv2(keys: Iterable[str]) -> bool:
    """A MiniGPT-v2 state dict: `llama_proj` and LoRA on the LLaMA (MiniGPT-4 v1 has `llama_proj` alone)."""
    keys = set(keys)
    return PROJ[0] in keys and any(LORA_KEY.fullmatch(k) for k in keys)


def convert_minigptv2(checkpoint: str | Path, eva: str | Path, llama: str, *, image_size: int = 448,
                      dtype: Literal["float32", "bfloat16", "float16"] = "float16", lora_alpha: int = 16,
                      lora_dropout: float = 0.05, vision_layers: int = EVA_LAYERS,
                      vision_heads: int = EVA_HEADS) -> Imported:
    """MiniGPT-v2 (`checkpoint`: its `.pth`), BLIP-2's EVA ViT-g (`eva`: LAVIS's `eva_vit_g.pth` or a transformers
    BLIP-2 folder / hub id) and LLaMA-2-chat (`llama`: hub id or folder, referenced) in vlit's terms.

    `dtype` is the LLM's (MiniGPT-v2 runs LLaMA in float16). LoRA's alpha and dropout are not in the weights:
    MiniGPT-v2 trains with 16 and 0.05. `vision_layers` / `vision_heads` describe the tower (EVA ViT-g: 39, 16).
    """
    path = Path(checkpoint)
    # The small checkpoint first: its mistakes are found before the 2 GB tower is read.
    proj, lora, ln_vision, dropped = _split_checkpoint(path, read_state_dict(path))
    rank, modules, num_layers = _check_lora(path, lora)
    _check_llama(llama, proj[PROJ[0]].shape[0], num_layers)
    tower, notes = read_eva(eva, vision_layers)
    hidden = tower["embeddings.class_embedding"].shape[-1]
    patch = tower["embeddings.patch_embedding.weight"].shape[-1]
    if image_size % patch or (image_size // patch) ** 2 % MERGE:
        raise VlitError(f"image_size: {image_size} px is not a grid of {patch} px patches divisible by {MERGE}")
    if hidden % vision_heads:
        raise VlitError(f"vision_heads: {vision_heads} does not divide EVA's width {hidden}")
    if proj[PROJ[0]].shape[1] != MERGE * hidden:
        raise VlitError(f"{path}: llama_proj.weight takes {proj[PROJ[0]].shape[1]} features, not {MERGE} x "
                        f"EVA's width {hidden}; the EVA weights do not belong to this checkpoint")
    positions = tower["embeddings.position_embedding"]
    tower["embeddings.position_embedding"] = interpolate_positions(positions, patch, image_size)
    grid, new_grid = grid_side(positions.shape[1]), image_size // patch
    if grid != new_grid:
        notes.append(f"vision: position embeddings interpolated {grid}x{grid} -> {new_grid}x{new_grid} (bicubic, "
                     "as MiniGPT-v2 does at load)")
    if ln_vision:
        tower |= {k.replace("ln_vision", "post_layernorm"): v for k, v in ln_vision.items()}
        notes.append(f"vision: post_layernorm from the checkpoint's ln_vision (eps {LN_VISION_EPS} there, 1e-6 here)")
    else:
        tower |= {"post_layernorm.weight": torch.ones(hidden), "post_layernorm.bias": torch.zeros(hidden)}
        notes.append(f"vision: post_layernorm is MiniGPT-v2's ln_vision, a LayerNorm it never loads nor trains "
                     f"(weight 1, bias 0); it has eps {LN_VISION_EPS}, Blip2VisionModel's single eps is 1e-6")
    if dropped:
        notes.append(f"checkpoint: {dropped} rotary_emb.inv_freq buffers dropped (recomputed by the LLM)")
    notes.append(f"llm: {llama} referenced, not copied; LoRA r={rank} alpha={lora_alpha} on {', '.join(modules)} "
                 f"of {num_layers} layers")
    notes.append("vision: EVA runs in float32 here (MiniGPT-v2 runs it in float16)")
    config = ModelConfig(
        vision=_vision_config(tower, vision_layers, vision_heads, image_size),
        connector=MergeConnectorConfig(merge=MERGE), llm=LLMConfig(source="hub", name=llama, dtype=dtype),
        template="llama2_inst", system_prompt="", prompt_style="minigptv2",
        # MiniGPT-v2 tokenizes the prompt around `<ImageHere>` piece by piece (`get_context_emb`, `prompt_wrap`).
        split_at_images=True,
        lora=LoRAConfig(r=rank, alpha=lora_alpha, dropout=lora_dropout, target_modules=modules),
    )
    weights = {f"vision.model.{k}": v for k, v in tower.items()}
    weights |= {"connector.proj.weight": proj[PROJ[0]], "connector.proj.bias": proj[PROJ[1]]}
    weights |= lora
    return Imported("minigptv2", config, weights, ["vision", "connector", "lora"], notes)


def _vision_config(tower: dict[str, torch.Tensor], layers: int, heads: int, image_size: int) -> VisionConfig:
    """Blip2VisionModel of the tower's shapes at `image_size`, read as MiniGPT-v2's `encode_img` reads EVA: the
    last block's output, `ln_vision`, CLS dropped; images stretched to a square (its eval processor)."""
    hidden, patch = tower["embeddings.class_embedding"].shape[-1], tower["embeddings.patch_embedding.weight"].shape[-1]
    return VisionConfig(
        source="stored", name="blip_2_vision_model", feature_layer=-1, post_layernorm=True, drop_cls=True,
        resize="stretch", image_size=image_size,
        random_config=dict(hidden_size=hidden, intermediate_size=tower["encoder.layers.0.mlp.fc1.weight"].shape[0],
                           num_hidden_layers=layers, num_attention_heads=heads, image_size=image_size,
                           patch_size=patch, hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True),
    )


def _split_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> tuple[dict, dict, dict, int]:
    """The checkpoint's projector, LoRA (under vlit's names), ln_vision if any, and the count of dropped buffers;
    anything else is refused."""
    missing = [k for k in PROJ if k not in state]
    if missing:
        raise VlitError(f"{path}: not a MiniGPT-v2 checkpoint: missing {name_keys(missing)}")
    proj, lora, ln_vision, dropped, unexpected = {k: state[k] for k in PROJ}, {}, {}, 0, []
    for key, value in state.items():
        match = LORA_KEY.fullmatch(key)
        if match:
            lora[f"llm.base_model.model.model.layers.{match[1]}.{match[2]}.lora_{match[3]}.default.weight"] = value
        elif key in LN_VISION:
            ln_vision[key] = value
        elif INV_FREQ.fullmatch(key):
            dropped += 1
        elif key not in PROJ:
            unexpected.append(key)
    if unexpected:
        raise VlitError(f"{path}: unexpected {name_keys(unexpected)} (MiniGPT-v2 stores llama_proj and LoRA only)")
    if len(ln_vision) == 1:
        raise VlitError(f"{path}: missing {name_keys(sorted(set(LN_VISION) - set(ln_vision)))}")
    if not lora:
        raise VlitError(f"{path}: missing the LoRA weights (llama_model.base_model.model.model.layers.N.self_attn."
                        "{q,v}_proj.lora_{A,B}.weight); a MiniGPT-4 (v1) checkpoint is not MiniGPT-v2")
    return proj, lora, ln_vision, dropped


def _check_lora(path: Path, lora: dict[str, torch.Tensor]) -> tuple[int, list[str], int]:
    """(rank, target module names, layers) of a complete set of adapters: every layer adapts the same modules."""
    found = {tuple(re.fullmatch(r".*layers\.(\d+)\.(.+)\.lora_[AB]\.default\.weight", k).groups()) for k in lora}
    layers = 1 + max(int(i) for i, _ in found)
    modules = sorted({m for _, m in found})
    expected = [f"llm.base_model.model.model.layers.{i}.{m}.lora_{ab}.default.weight"
                for i in range(layers) for m in modules for ab in "AB"]
    missing = [k.replace("llm.", "llama_model.", 1).replace(".default", "") for k in expected if k not in lora]
    if missing:
        raise VlitError(f"{path}: missing {name_keys(missing)}")
    ranks = {lora[k].shape[0] for k in expected[::2]} | {lora[k].shape[1] for k in expected[1::2]}
    if len(ranks) != 1:
        raise VlitError(f"{path}: LoRA weights of different ranks {sorted(ranks)}")
    return ranks.pop(), sorted({m.rsplit(".", 1)[1] for m in modules}), layers


def _check_llama(llama: str, width: int, layers: int) -> None:
    """A local LLaMA folder must fit the projector's width and the adapters' layers (a hub id is not fetched)."""
    if not (Path(llama) / "config.json").is_file():
        return
    config = AutoConfig.from_pretrained(llama)
    config = getattr(config, "text_config", None) or config
    if (config.hidden_size, config.num_hidden_layers) != (width, layers):
        raise VlitError(f"{llama}: width {config.hidden_size} and {config.num_hidden_layers} layers, but the "
                        f"checkpoint was trained on width {width} and {layers} layers (LLaMA-2-7B-chat)")

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

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import AutoConfig, Blip2VisionConfig
from transformers.models.blip_2.modeling_blip_2 import Blip2VisionEmbeddings

from vlit.config import LLMConfig, LoRAConfig, MergeConnectorConfig, ModelConfig, VisionConfig
from vlit.errors import VlitError
from vlit.models.published.files import local_source, read_state_dict, weights_files
from vlit.models.published.imported import Imported

MERGE = 4
"""`encode_img` concatenates 4 adjacent EVA tokens: 1024 tokens at 448 px become 256."""
EVA_LAYERS = 39
EVA_HEADS = 16
"""`create_eva_vit_g`: depth 39, 1408 // 88 heads; LayerNorms inside the tower have eps 1e-6."""
LN_VISION_EPS = 1e-5
"""`ln_vision` is torch's default LayerNorm; Blip2VisionModel has one eps for every LayerNorm (1e-6)."""

EVA_EMBEDDINGS = {
    "cls_token": "embeddings.class_embedding",
    "pos_embed": "embeddings.position_embedding",
    "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
    "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
}
EVA_BLOCK = {  # blocks.N.<EVA name> -> encoder.layers.N.<Blip2 name>; q_bias / v_bias become qkv.bias
    "norm1.weight": "layer_norm1.weight", "norm1.bias": "layer_norm1.bias",
    "attn.qkv.weight": "self_attn.qkv.weight",
    "attn.proj.weight": "self_attn.projection.weight", "attn.proj.bias": "self_attn.projection.bias",
    "norm2.weight": "layer_norm2.weight", "norm2.bias": "layer_norm2.bias",
    "mlp.fc1.weight": "mlp.fc1.weight", "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight", "mlp.fc2.bias": "mlp.fc2.bias",
}
EVA_QV = ("attn.q_bias", "attn.v_bias")
EVA_UNUSED_TOP = ("norm.", "fc_norm.", "head.")
"""The full EVA-CLIP tower's final norm and head: LAVIS's depth-39 tower has none, so its loader skips them."""
BLIP2_LAYER = (*EVA_BLOCK.values(), "self_attn.qkv.bias")

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
    grid, new_grid = _grid(positions.shape[1]), image_size // patch
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


def interpolate_positions(positions: torch.Tensor, patch_size: int, image_size: int) -> torch.Tensor:
    """float[1, 1 + g*g, D] -> float32[1, 1 + G*G, D], G = image_size // patch_size.

    transformers' own `Blip2VisionEmbeddings.interpolate_pos_encoding` (bicubic, CLS position kept), which is
    MiniGPT-v2's `interpolate_pos_embed`; in float32, as MiniGPT-v2 keeps it. Built on the meta device: only the
    position table is real.
    """
    dim, grid = positions.shape[-1], _grid(positions.shape[1])
    with torch.device("meta"):
        config = Blip2VisionConfig(hidden_size=dim, patch_size=patch_size, image_size=grid * patch_size)
        embeddings = Blip2VisionEmbeddings(config)
        probe = torch.empty(1, (image_size // patch_size) ** 2 + 1, dim)
    embeddings.position_embedding = nn.Parameter(positions.float(), requires_grad=False)
    with torch.no_grad():
        return embeddings.interpolate_pos_encoding(probe, image_size, image_size).detach().clone()


def read_eva(source: str | Path, layers: int = EVA_LAYERS) -> tuple[dict[str, torch.Tensor], list[str]]:
    """EVA ViT-g's first `layers` blocks under Blip2VisionModel's names (no `vision_model.` and no
    `post_layernorm`), and notes. `source`: LAVIS's file (EVA's names, optionally under `visual_encoder.`) or a
    transformers BLIP-2 / InstructBLIP folder or hub id."""
    path = local_source(source)
    if path.is_dir():
        return _from_transformers(path, layers)
    state = read_state_dict(path)
    prefix = "visual_encoder." if any(k.startswith("visual_encoder.") for k in state) else ""
    outside = [k for k in state if not k.startswith(prefix)]
    if outside:
        raise VlitError(f"{path}: unexpected {_names(outside)} beside visual_encoder.*")
    state = {k.removeprefix(prefix): v for k, v in state.items()}
    expected = [*EVA_EMBEDDINGS, *(f"blocks.{i}.{n}" for i in range(layers) for n in (*EVA_BLOCK, *EVA_QV))]
    missing = [prefix + k for k in expected if k not in state]
    if missing:
        raise VlitError(f"{path}: not BLIP-2's EVA ViT-g: missing {_names(missing)}")
    tower, unused, unexpected = {}, set(), []
    for key, value in state.items():
        block = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
        if key in EVA_EMBEDDINGS:
            tower[EVA_EMBEDDINGS[key]] = value
        elif key.startswith(EVA_UNUSED_TOP):
            unused.add(key.split(".")[0])
        elif block is None or block[2] not in (*EVA_BLOCK, *EVA_QV):
            unexpected.append(prefix + key)
        elif int(block[1]) >= layers:
            unused.add(f"blocks.{block[1]}")
        elif block[2] in EVA_BLOCK:
            tower[f"encoder.layers.{block[1]}.{EVA_BLOCK[block[2]]}"] = value
    if unexpected:
        raise VlitError(f"{path}: unexpected {_names(unexpected)} (not EVA ViT-g's)")
    for i in range(layers):
        # EVA has no key bias: qkv's bias is q's, zeros, v's, exactly as EVA's and Blip2's attention build it.
        q, v = state[f"blocks.{i}.attn.q_bias"], state[f"blocks.{i}.attn.v_bias"]
        tower[f"encoder.layers.{i}.self_attn.qkv.bias"] = torch.cat((q, torch.zeros_like(v), v))
    return tower, _unused_note(path, "EVA's file", layers, unused)


def _from_transformers(folder: Path, layers: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    state = _read_prefixed(folder, "vision_model.")
    if not state:
        raise VlitError(f"{folder}: no vision_model.* weights (not a transformers BLIP-2 / InstructBLIP folder)")
    expected = [*EVA_EMBEDDINGS.values(), *(f"encoder.layers.{i}.{n}" for i in range(layers) for n in BLIP2_LAYER)]
    missing = [f"vision_model.{k}" for k in expected if k not in state]
    if missing:
        raise VlitError(f"{folder}: not BLIP-2's EVA ViT-g: missing {_names(missing)}")
    tower, unused, unexpected = {}, set(), []
    for key, value in state.items():
        layer = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", key)
        if key in expected:
            tower[key] = value
        elif key.startswith("post_layernorm."):
            unused.add("post_layernorm (BLIP-2's trained ln_vision, which MiniGPT-v2 does not use)")
        elif layer is not None and layer[2] in BLIP2_LAYER and int(layer[1]) >= layers:
            unused.add(f"encoder.layers.{layer[1]}")
        else:
            unexpected.append(f"vision_model.{key}")
    if unexpected:
        raise VlitError(f"{folder}: unexpected {_names(unexpected)} (not EVA ViT-g's)")
    return tower, _unused_note(folder, "the folder's vision_model", layers, unused)


def _read_prefixed(folder: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The folder's weights under `prefix` (prefix removed), reading only those: a BLIP-2 folder is mostly LLM."""
    weights = weights_files(folder)
    files = [weights]
    if weights.name.endswith(".index.json"):
        try:
            weight_map = json.loads(weights.read_text())["weight_map"]
            files = sorted({folder / shard for key, shard in weight_map.items() if key.startswith(prefix)})
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise VlitError(f"{weights}: not a weights index ({e})") from None
    state: dict[str, torch.Tensor] = {}
    for file in files:
        if file.suffix != ".safetensors":
            state |= {k: v for k, v in read_state_dict(file).items() if k.startswith(prefix)}
            continue
        try:
            with safe_open(file, framework="pt") as f:
                names = [k for k in f.keys() if k.startswith(prefix)]  # noqa: SIM118 - not a dict
                state |= {k: f.get_tensor(k) for k in names}
        except (SafetensorError, OSError) as e:
            raise VlitError(f"{file}: not a safetensors file ({e})") from None
    return {k.removeprefix(prefix): v for k, v in state.items()}


def _split_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> tuple[dict, dict, dict, int]:
    """The checkpoint's projector, LoRA (under vlit's names), ln_vision if any, and the count of dropped buffers;
    anything else is refused."""
    missing = [k for k in PROJ if k not in state]
    if missing:
        raise VlitError(f"{path}: not a MiniGPT-v2 checkpoint: missing {_names(missing)}")
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
        raise VlitError(f"{path}: unexpected {_names(unexpected)} (MiniGPT-v2 stores llama_proj and LoRA only)")
    if len(ln_vision) == 1:
        raise VlitError(f"{path}: missing {_names(sorted(set(LN_VISION) - set(ln_vision)))}")
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
        raise VlitError(f"{path}: missing {_names(missing)}")
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


def _grid(positions: int) -> int:
    grid = round((positions - 1) ** 0.5)
    if grid * grid != positions - 1:
        raise VlitError(f"pos_embed: {positions} positions are not a CLS plus a square grid")
    return grid


def _unused_note(source: Path, what: str, layers: int, unused: set[str]) -> list[str]:
    note = f"vision: EVA ViT-g from {source}: {layers} blocks"
    if unused:
        note += f"; unused as in MiniGPT-v2 (its tower has {layers} blocks): {', '.join(sorted(unused))} of {what}"
    return [note]


def _names(keys: list[str]) -> str:
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return ", ".join(keys[:3]) + more

"""BLIP-2's EVA ViT-g (the tower MiniGPT-v2 and LAVIS's BLIP-2 use) under transformers' `Blip2VisionModel` names:
from LAVIS's `eva_vit_g.pth` (EVA's own names, with or without `visual_encoder.`) or from the `vision_model.*`
weights of a transformers BLIP-2 / InstructBLIP folder; and its position table resized to another image size.

As LAVIS's `create_eva_vit_g`: depth 39, loaded non-strictly, so blocks past the 39th are never used.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from transformers import Blip2VisionConfig
from transformers.models.blip_2.modeling_blip_2 import Blip2VisionEmbeddings

from vlit.errors import VlitError
from vlit.models.published.common import name_keys
from vlit.models.published.files import local_source, read_state_dict

EVA_LAYERS = 39
EVA_HEADS = 16
"""`create_eva_vit_g`: depth 39, 1408 // 88 heads; LayerNorms inside the tower have eps 1e-6."""

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


def interpolate_positions(positions: torch.Tensor, patch_size: int, image_size: int) -> torch.Tensor:
    """float[1, 1 + g*g, D] -> float32[1, 1 + G*G, D], G = image_size // patch_size.

    transformers' own `Blip2VisionEmbeddings.interpolate_pos_encoding` (bicubic, CLS position kept), which is
    MiniGPT-v2's `interpolate_pos_embed`; in float32, as MiniGPT-v2 keeps it. Built on the meta device: only the
    position table is real.
    """
    dim, grid = positions.shape[-1], grid_side(positions.shape[1])
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
        raise VlitError(f"{path}: unexpected {name_keys(outside)} beside visual_encoder.*")
    state = {k.removeprefix(prefix): v for k, v in state.items()}
    expected = [*EVA_EMBEDDINGS, *(f"blocks.{i}.{n}" for i in range(layers) for n in (*EVA_BLOCK, *EVA_QV))]
    missing = [prefix + k for k in expected if k not in state]
    if missing:
        raise VlitError(f"{path}: not BLIP-2's EVA ViT-g: missing {name_keys(missing)}")
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
        raise VlitError(f"{path}: unexpected {name_keys(unexpected)} (not EVA ViT-g's)")
    for i in range(layers):
        # EVA has no key bias: qkv's bias is q's, zeros, v's, exactly as EVA's and Blip2's attention build it.
        q, v = state[f"blocks.{i}.attn.q_bias"], state[f"blocks.{i}.attn.v_bias"]
        tower[f"encoder.layers.{i}.self_attn.qkv.bias"] = torch.cat((q, torch.zeros_like(v), v))
    return tower, _unused_note(path, "EVA's file", layers, unused)


def _from_transformers(folder: Path, layers: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    # Only the tower's weights are read: a BLIP-2 folder is mostly LLM.
    prefix = "vision_model."
    state = {k.removeprefix(prefix): v for k, v in read_state_dict(folder, keep=lambda k: k.startswith(prefix)).items()}
    if not state:
        raise VlitError(f"{folder}: no vision_model.* weights (not a transformers BLIP-2 / InstructBLIP folder)")
    expected = [*EVA_EMBEDDINGS.values(), *(f"encoder.layers.{i}.{n}" for i in range(layers) for n in BLIP2_LAYER)]
    missing = [f"vision_model.{k}" for k in expected if k not in state]
    if missing:
        raise VlitError(f"{folder}: not BLIP-2's EVA ViT-g: missing {name_keys(missing)}")
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
        raise VlitError(f"{folder}: unexpected {name_keys(unexpected)} (not EVA ViT-g's)")
    return tower, _unused_note(folder, "the folder's vision_model", layers, unused)


def grid_side(positions: int) -> int:
    grid = round((positions - 1) ** 0.5)
    if grid * grid != positions - 1:
        raise VlitError(f"pos_embed: {positions} positions are not a CLS plus a square grid")
    return grid


def _unused_note(source: Path, what: str, layers: int, unused: set[str]) -> list[str]:
    note = f"vision: EVA ViT-g from {source}: {layers} blocks"
    if unused:
        note += f"; unused as in MiniGPT-v2 (its tower has {layers} blocks): {', '.join(sorted(unused))} of {what}"
    return [note]

"""LLaVA-1.5 in: transformers' `LlavaForConditionalGeneration` folders (`llava-hf/llava-1.5-7b-hf`), LLaVA's own
layout (`liuhaotian/llava-v1.5-7b`, a `llava_llama` with `model.mm_projector`), and a stage-1 projector file
alone (`mm_projector.bin`).

vlit's LLaVA is the same function: a CLIP tower's penultimate layer without CLS, Linear-GELU-Linear, the LLM.
The tower and the LLM stay where they are (referenced by name, with a `key_mapping` into the folder); only the
projector is copied into the vlit checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from vlit.config import LLMConfig, MLPConnectorConfig, ModelConfig, VisionConfig
from vlit.errors import VlitError
from vlit.models.published.common import (
    check_covered,
    check_image_token,
    dtype_of,
    preprocessor,
    read_json,
    resize_rule,
)
from vlit.models.published.files import read_state_dict, weight_names
from vlit.models.published.imported import Imported

# transformers 5 writes the first names; the hub's llava-hf folders still hold the older second ones.
HF_LAYOUTS = {
    "model.": {"vision": r"^model\.vision_tower\.", "projector": r"^model\.multi_modal_projector\.",
               "llm": {r"^model\.language_model\.": "model."}, "head": r"^lm_head\."},
    "": {"vision": r"^vision_tower\.", "projector": r"^multi_modal_projector\.",
         "llm": {r"^language_model\.model\.": "model.", r"^language_model\.lm_head\.": "lm_head."},
         "head": r"^language_model\.lm_head\."},
}

# LLaVA's own projector names (`mlp2x_gelu`: a Sequential of Linear, GELU, Linear) -> vlit's MLPConnector.
PROJECTOR_NAMES = {r"^(?:model\.)?mm_projector\.0\.": "linear_1.", r"^(?:model\.)?mm_projector\.2\.": "linear_2.",
                   r"^(?:model\.)?mm_projector\.(weight|bias)$": r"linear_1.\1"}


def convert_llava_hf(source: Path, name: str, dtype: str | None) -> Imported:
    config = read_json(source / "config.json")
    names = weight_names(source)
    layout = HF_LAYOUTS["model."] if any(n.startswith("model.language_model.") for n in names) else HF_LAYOUTS[""]
    if config.get("projector_hidden_act", "gelu") != "gelu":
        raise VlitError(f"{source / 'config.json'}: projector_hidden_act {config['projector_hidden_act']!r}; "
                        "LLaVA-1.5's projector is gelu")
    strategy = config.get("vision_feature_select_strategy", "default")
    layer = config.get("vision_feature_layer", -2)
    if not isinstance(layer, int):
        raise VlitError(f"{source / 'config.json'}: vision_feature_layer {layer!r}: one layer, not several")
    check_covered(source, names, {layout["vision"]: "vision", layout["projector"]: "connector",
                                  **{p: "llm" for p in layout["llm"]}, layout["head"]: "llm"})
    _check_image_token(source, config.get("image_token_index", config.get("image_token_id")))
    processor = preprocessor(source)
    projector = read_state_dict(source, keep=lambda k: re.match(layout["projector"], k) is not None)
    weights = {re.sub(layout["projector"], "connector.", k): v for k, v in projector.items()}
    cfg = ModelConfig(
        vision=VisionConfig(source="hub", name=name, feature_layer=layer, drop_cls=strategy == "default",
                            resize=resize_rule(processor), key_mapping={layout["vision"]: ""}),
        connector=MLPConnectorConfig(kind="mlp", bias=config.get("multimodal_projector_bias", True)),
        llm=LLMConfig(source="hub", name=name, dtype=dtype_of(config, dtype), key_mapping=dict(layout["llm"])),
        template="vicuna_v1", prompt_style="llava15",
    )
    return Imported("llava-hf", cfg, weights, ["connector"])


def convert_llava_original(source: Path, name: str, dtype: str | None, vision: str | None) -> Imported:
    """`liuhaotian/llava-v1.5-*`: a LlamaForCausalLM folder whose config says `llava_llama` and names the CLIP
    tower (`mm_vision_tower`), which is not in the folder."""
    config = read_json(source / "config.json")
    where = source / "config.json"
    tower = vision or config.get("mm_vision_tower")
    if not tower:
        raise VlitError(f"{where}: no mm_vision_tower; give the CLIP tower with --vision")
    kind = config.get("mm_projector_type", "linear")
    if kind not in ("mlp2x_gelu", "linear"):
        raise VlitError(f"{where}: mm_projector_type {kind!r}; vlit reads mlp2x_gelu (LLaVA-1.5) and linear")
    select = config.get("mm_vision_select_feature", "patch")
    if select not in ("patch", "cls_patch"):
        raise VlitError(f"{where}: mm_vision_select_feature {select!r} is not patch or cls_patch")
    names = weight_names(source)
    tuned_tower = [n for n in names if n.startswith("model.vision_tower.")]
    if tuned_tower:
        raise VlitError(f"{source}: holds its own vision tower weights ({tuned_tower[0]}); vlit reads LLaVA "
                        "checkpoints whose tower is the frozen mm_vision_tower")
    check_covered(source, names, {r"^model\.mm_projector\.": "connector", r"^model\.": "llm", r"^lm_head\.": "llm"})
    projector = read_state_dict(source, keep=lambda k: k.startswith("model.mm_projector."))
    llm_type = str(config.get("model_type", "llava_llama")).removeprefix("llava_")
    cfg = ModelConfig(
        vision=VisionConfig(source="hub", name=str(tower), feature_layer=config.get("mm_vision_select_layer", -2),
                            drop_cls=select == "patch",
                            resize="pad" if config.get("image_aspect_ratio") == "pad" else "crop"),
        connector=MLPConnectorConfig(kind="mlp" if kind == "mlp2x_gelu" else "linear"),
        llm=LLMConfig(source="hub", name=name, dtype=dtype_of(config, dtype),
                      model_type=llm_type if llm_type != "llava" else "llama"),
        template="vicuna_v1", prompt_style="llava15", split_at_images=True,
    )
    notes = [f"vision tower: {tower} (mm_vision_tower), layer {cfg.vision.feature_layer}, "
             f"{'no CLS' if cfg.vision.drop_cls else 'with CLS'}, {cfg.vision.resize} to square",
             "prompts are tokenized around the image as LLaVA's tokenizer_image_token does",
             "LLaVA's -200 image sentinel becomes vlit's <image> token (added to the tokenizer; its embedding row is "
             "never read, its output row is never generated)"]
    return Imported("llava", cfg, projector_weights(projector, where), ["connector"], notes)


def projector_weights(state: dict[str, torch.Tensor], where: Path | str) -> dict[str, torch.Tensor]:
    """LLaVA's `mm_projector` weights under vlit's connector names; anything else is an error naming it."""
    out = {}
    for key, tensor in state.items():
        for pattern, repl in PROJECTOR_NAMES.items():
            if re.match(pattern, key):
                out["connector." + re.sub(pattern, repl, key)] = tensor
                break
        else:
            raise VlitError(f"{where}: {key} is not an mm_projector weight")
    if not out:
        raise VlitError(f"{where}: no mm_projector weights")
    return out


def is_projector_file(state_names: list[str]) -> bool:
    return bool(state_names) and all(re.match(r"^(model\.)?mm_projector\.", n) for n in state_names)


def _check_image_token(source: Path, index: int | None) -> None:
    if index is None:
        raise VlitError(f"{source / 'config.json'}: no image_token_index")
    check_image_token(source, index)

"""What every export shares: the LLM with LoRA merged, an image processor doing vlit's preprocessing, the
tokenizer carrying vlit's chat template, and the folder's config, generation config and weight files."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

from vlit.data.loading.processor import Processor
from vlit.data.loading.transforms import ImageSpec
from vlit.errors import VlitError
from vlit.models.vision import HFVisionEncoder
from vlit.models.vlm import VisionLanguageModel


def merged_llm(model: VisionLanguageModel) -> PreTrainedModel:
    """The LLM with LoRA adapters merged into its weights (a copy; the model keeps its adapters)."""
    if model.config.lora is None:
        return model.llm
    return copy.deepcopy(model.llm).merge_and_unload()


def vision_tower(model: VisionLanguageModel, format_name: str) -> PreTrainedModel:
    """The transformers vision model inside the encoder; EfficientNet has no transformers class."""
    if not isinstance(model.vision, HFVisionEncoder):
        raise VlitError(f"export: {format_name} needs a transformers vision tower, not EfficientNet")
    return model.vision.model


def image_processor(spec: ImageSpec) -> LlavaImageProcessorPil:
    """An image processor doing what vlit's ImageSpec does (stretch, LLaVA's pad, or CLIP's crop). LLaVA's is
    transformers' CLIP-style processor plus LLaVA's pad; BLIP's can neither pad nor crop, so every export uses
    this one."""
    square = {"height": spec.size, "width": spec.size}
    return LlavaImageProcessorPil(
        do_pad=spec.resize == "pad",
        size={"shortest_edge": spec.size} if spec.resize == "crop" else square,
        do_center_crop=spec.resize == "crop",
        crop_size=square,
        image_mean=list(spec.mean),
        image_std=list(spec.std),
        resample=3,  # bicubic, as vlit resizes
    )


def export_tokenizer(processor: Processor, jinja: str) -> PreTrainedTokenizerBase:
    """A copy of the LLM's tokenizer (with `<image>`) whose chat template is vlit's: transformers' processors
    may add attributes to the tokenizer they get, and the tokenizer saves its template beside the processor's
    (a BLIP processor loses its own on loading; the tokenizer keeps it)."""
    tokenizer = copy.deepcopy(processor.tokenizer)
    tokenizer.chat_template = jinja
    return tokenizer


def write_model(folder: Path, config: PretrainedConfig, state: dict[str, torch.Tensor],
                model: VisionLanguageModel) -> None:
    """config.json, generation_config.json (the LLM's) and sharded safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    model.llm.generation_config.save_pretrained(folder)
    save_torch_state_dict({k: v.detach().contiguous().cpu() for k, v in state.items()}, folder)

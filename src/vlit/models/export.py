"""Export to Hugging Face formats that transformers loads as is.

An `mlp` model with a transformers vision tower is exactly LLaVA-1.5's architecture, so it becomes a
`LlavaForConditionalGeneration` folder: config, sharded safetensors, tokenizer (with `<image>`) and a
`LlavaProcessor` whose image processor reproduces vlit's preprocessing.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict
from transformers import LlavaConfig, LlavaProcessor, PreTrainedModel
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

from vlit.config import MLPConnectorConfig
from vlit.data.loading.processor import Processor
from vlit.errors import VlitError
from vlit.models.vision import HFVisionEncoder
from vlit.models.vlm import VisionLanguageModel


def llava_config(model: VisionLanguageModel) -> LlavaConfig:
    cfg = model.config
    if not (isinstance(cfg.connector, MLPConnectorConfig) and cfg.connector.kind == "mlp"):
        raise VlitError("export: only `mlp` connector models are LLaVA models (this one is "
                        f"{cfg.connector.kind!r})")
    if not isinstance(model.vision, HFVisionEncoder):
        raise VlitError("export: LLaVA needs a transformers vision tower (CLIP, SigLIP, ...), not EfficientNet")
    return LlavaConfig(
        vision_config=model.vision.model.config.to_dict(),
        text_config=model.llm.config.to_dict(),
        image_token_index=model.image_token_id,
        image_seq_length=model.num_image_tokens,
        projector_hidden_act="gelu",
        multimodal_projector_bias=cfg.connector.bias,
        vision_feature_layer=cfg.vision.feature_layer,
        vision_feature_select_strategy="default" if cfg.vision.drop_cls else "full",
    )


def merged_llm(model: VisionLanguageModel) -> PreTrainedModel:
    """The LLM with LoRA adapters merged into its weights (a copy; the model keeps its adapters)."""
    if model.config.lora is None:
        return model.llm
    return copy.deepcopy(model.llm).merge_and_unload()


def llava_state_dict(model: VisionLanguageModel) -> dict[str, torch.Tensor]:
    """vlit names -> LlavaForConditionalGeneration names (transformers 5 layout), LoRA merged."""
    llm = merged_llm(model)
    base = getattr(llm, llm.base_model_prefix)
    state = {f"model.vision_tower.{k}": v for k, v in model.vision.model.state_dict().items()}
    state |= {f"model.multi_modal_projector.{k}": v for k, v in model.connector.state_dict().items()}
    state |= {f"model.language_model.{k}": v for k, v in base.state_dict().items()}
    head = llm.get_output_embeddings()
    if head is not None and not llm.config.tie_word_embeddings:
        state |= {f"lm_head.{k}": v for k, v in head.state_dict().items()}
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def llava_image_processor(processor: Processor) -> LlavaImageProcessorPil:
    """An image processor doing what vlit's ImageSpec does (stretch, LLaVA's pad, or CLIP's crop)."""
    spec = processor.image_spec
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


def export_llava(model: VisionLanguageModel, processor: Processor, folder: str | Path) -> Path:
    """Write a folder that `LlavaForConditionalGeneration.from_pretrained` and `AutoProcessor` load."""
    folder = Path(folder)
    config = llava_config(model)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    model.llm.generation_config.save_pretrained(folder)
    save_torch_state_dict(llava_state_dict(model), folder)
    vision_cfg = model.vision.model.config
    LlavaProcessor(
        image_processor=llava_image_processor(processor),
        tokenizer=processor.tokenizer,
        patch_size=vision_cfg.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        image_token=processor.tokenizer.convert_ids_to_tokens(model.image_token_id),
        num_additional_image_tokens=1 if model.config.vision.drop_cls else 0,
        chat_template=processor.tokenizer.chat_template,
    ).save_pretrained(folder)
    return folder

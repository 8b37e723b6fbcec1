"""LLaVA export: an `mlp` model with a transformers vision tower is exactly LLaVA-1.5's architecture, so it
becomes a `LlavaForConditionalGeneration` folder with a `LlavaProcessor` that reproduces vlit's inputs: its
image processor does vlit's preprocessing, and its chat template is vlit's (the model's template and system
prompt), with `<image>` where LLaVA's processor expands it."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlavaConfig, LlavaProcessor
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from vlit.config import MLPConnectorConfig
from vlit.data.loading.processor import Processor
from vlit.data.prompting.chat_templates import chat_template
from vlit.errors import VlitError
from vlit.models.export.common import export_tokenizer, image_processor, merged_llm, vision_tower, write_model
from vlit.models.vlm import VisionLanguageModel

LLAVA = "LlavaForConditionalGeneration"


def llava_config(model: VisionLanguageModel) -> LlavaConfig:
    cfg = model.config
    if not (isinstance(cfg.connector, MLPConnectorConfig) and cfg.connector.kind == "mlp"):
        raise VlitError("export: only `mlp` connector models are LLaVA models (this one is "
                        f"{cfg.connector.kind!r})")
    tower = vision_tower(model, "LLaVA")
    if type(tower.config) not in MODEL_MAPPING:
        raise VlitError(f"export: LLaVA builds its vision tower with AutoModel, which has no class for "
                        f"{type(tower.config).__name__}")
    if cfg.vision.post_layernorm:
        raise VlitError("vision.post_layernorm: LLaVA takes the tower's hidden states without its final "
                        "LayerNorm; this model cannot be a LLaVA folder")
    return LlavaConfig(
        vision_config=tower.config.to_dict(),
        text_config=model.llm.config.to_dict(),
        image_token_index=model.image_token_id,
        image_seq_length=model.num_image_tokens,
        projector_hidden_act="gelu",
        multimodal_projector_bias=cfg.connector.bias,
        vision_feature_layer=cfg.vision.feature_layer,
        vision_feature_select_strategy="default" if cfg.vision.drop_cls else "full",
    )


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


def export_llava(model: VisionLanguageModel, processor: Processor, folder: str | Path) -> Path:
    """Write a folder that `LlavaForConditionalGeneration.from_pretrained` and `AutoProcessor` load."""
    folder = Path(folder)
    config = llava_config(model)
    template = chat_template(model.config.template, processor.tokenizer)
    if template.images_before_bos:
        raise VlitError(f"template: {model.config.template!r} puts the image tokens before BOS; LLaVA's processor "
                        "expands `<image>` where the text has it, after BOS")
    jinja = template.jinja(model.config.system_prompt)
    write_model(folder, config, llava_state_dict(model), model)
    LlavaProcessor(
        image_processor=image_processor(processor.image_spec),
        tokenizer=export_tokenizer(processor, jinja),
        patch_size=model.vision.model.config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        image_token=processor.tokenizer.convert_ids_to_tokens(model.image_token_id),
        num_additional_image_tokens=1 if model.config.vision.drop_cls else 0,
        chat_template=jinja,
    ).save_pretrained(folder)
    return folder

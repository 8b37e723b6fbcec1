"""InstructBLIP / BLIP-2 export: a `qformer` model with BLIP-2's vision tower (EVA ViT; transformers'
`Blip2VisionModel` or `InstructBlipVisionModel`) becomes an `InstructBlipForConditionalGeneration` folder
(instruction-aware Q-Former) or a `Blip2ForConditionalGeneration` one, with the processor transformers pairs
with it. Those processors put the query tokens before BOS and give the Q-Former the whole prompt text, which is
what vlit's `instructblip` template and its instruction are for a one-turn prompt. A T5 LLM (FlanT5's
architecture) exports as such: the T5 `text_config` makes transformers' config say
`use_decoder_only_language_model: false`, and its classes feed the encoder the query tokens and the prompt and
take `labels` for the decoder, as vlit does.

vlit feeds the Q-Former `connector.ln_vision(hidden_states[-1])`; transformers feeds it
`vision_model.post_layernorm(last_hidden_state)`, the same LayerNorm at the same place, so `ln_vision` becomes the
tower's `post_layernorm`.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from transformers import (
    Blip2Config,
    Blip2Processor,
    Blip2VisionModel,
    InstructBlipConfig,
    InstructBlipProcessor,
    InstructBlipVisionModel,
)

from vlit.config import QFormerConnectorConfig
from vlit.data.loading.processor import Processor
from vlit.data.prompting.chat_templates import chat_template
from vlit.errors import VlitError
from vlit.models.export.common import export_tokenizer, image_processor, merged_llm, vision_tower, write_model
from vlit.models.saving import dedupe_tensors
from vlit.models.vlm import VisionLanguageModel

log = logging.getLogger(__name__)

INSTRUCTBLIP = "InstructBlipForConditionalGeneration"
BLIP2 = "Blip2ForConditionalGeneration"
_SAVED_ONLY = ("model_type", "transformers_version", "architectures")


def blip_format(model: VisionLanguageModel) -> str:
    """The transformers class a `qformer` model exports to."""
    connector = model.config.connector
    if not isinstance(connector, QFormerConnectorConfig):
        raise VlitError(f"export: only `qformer` connector models are BLIP-2 / InstructBLIP models (this one is "
                        f"{connector.kind!r})")
    return INSTRUCTBLIP if connector.instruction_aware else BLIP2


def blip_config(model: VisionLanguageModel) -> InstructBlipConfig | Blip2Config:
    """The folder's config; refuses a model that transformers' classes would compute differently."""
    name = blip_format(model)
    cfg = model.config
    tower = vision_tower(model, name)
    if not isinstance(tower, Blip2VisionModel | InstructBlipVisionModel):
        raise VlitError(f"vision.name: {name} holds BLIP-2's vision tower (blip_2_vision_model or "
                        f"instructblip_vision_model), not {type(tower).__name__}")
    layers = tower.config.num_hidden_layers
    if cfg.vision.feature_layer not in (-1, layers) or cfg.vision.drop_cls or cfg.vision.post_layernorm:
        raise VlitError("vision: the Q-Former of transformers' BLIP-2 / InstructBLIP reads the last layer, CLS kept, "
                        "through one LayerNorm (feature_layer -1, drop_cls false, post_layernorm false)")
    vision = {k: v for k, v in tower.config.to_dict().items() if k not in _SAVED_ONLY}
    norm = model.connector.ln_vision
    if norm.eps != tower.config.layer_norm_eps:
        # LAVIS's own checkpoints have the same mismatch (ln_vision 1e-5, the ViT's 1e-6), and transformers'
        # conversion kept the tower's: the outputs differ slightly, so say so rather than refuse.
        log.warning("export: connector.vision_norm_eps %g becomes post_layernorm with the tower's layer_norm_eps "
                    "%g; outputs differ slightly from vlit's", norm.eps, tower.config.layer_norm_eps)
    qformer = {k: v for k, v in model.connector.qformer.config.to_dict().items() if k not in _SAVED_ONLY}
    config_class = InstructBlipConfig if name == INSTRUCTBLIP else Blip2Config
    config = config_class(
        vision_config=vision,
        qformer_config=qformer,
        text_config=model.llm.config.to_dict(),
        num_query_tokens=model.connector.num_queries,
        image_token_index=model.image_token_id,
    )
    # transformers decides from the LLM's type alone (one with a causal LM class is built as one): a BART, which has
    # both, would come back as a decoder without its encoder.
    if config.use_decoder_only_language_model == model.seq2seq:
        kinds = ("seq2seq", "causal") if model.seq2seq else ("causal", "seq2seq")
        raise VlitError(f"llm: transformers' {name} would build this {model.llm.config.model_type!r} {kinds[0]} LM "
                        f"as a {kinds[1]} LM; it takes encoder-decoder LLMs without a causal LM class (T5, FlanT5)")
    return config


def blip_state_dict(model: VisionLanguageModel) -> dict[str, torch.Tensor]:
    """vlit names -> InstructBlip/Blip2ForConditionalGeneration names (transformers 5 layout), LoRA merged."""
    connector = model.connector
    state = {f"vision_model.{k}": v for k, v in model.vision.model.state_dict().items()
             if not k.startswith("post_layernorm.")}
    state |= {f"vision_model.post_layernorm.{k}": v for k, v in connector.ln_vision.state_dict().items()}
    state["query_tokens"] = connector.query_tokens
    state |= {f"qformer.{k}": v for k, v in connector.qformer.state_dict().items()}
    state |= {f"language_projection.{k}": v for k, v in connector.language_projection.state_dict().items()}
    # A tied output head aliases the input embeddings: stored once, re-tied on loading.
    state |= dedupe_tensors({f"language_model.{k}": v for k, v in merged_llm(model).state_dict().items()})
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def export_blip(model: VisionLanguageModel, processor: Processor, folder: str | Path) -> Path:
    """Write a folder that `InstructBlipForConditionalGeneration` (or `Blip2ForConditionalGeneration`)
    `.from_pretrained` and `AutoProcessor` load."""
    folder = Path(folder)
    config = blip_config(model)
    cfg = model.config
    template = chat_template(cfg.template, processor.tokenizer)
    if not template.images_before_bos:
        raise VlitError(f"template: transformers' BLIP-2 / InstructBLIP processors put the query tokens before BOS, "
                        f"as the `instructblip` template does; this model's is {cfg.template!r}")
    # The processor places the query tokens itself: the template prints only the text.
    jinja = template.jinja(cfg.system_prompt, image="")
    write_model(folder, config, blip_state_dict(model), model)
    tokenizer = export_tokenizer(processor, jinja)
    images = image_processor(processor.image_spec)
    queries = model.connector.num_queries
    if isinstance(config, InstructBlipConfig):
        from vlit.assets import qformer_tokenizer

        qformer = copy.deepcopy(qformer_tokenizer(cfg.connector.tokenizer))
        hf = InstructBlipProcessor(images, tokenizer, qformer, num_query_tokens=queries)
    else:
        hf = Blip2Processor(images, tokenizer, num_query_tokens=queries)
    # Both classes drop a `chat_template` argument; the attribute is what save_pretrained writes.
    hf.chat_template = jinja
    hf.save_pretrained(folder)
    return folder

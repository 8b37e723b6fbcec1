"""Assemble a VisionLanguageModel and its Processor from a ModelConfig."""

from __future__ import annotations

import logging

import torch

from vlit.assets import load_tokenizer
from vlit.config import ModelConfig
from vlit.data.conversation import IMAGE_TOKEN
from vlit.data.loading.processor import Processor
from vlit.data.prompting.chat_templates import chat_template
from vlit.models.connectors import build_connector
from vlit.models.llm import add_image_token, apply_lora, load_llm
from vlit.models.parts import set_trainable
from vlit.models.vision import load_vision
from vlit.models.vlm import VisionLanguageModel

log = logging.getLogger(__name__)


def build_model(cfg: ModelConfig) -> tuple[VisionLanguageModel, Processor]:
    """A model with pretrained parts loaded and fresh parts initialised from `cfg.seed`.

    Vision encoder and LLM start frozen and the connector trainable (what inference and LLaVA's stage 1
    need); training stages change that with `apply_stage`.
    """
    # A private RNG stream: building twice gives identical fresh weights, and the caller's RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        vision = load_vision(cfg.vision)
        llm = load_llm(cfg.llm)
        tokenizer = load_tokenizer(cfg.llm)
        image_token_id = add_image_token(llm, tokenizer, IMAGE_TOKEN)
        llm_dim = llm.get_input_embeddings().embedding_dim
        # The connector stays float32 whatever the LLM's dtype: it is what trains, and AdamW's small updates
        # vanish when rounded to a bf16 weight. It runs under autocast in training; its output is cast to the
        # LLM's dtype where it enters (VisionLanguageModel.embed_multimodal).
        connector = build_connector(cfg.connector, vision.hidden_size, llm_dim)
        if cfg.lora is not None:
            llm = apply_lora(llm, cfg.lora)
    if llm.generation_config.pad_token_id is None:
        llm.generation_config.pad_token_id = tokenizer.pad_token_id
    model = VisionLanguageModel(cfg, vision, connector, llm, image_token_id)
    set_trainable(model, {"connector"})
    processor = Processor(
        tokenizer=tokenizer,
        template=chat_template(cfg.template, tokenizer),
        image_spec=vision.spec,
        num_image_tokens=model.num_image_tokens,
        image_token_id=image_token_id,
        side_inputs=connector.side_inputs(),
        system_prompt=cfg.system_prompt,
        split_at_images=cfg.split_at_images,
        seq2seq=model.seq2seq,
    )
    return model, processor

"""The language model: any AutoModelForCausalLM (the packaged SmolLM2-135M-Instruct is found by
`vlit.assets`), used as is, with an image token and optional LoRA adapters."""

from __future__ import annotations

import logging

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from vlit.assets import llm_source
from vlit.config import LLMConfig, LoRAConfig
from vlit.errors import VlitError
from vlit.models.loading import load_pretrained_part
from vlit.untrusted import LOAD_ERRORS, NO_REMOTE_CODE, why_not_loaded

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def bf16_is_emulated() -> bool:
    """Whether bf16 matmuls would be emulated: no accelerator, and a CPU without AVX512-BF16 or AMX. oneDNN
    then converts to float32 around every matmul, slower than float32 throughout."""
    return not torch.accelerator.is_available() and not torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _auto_class(config: PretrainedConfig) -> type:
    """transformers' Auto class of the LLM: an encoder-decoder (FlanT5) is a seq2seq LM, the rest causal LMs."""
    return AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM


def load_llm(cfg: LLMConfig) -> PreTrainedModel:
    """The LLM, unchanged: never subclassed or patched; vlit feeds it `inputs_embeds` (a decoder-only LM the
    whole sequence, an encoder-decoder such as FlanT5 its encoder)."""
    dtype = DTYPES[cfg.dtype]
    if dtype == torch.bfloat16 and bf16_is_emulated():
        log.warning("llm.dtype: this CPU has no bf16 matrix instructions; loading the LLM in float32")
        dtype = torch.float32
    kwargs = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
    if cfg.source in ("random", "stored"):
        try:
            config = AutoConfig.for_model(cfg.name, **cfg.random_config)
        except ValueError as e:
            raise VlitError(f"llm.name: {e}") from None
        try:
            return _auto_class(config).from_config(config, dtype=dtype, **kwargs)
        except (ValueError, RuntimeError, TypeError) as e:  # e.g. a negative width: the config, not vlit
            reason = str(e).splitlines()[0]
            raise VlitError(f"llm.random_config: cannot build a {cfg.name!r} model ({reason})") from None
    name = llm_source(cfg)
    if cfg.source == "packaged":
        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    config = llm_config(cfg)
    model_class = _auto_class(config)._model_mapping.get(type(config), None)
    if model_class is None:
        raise VlitError(f"llm.name: {name!r} holds a {config.model_type!r} model, not a causal or seq2seq LM")
    model = load_pretrained_part(model_class, name, config, cfg.key_mapping, "llm", dtype=dtype, **kwargs)
    return _with_special_tokens(model, config)


def _with_special_tokens(model: PreTrainedModel, config: PretrainedConfig) -> PreTrainedModel:
    """The LLM's special tokens where its generation config has none.

    A checkpoint of several parts (InstructBLIP's) has one generation_config.json for the whole model, which
    `from_pretrained` gives the LLM; one written before transformers copied the text config's tokens into it holds
    none, and an encoder-decoder (FlanT5) then cannot even start generating. transformers' BLIP classes generate
    with their language model's own config, so its tokens fill what is unset."""
    generation = model.generation_config
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        if getattr(generation, key, None) is None and getattr(config, key, None) is not None:
            setattr(generation, key, getattr(config, key))
    return model


def llm_config(cfg: LLMConfig) -> PretrainedConfig:
    """The causal LM's transformers config: the folder's own, read as `model_type` when given, and the text
    half of a checkpoint of several parts (LLaVA's, InstructBLIP's `text_config`)."""
    try:
        if cfg.model_type is not None:
            raw, _ = PretrainedConfig.get_config_dict(cfg.name)
            raw = {k: v for k, v in raw.items() if k not in ("model_type", "architectures", "auto_map")}
            config = AutoConfig.for_model(cfg.model_type, **raw)
        else:
            config = AutoConfig.from_pretrained(cfg.name, **NO_REMOTE_CODE)
    except LOAD_ERRORS as e:
        raise VlitError(f"llm.name: cannot load {cfg.name!r} ({why_not_loaded(e)})") from None
    return getattr(config, "text_config", None) or config


def add_image_token(llm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """Give `token` its own id and embedding row; returns the id.

    The row's value never reaches the LLM's input (the connector's tokens replace it), but with tied
    embeddings it is also an output row, so it gets the mean of the existing rows, deterministically, instead
    of transformers' random mean-resizing: a rebuilt model must be bit-identical to the saved one.
    """
    tokenizer.add_tokens([token], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(token)
    old = llm.get_input_embeddings().weight.shape[0]
    if token_id >= old:
        llm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            emb = llm.get_input_embeddings().weight
            emb[old:] = emb[:old].mean(0, keepdim=True)
            out = llm.get_output_embeddings()
            if out is not None and out.weight.data_ptr() != emb.data_ptr():
                out.weight[old:] = out.weight[:old].mean(0, keepdim=True)
    return token_id


def apply_lora(llm: PreTrainedModel, cfg: LoRAConfig) -> PreTrainedModel:
    """Wrap the LLM with peft LoRA adapters (B = 0, so outputs are unchanged until they train)."""
    from peft import LoraConfig, get_peft_model

    # FlanT5's attention projections are `q`, `k`, `v`, `o`; peft wraps an encoder-decoder as a seq2seq LM.
    task = "SEQ_2_SEQ_LM" if getattr(llm.config, "is_encoder_decoder", False) else "CAUSAL_LM"
    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), task_type=task)
    try:
        return get_peft_model(llm, lora)
    except ValueError as e:
        raise VlitError(f"model.lora.target_modules: {e}") from None

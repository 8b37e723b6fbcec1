"""`vlit.assets`: the cache folder, the packaged parts and their tokenizers."""

from __future__ import annotations

import pytest

from vlit.assets import cache_root, llm_source, load_tokenizer, minilm_path, qformer_tokenizer, smollm2_folder
from vlit.config import LLMConfig
from vlit.errors import VlitError


def test_the_cache_folder_follows_vlit_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VLIT_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("VLIT_CACHE")
    assert cache_root().parts[-2:] == (".cache", "vlit")


def test_the_gguf_is_converted_once_into_a_safetensors_cache():
    folder = smollm2_folder()
    weights = folder / "model.safetensors"
    assert weights.exists() and (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    before = weights.stat().st_mtime_ns
    smollm2_folder.cache_clear()  # as a new process would: the folder is found, not rebuilt
    assert smollm2_folder() == folder and weights.stat().st_mtime_ns == before
    assert not list(folder.glob("*.gguf")) and not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))


def test_llm_sources_and_tokenizers():
    assert llm_source(LLMConfig()) == str(smollm2_folder())
    assert llm_source(LLMConfig(source="hub", name="org/model")) == "org/model"
    # A random LLM borrows the packaged tokenizer; every tokenizer gets a pad token (masked out anyway).
    tokenizer = load_tokenizer(LLMConfig(source="random", name="llama", random_config={"hidden_size": 8}))
    assert tokenizer.pad_token is not None and tokenizer.name_or_path == str(smollm2_folder())


def test_a_missing_tokenizer_is_one_line_naming_it(tmp_path):
    with pytest.raises(VlitError, match=r"llm.tokenizer: cannot load '.*nowhere'"):
        load_tokenizer(LLMConfig(source="hub", name=str(tmp_path / "nowhere")))


def test_the_qformer_tokenizer_is_minilm_uncased_wordpiece():
    assert (minilm_path() / "model.safetensors").is_file()
    tokenizer = qformer_tokenizer()
    assert tokenizer.vocab_size == 30522 and tokenizer.pad_token_id == 0
    assert tokenizer.tokenize("Count the Coins") == ["count", "the", "coins"]

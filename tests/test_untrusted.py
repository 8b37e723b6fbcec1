"""A model folder that would run code (a tokenizer or model shipping its own Python, a pickle that calls a function)
is refused with one line saying why, and its code never runs."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from vlit.assets import load_tokenizer
from vlit.cli import main as cli
from vlit.config import LLMConfig, VisionConfig
from vlit.errors import VlitError
from vlit.untrusted import PICKLE_REFUSED, REMOTE_CODE_REFUSED, why_not_loaded

TINY_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128}


def _with_code(folder, marker):
    """The folder's own module, which leaves `marker` behind if anything imports it."""
    folder.mkdir(exist_ok=True)
    (folder / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder


class _CallsAFunction:
    """Unpickling this calls `os.system`: what a malicious pytorch_model.bin does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_tokenizer_with_its_own_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    folder = _with_code(tmp_path / "tok", marker)
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "CustomTokenizer", "auto_map": {"AutoTokenizer": ["custom.CustomTokenizer", None]}}))
    for cfg, field in ((LLMConfig(source="hub", name=str(folder)), "llm.tokenizer"),
                       (LLMConfig(tokenizer=str(folder)), "llm.tokenizer")):
        with pytest.raises(VlitError) as caught:
            load_tokenizer(cfg)
        assert str(caught.value) == f"{field}: cannot load {str(folder)!r} ({REMOTE_CODE_REFUSED})"
    assert not marker.exists()


@pytest.mark.parametrize("part", ["llm", "vision"])
def test_a_model_with_its_own_code_is_refused_without_asking(tmp_path, part, monkeypatch):
    from vlit.models.llm import load_llm
    from vlit.models.vision import load_vision

    marker = tmp_path / "ran"
    folder = _with_code(tmp_path / "model", marker)
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "custom", "auto_map": {"AutoConfig": "custom.CustomConfig"}}))
    # transformers asks on the terminal when trust_remote_code is unset; vlit must never get that far.
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("transformers asked whether to run the code"))
    load = load_llm if part == "llm" else load_vision
    cfg = LLMConfig(source="hub", name=str(folder)) if part == "llm" else VisionConfig(source="hub", name=str(folder))
    with pytest.raises(VlitError, match=rf"^{part}.name: cannot load .*never runs code from a model folder"):
        load(cfg)
    assert not marker.exists()


def test_a_pickle_that_calls_code_is_refused_in_one_line_and_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    folder = tmp_path / "llm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    torch.save({"model.embed_tokens.weight": torch.zeros(128, 64), "x": _CallsAFunction(marker)},
               folder / "pytorch_model.bin")
    # The LLM is loaded before its tokenizer, so the folder needs none.
    overrides = ["model.llm.source=hub", f"model.llm.name={folder}", "model.llm.random_config={}"]
    assert cli(["info", "debug", *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vlit info: error: llm.name: cannot load {str(folder)!r} ({PICKLE_REFUSED})"
    assert not marker.exists()


def test_other_load_failures_keep_their_first_line():
    assert why_not_loaded(OSError("no config.json here\nmore detail")) == "no config.json here"
    assert why_not_loaded(pickle.UnpicklingError("Weights only load failed")) == PICKLE_REFUSED

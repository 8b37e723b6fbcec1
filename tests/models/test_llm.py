"""The packaged SmolLM2-135M-Instruct, loaded as vlit loads an LLM, answers a plain chat question sensibly."""

from __future__ import annotations

import pytest
import torch

from vlit.assets import load_tokenizer
from vlit.config import LLMConfig
from vlit.models.llm import load_llm


@pytest.fixture(scope="module")
def smollm2():
    cfg = LLMConfig()  # the packaged part is the default
    return load_llm(cfg).eval(), load_tokenizer(cfg)


@pytest.mark.parametrize(("question", "expected"), [
    ("What is the capital of France? Answer in one word.", "paris"),
    ("How many legs does a cat have? Answer with a number.", "4"),
])
def test_smollm2_answers_a_plain_chat_question_sensibly(smollm2, question, expected):
    model, tokenizer = smollm2
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=16, do_sample=False, temperature=None, top_p=None, top_k=None)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).lower()
    assert expected in answer.replace("four", "4"), answer


def test_a_random_config_that_cannot_build_is_one_line():
    import pytest

    from vlit.config import LLMConfig
    from vlit.errors import VlitError
    from vlit.models.llm import load_llm

    cfg = LLMConfig(source="random", name="t5", random_config={"d_model": -1, "vocab_size": 10})
    with pytest.raises(VlitError, match=r"llm.random_config: cannot build a 't5' model \(Trying to create tensor"):
        load_llm(cfg)

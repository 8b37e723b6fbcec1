"""Golden strings for every chat template, and labels that are -100 everywhere but assistant tokens."""

from __future__ import annotations

import pytest

from vlit.assets import load_tokenizer
from vlit.config import LLMConfig
from vlit.data.conversation import Conversation, Turn
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.data.prompting.chat_templates import VICUNA_SYSTEM, chat_template

TWO_TURNS = Conversation(
    [Turn("user", "<image>\nWhat is it?"), Turn("assistant", "A cat."), Turn("user", "Colour?"),
     Turn("assistant", "Grey.")],
    images=["cat.png"],
)
SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
GOLDEN = {
    "vicuna_v1": f"{VICUNA_SYSTEM} USER: <image>\nWhat is it? ASSISTANT: A cat.<|im_end|>USER: Colour? "
                 "ASSISTANT: Grey.<|im_end|>",
    "llama2_inst": "[INST] <Img><image></Img> What is it? [/INST] A cat.<|im_end|>[INST] Colour? [/INST] "
                   "Grey.<|im_end|>",
    "chatml": "<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n"
              "<|im_start|>user\nColour?<|im_end|>\n<|im_start|>assistant\nGrey.<|im_end|>\n",
    "plain": "<image>A cat.\nGrey.\n",
    # InstructBLIP: no roles, no system; the image tokens lead (the processor puts BOS after them).
    "instructblip": "<image>What is it? A cat.<|im_end|>Colour? Grey.<|im_end|>",
    "llm": f"<|im_start|>system\n{SMOL_SYSTEM}<|im_end|>\n<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n"
           "<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\nColour?<|im_end|>\n"
           "<|im_start|>assistant\nGrey.<|im_end|>\n",
}
GENERATION_PROMPT = {
    "vicuna_v1": "Be brief. USER: <image>\nQ? ASSISTANT:",
    "llama2_inst": "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n<Img><image></Img> Q? [/INST]",
    "chatml": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nQ?<|im_end|>\n"
              "<|im_start|>assistant\n",
    "plain": "<image>",
    "instructblip": "<image>Q?",
    "llm": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nQ?<|im_end|>\n"
           "<|im_start|>assistant\n",
}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(LLMConfig())


def _text(template, conversation, add_generation_prompt=False, system=None):
    return "".join(s.text for s in template.render(conversation, add_generation_prompt, system))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_training_string(tokenizer, name):
    assert _text(chat_template(name, tokenizer), TWO_TURNS) == GOLDEN[name]


@pytest.mark.parametrize("name", sorted(GENERATION_PROMPT))
def test_golden_generation_prompt_with_system(tokenizer, name):
    conv = Conversation([Turn("system", "Be brief."), Turn("user", "<image>\nQ?")], images=["x.png"])
    assert _text(chat_template(name, tokenizer), conv, add_generation_prompt=True) == GENERATION_PROMPT[name]


def test_configured_system_prompt_replaces_default(tokenizer):
    conv = Conversation.single("Hi")
    assert _text(chat_template("vicuna_v1", tokenizer), conv, True, system="Short.") == "Short. USER: Hi ASSISTANT:"
    assert _text(chat_template("vicuna_v1", tokenizer), conv, True, system="") == "USER: Hi ASSISTANT:"


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_labels_cover_exactly_the_assistant_turns(debug_model, name):
    model, processor = debug_model
    processor.template = chat_template(name, processor.tokenizer)
    example = processor.encode(TWO_TURNS)
    learned = [t for t in example.labels if t != IGNORE_INDEX]
    text = processor.tokenizer.decode(learned)
    end = "\n" if name == "plain" else "<|im_end|>"
    assert text.replace("\n", "").replace(" ", "") == f"A cat.{end}Grey.{end}".replace("\n", "").replace(" ", "")
    # Everything that is not learned is exactly the prompt, placeholders included.
    for token, label in zip(example.input_ids, example.labels, strict=True):
        assert label in (IGNORE_INDEX, token)
    assert example.input_ids.count(model.image_token_id) == model.num_image_tokens
    assert all(lab == IGNORE_INDEX for tok, lab in zip(example.input_ids, example.labels, strict=True)
               if tok == model.image_token_id)


def test_vicuna_v1_system_line_is_llava15s():
    # LLaVA-1.5's conv_vicuna_v1, word for word ("human" is the older v0 template's wording).
    assert VICUNA_SYSTEM == ("A chat between a curious user and an artificial intelligence assistant. The assistant "
                             "gives helpful, detailed, and polite answers to the user's questions.")

"""Every chat template's Jinja form renders transformers-style messages to exactly the text vlit renders for the
same conversation, through transformers' own `apply_chat_template`."""

from __future__ import annotations

import jinja2
import pytest

from vlit.assets import load_tokenizer
from vlit.config import LLMConfig, ModelConfig
from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.data.prompting.chat_templates import chat_template, model_jinja
from vlit.errors import VlitError

NAMES = ["vicuna_v1", "llama2_inst", "chatml", "plain", "instructblip", "llm"]
IMAGE = {"type": "image"}
ODD = 'Be "brief" {{ x }} {% y %} \\n é 😀\nsecond line'
"""A system prompt that a careless Jinja literal would break: quotes, braces, a backslash, non-ASCII, a newline."""


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


CONVERSATIONS = {
    "one_turn": [{"role": "user", "content": [IMAGE, _text("What is it?")]}],
    "answered": [{"role": "user", "content": [IMAGE, _text("What is it?")]},
                 {"role": "assistant", "content": [_text("A cat.")]}],
    "two_turns": [{"role": "user", "content": [IMAGE, _text("What is it?")]},
                  {"role": "assistant", "content": "A cat."},
                  {"role": "user", "content": "Colour?"}],
    "system_two_turns": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": [IMAGE, _text("What is it?")]},
                         {"role": "assistant", "content": "A cat."},
                         {"role": "user", "content": [_text("Colour?")]},
                         {"role": "assistant", "content": "Grey."}],
    "odd_system": [{"role": "system", "content": ODD}, {"role": "user", "content": [IMAGE, _text("Q?")]}],
    "empty_system": [{"role": "system", "content": ""}, {"role": "user", "content": [IMAGE, _text("Q?")]}],
    "text_only": [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi."}],
    "image_after_text": [{"role": "user", "content": [_text("Look:"), IMAGE, _text("what now?")]}],
    "two_images": [{"role": "user", "content": [IMAGE, IMAGE, _text("Same?")]}],
    "image_only": [{"role": "user", "content": [IMAGE]}, {"role": "assistant", "content": "A caption."}],
    "marker_in_text": [{"role": "user", "content": "<image>[refer] the cat"}],
}


def to_conversation(messages: list[dict]) -> Conversation:
    """vlit's reading of the messages (as its server reads a chat request): parts joined with newlines, an image
    part as the `<image>` marker."""
    turns = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = "\n".join(IMAGE_TOKEN if p["type"] == "image" else p["text"] for p in content)
        turns.append(Turn(message["role"], content))
    conversation = Conversation(turns)
    conversation.images = [f"image{i}.png" for i in range(conversation.num_image_markers)]
    return conversation


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(LLMConfig())


def _vlit(template, conversation, add_generation_prompt, system):
    return "".join(s.text for s in template.render(conversation, add_generation_prompt, system))


@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("system", [None, "Configured prompt.", "", ODD])
@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", NAMES)
def test_jinja_renders_what_vlit_renders(tokenizer, name, conversation, system, add_generation_prompt):
    template = chat_template(name, tokenizer)
    messages = CONVERSATIONS[conversation]
    ours = _vlit(template, to_conversation(messages), add_generation_prompt, system)
    theirs = tokenizer.apply_chat_template(messages, chat_template=template.jinja(system), tokenize=False,
                                           add_generation_prompt=add_generation_prompt)
    assert theirs == ours


@pytest.mark.parametrize("name", NAMES)
def test_image_parts_can_print_nothing(tokenizer, name):
    """BLIP-2's and InstructBLIP's processors put the query tokens before BOS themselves: their template prints
    only the text, which for `instructblip` is vlit's prompt after its leading image markers."""
    template = chat_template(name, tokenizer)
    messages = CONVERSATIONS["one_turn"]
    text = tokenizer.apply_chat_template(messages, chat_template=template.jinja(image=""), tokenize=False,
                                         add_generation_prompt=True)
    assert IMAGE_TOKEN not in text
    if name == "instructblip":
        assert IMAGE_TOKEN + text == _vlit(template, to_conversation(messages), True, None) == "<image>What is it?"


def test_vicuna_v1_bakes_in_llava15s_system_line_and_prints_no_bos(tokenizer):
    jinja = chat_template("vicuna_v1", tokenizer).jinja()
    text = tokenizer.apply_chat_template(CONVERSATIONS["one_turn"], chat_template=jinja, tokenize=False,
                                         add_generation_prompt=True)
    assert text == ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                    "helpful, detailed, and polite answers to the user's questions. USER: <image>\nWhat is it? "
                    "ASSISTANT:")


def test_a_named_templates_form_needs_no_tokenizer(tokenizer):
    """It prints the EOS from `eos_token`, which transformers takes from the tokenizer that renders it; only the
    LLM's own template needs the tokenizer it belongs to."""
    cfg = ModelConfig(template="vicuna_v1", system_prompt="Short.")
    assert model_jinja(cfg, None) == chat_template("vicuna_v1", tokenizer).jinja("Short.")
    assert "eos_token" in model_jinja(cfg, None) and tokenizer.eos_token not in model_jinja(cfg, None)
    assert model_jinja(ModelConfig(template="llm"), tokenizer) == chat_template("llm", tokenizer).jinja()
    with pytest.raises(VlitError, match="its Jinja form needs the tokenizer"):
        model_jinja(ModelConfig(template="llm"), None)


@pytest.mark.parametrize("name", ["vicuna_v1", "llama2_inst", "chatml"])
def test_assistant_mask_is_vlits_loss_mask(debug_model, name):
    """`{% generation %}` wraps exactly the learned segment: transformers' assistant mask equals vlit's labels."""
    _, processor = debug_model
    processor.template = chat_template(name, processor.tokenizer)
    messages = CONVERSATIONS["system_two_turns"][:1] + [
        {"role": "user", "content": "What is it?"}, {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Colour?"}, {"role": "assistant", "content": "Grey."}]
    example = processor.encode(to_conversation(messages))
    out = processor.tokenizer.apply_chat_template(messages, chat_template=processor.template.jinja(), tokenize=True,
                                                  return_dict=True, return_assistant_tokens_mask=True)
    assert out["input_ids"] == example.input_ids
    assert out["assistant_masks"] == [int(label != IGNORE_INDEX) for label in example.labels]


@pytest.mark.parametrize("name", ["vicuna_v1", "chatml", "instructblip"])
def test_messages_out_of_turn_are_refused(tokenizer, name):
    """As `Conversation.check` refuses them (the `llm` form leaves that to the LLM's own template)."""
    jinja = chat_template(name, tokenizer).jinja()
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(jinja2.TemplateError, match="user and assistant in turn"):
        tokenizer.apply_chat_template(bad, chat_template=jinja, tokenize=False)

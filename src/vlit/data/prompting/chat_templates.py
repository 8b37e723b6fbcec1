"""Chat templates: a conversation -> text segments, each marked learned (assistant) or not.

The processor tokenizes the joined text once and labels a token when it overlaps a learned segment, so loss
masks come from roles, not from counting separator tokens (LLaVA's `preprocess_v1` arithmetic breaks whenever
a tokenizer merges across a boundary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from vlit.config import ModelConfig
from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.data.prompting.jinja import content_macro, literal, turns_form
from vlit.errors import VlitError

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
"""LLaVA-1.5's `conv_vicuna_v1` system line (the "curious human ... human's questions" text is LLaVA's older v0
template; a published LLaVA-1.5 checkpoint asked with it answers differently)."""


JINJA_HEADER = ("{#- vlit chat template: transformers-style messages (text, or image and text parts) -> the prompt "
                "the model was trained with. -#}\n")


@dataclass(frozen=True)
class Segment:
    text: str
    learned: bool = False


@dataclass(frozen=True)
class ChatTemplate:
    """Base of the named templates: subclasses say how one user/assistant pair and the system look."""

    eos: str
    default_system: str | None = None
    #: True when the rendered text already carries the tokenizer's BOS (the LLM's own template).
    renders_bos: bool = False
    #: Text between the assistant prefix and the answer that is learned with the answer.
    answer_prefix: str = ""
    #: True when the image tokens come before the tokenizer's BOS (BLIP-2 / InstructBLIP); the processor then
    #: tokenizes the text after them on its own, with special tokens, as transformers' processor does.
    images_before_bos: bool = False

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return (self.eos,)

    def system_text(self, conversation: Conversation, system: str | None) -> str | None:
        """Conversation's own system turn, else the configured prompt, else the template's default."""
        text = conversation.system if conversation.system is not None else system
        text = self.default_system if text is None else text
        return text or None

    def render(self, conversation: Conversation, add_generation_prompt: bool = False,
               system: str | None = None) -> list[Segment]:
        messages = conversation.messages
        system = self.system_text(conversation, system)
        segments = [Segment(self.begin(system))]
        for i in range(0, len(messages), 2):
            segments.append(Segment(self.user(messages[i].content, system if i == 0 else None)))
            if i + 1 < len(messages):
                segments.append(Segment(self.assistant_prefix()))
                answer = self.answer_prefix + messages[i + 1].content + self.assistant_suffix()
                segments.append(Segment(answer, learned=True))
                segments.append(Segment(self.after_assistant()))
            elif add_generation_prompt:
                segments.append(Segment(self.assistant_prefix()))
        return [s for s in segments if s.text]

    def jinja(self, system: str | None = None, image: str = IMAGE_TOKEN) -> str:
        """This template as a Jinja chat template: transformers-style messages (see `vlit.data.prompting.jinja`)
        render to exactly `render`'s text. `system` is a model's configured prompt (None: the template's
        default), printed for messages without a system message. `image` is what an image part prints: the
        marker, where LLaVA's processor expands it; nothing for BLIP-2's and InstructBLIP's processors, which
        put the query tokens before BOS themselves. No BOS is printed: transformers' processors tokenize the
        text with the tokenizer's special tokens, as vlit does. The EOS is the rendering tokenizer's `eos_token`,
        as transformers hands it to every template, so the form needs no tokenizer."""
        baked = self.default_system if system is None else system
        return (JINJA_HEADER + content_macro(image)
                + turns_form(baked or "", self.jinja_begin(), self.jinja_user(), self.assistant_prefix(),
                             self.answer_prefix, self.jinja_suffix(), self.after_assistant()))

    def begin(self, system: str | None) -> str:
        return ""

    def jinja_begin(self) -> str:
        """`begin` in Jinja, reading `system` ("" for none)."""
        return ""

    def user(self, text: str, system: str | None) -> str:
        """One user turn; `system` is given with the first turn for templates that put it inside."""
        raise NotImplementedError

    def jinja_user(self) -> str:
        """`user` in Jinja, reading `text`, `system` and `loop.first` (the first turn) and vlit's `marker`."""
        raise NotImplementedError

    def assistant_prefix(self) -> str:
        return ""

    def assistant_suffix(self) -> str:
        return self.eos

    def jinja_suffix(self) -> str:
        """`assistant_suffix` as a Jinja expression: the tokenizer's EOS."""
        return "eos_token"

    def after_assistant(self) -> str:
        return ""


@dataclass(frozen=True)
class VicunaV1(ChatTemplate):
    """LLaVA-1.5: `SYSTEM USER: q ASSISTANT: a</s>USER: ...` (eos is the tokenizer's own)."""

    default_system: str | None = VICUNA_SYSTEM

    def begin(self, system: str | None) -> str:
        return f"{system} " if system else ""

    def jinja_begin(self) -> str:
        return '{%- if system -%}{{- system ~ " " -}}{%- endif -%}\n'

    def user(self, text: str, system: str | None) -> str:
        return f"USER: {text} "

    def jinja_user(self) -> str:
        return '{{- "USER: " ~ text ~ " " -}}\n'

    def assistant_prefix(self) -> str:
        return "ASSISTANT:"

    #: The answer follows "ASSISTANT:" after one space; that space belongs to the learned answer.
    answer_prefix: str = " "


@dataclass(frozen=True)
class Llama2Inst(ChatTemplate):
    """MiniGPT-v2: `[INST] <Img><image></Img> [task] instruction [/INST] answer</s>`."""

    def user(self, text: str, system: str | None) -> str:
        # MiniGPT-v2's code writes `<Img><ImageHere></Img> [task] instruction`: one space after the image, where
        # a LLaVA-style row has "<image>\n".
        wrapped = f"<Img>{IMAGE_TOKEN}</Img>"
        text = re.sub(re.escape(IMAGE_TOKEN) + "(\n?)", lambda m: wrapped + (" " if m.group(1) else ""), text)
        # Llama-2 puts the system block inside the first [INST].
        sys_block = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
        return f"[INST] {sys_block}{text} [/INST]"

    def jinja_user(self) -> str:
        # The regex as a walk over the pieces between markers: a piece starting with "\n" is a marker's newline.
        return (
            '{%- set sys_block = "<<SYS>>\\n" ~ system ~ "\\n<</SYS>>\\n\\n" if loop.first and system else "" -%}\n'
            "{%- set pieces = text.split(marker) -%}\n"
            "{%- set wrapped = namespace(text=pieces[0]) -%}\n"
            "{%- for piece in pieces[1:] -%}\n"
            '  {%- if piece.startswith("\\n") -%}\n'
            '    {%- set wrapped.text = wrapped.text ~ "<Img>" ~ marker ~ "</Img> " ~ piece[1:] -%}\n'
            "  {%- else -%}\n"
            '    {%- set wrapped.text = wrapped.text ~ "<Img>" ~ marker ~ "</Img>" ~ piece -%}\n'
            "  {%- endif -%}\n"
            "{%- endfor -%}\n"
            '{{- "[INST] " ~ sys_block ~ wrapped.text ~ " [/INST]" -}}\n'
        )

    #: MiniGPT-v2 writes "[/INST] answer"; the space goes with the learned answer, so the generation prompt
    #: ends at "[/INST]" and a BPE tokenizer sees the same " answer" token in training and generation.
    answer_prefix: str = " "


@dataclass(frozen=True)
class ChatML(ChatTemplate):
    """`<|im_start|>role\\ncontent<|im_end|>\\n` (Qwen, SmolLM2, OpenHermes)."""

    eos: str = "<|im_end|>"

    def begin(self, system: str | None) -> str:
        return f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""

    def jinja_begin(self) -> str:
        return '{%- if system -%}{{- "<|im_start|>system\\n" ~ system ~ "<|im_end|>\\n" -}}{%- endif -%}\n'

    def user(self, text: str, system: str | None) -> str:
        return f"<|im_start|>user\n{text}<|im_end|>\n"

    def jinja_user(self) -> str:
        return '{{- "<|im_start|>user\\n" ~ text ~ "<|im_end|>\\n" -}}\n'

    def assistant_prefix(self) -> str:
        return "<|im_start|>assistant\n"

    def assistant_suffix(self) -> str:
        return "<|im_end|>"

    def jinja_suffix(self) -> str:
        return literal(self.assistant_suffix())

    def after_assistant(self) -> str:
        return "\n"


@dataclass(frozen=True)
class Plain(ChatTemplate):
    """LLaVA stage 1: the instruction is dropped; `<image>` then the caption then a newline."""

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return (self.eos, "\n")

    def system_text(self, conversation: Conversation, system: str | None) -> str | None:
        return None

    def user(self, text: str, system: str | None) -> str:
        return IMAGE_TOKEN * text.count(IMAGE_TOKEN)

    def jinja_user(self) -> str:
        return "{{- marker * text.count(marker) -}}\n"

    def assistant_suffix(self) -> str:
        return "\n"

    def jinja_suffix(self) -> str:
        return literal(self.assistant_suffix())


@dataclass(frozen=True)
class InstructBlipPrompt(ChatTemplate):
    """InstructBLIP / BLIP-2: the query tokens, then BOS, then the raw instruction; the answer follows with no
    role words and ends with EOS (both learned), as LAVIS trains and transformers' processor asks. No system."""

    images_before_bos: bool = True

    def system_text(self, conversation: Conversation, system: str | None) -> str | None:
        return None

    def user(self, text: str, system: str | None) -> str:
        images = IMAGE_TOKEN * text.count(IMAGE_TOKEN)
        return images + text.replace(IMAGE_TOKEN, "").strip()

    def jinja_user(self) -> str:
        return '{{- marker * text.count(marker) ~ (text | replace(marker, "") | trim) -}}\n'

    #: LAVIS tokenizes the answer on its own after the prompt; a space keeps a word-initial token for it.
    answer_prefix: str = " "


NAMED: dict[str, type[ChatTemplate]] = {"vicuna_v1": VicunaV1, "llama2_inst": Llama2Inst, "chatml": ChatML,
                                        "plain": Plain, "instructblip": InstructBlipPrompt}


def chat_template(name: str, tokenizer: PreTrainedTokenizerBase) -> ChatTemplate:
    """The template a model config names; `llm` is the tokenizer's own."""
    eos = tokenizer.eos_token or ""
    if name == "llm":
        from vlit.data.prompting.own_template import LLMOwnTemplate

        if not tokenizer.chat_template:
            raise VlitError("template: the LLM's tokenizer has no chat template; choose a named one")
        return LLMOwnTemplate(eos=eos, tokenizer=tokenizer)
    if name not in NAMED:
        raise VlitError(f"template: unknown chat template {name!r}")
    return NAMED[name](eos="<|im_end|>") if name == "chatml" else NAMED[name](eos=eos)


def model_jinja(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase | None, image: str = IMAGE_TOKEN) -> str:
    """The Jinja form of the prompt a model config names: its template with its system prompt baked in (what a
    checkpoint's `chat_template.jinja` and an exported processor hold; see `ChatTemplate.jinja` for `image`).
    Only `llm` needs the tokenizer, whose template it is; a named template's form takes the EOS from whichever
    tokenizer renders it, so its instance's own EOS goes unused here."""
    if cfg.template == "llm":
        if tokenizer is None:
            raise VlitError("template: 'llm' is the LLM tokenizer's own template; its Jinja form needs the tokenizer")
        return chat_template("llm", tokenizer).jinja(cfg.system_prompt, image)
    if cfg.template not in NAMED:
        raise VlitError(f"template: unknown chat template {cfg.template!r}")
    return NAMED[cfg.template](eos="").jinja(cfg.system_prompt, image)

"""Chat templates: a conversation -> text segments, each marked learned (assistant) or not.

The processor tokenizes the joined text once and labels a token when it overlaps a learned segment, so loss
masks come from roles, not from counting separator tokens (LLaVA's `preprocess_v1` arithmetic breaks whenever
a tokenizer merges across a boundary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.errors import VlitError

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
"""LLaVA-1.5's `conv_vicuna_v1` system line (the "curious human ... human's questions" text is LLaVA's older v0
template; a published LLaVA-1.5 checkpoint asked with it answers differently)."""


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

    def begin(self, system: str | None) -> str:
        return ""

    def user(self, text: str, system: str | None) -> str:
        """One user turn; `system` is given with the first turn for templates that put it inside."""
        raise NotImplementedError

    def assistant_prefix(self) -> str:
        return ""

    def assistant_suffix(self) -> str:
        return self.eos

    def after_assistant(self) -> str:
        return ""


@dataclass(frozen=True)
class VicunaV1(ChatTemplate):
    """LLaVA-1.5: `SYSTEM USER: q ASSISTANT: a</s>USER: ...` (eos is the tokenizer's own)."""

    default_system: str | None = VICUNA_SYSTEM

    def begin(self, system: str | None) -> str:
        return f"{system} " if system else ""

    def user(self, text: str, system: str | None) -> str:
        return f"USER: {text} "

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

    #: MiniGPT-v2 writes "[/INST] answer"; the space goes with the learned answer, so the generation prompt
    #: ends at "[/INST]" and a BPE tokenizer sees the same " answer" token in training and generation.
    answer_prefix: str = " "


@dataclass(frozen=True)
class ChatML(ChatTemplate):
    """`<|im_start|>role\\ncontent<|im_end|>\\n` (Qwen, SmolLM2, OpenHermes)."""

    eos: str = "<|im_end|>"

    def begin(self, system: str | None) -> str:
        return f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""

    def user(self, text: str, system: str | None) -> str:
        return f"<|im_start|>user\n{text}<|im_end|>\n"

    def assistant_prefix(self) -> str:
        return "<|im_start|>assistant\n"

    def assistant_suffix(self) -> str:
        return "<|im_end|>"

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

    def assistant_suffix(self) -> str:
        return "\n"


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

    #: LAVIS tokenizes the answer on its own after the prompt; a space keeps a word-initial token for it.
    answer_prefix: str = " "


@dataclass(frozen=True)
class LLMOwnTemplate(ChatTemplate):
    """The tokenizer's own Jinja chat template. Learned spans are found by rendering growing prefixes: the
    text added by each assistant turn (including its end-of-turn marker) is what the model must learn."""

    tokenizer: PreTrainedTokenizerBase | None = None
    renders_bos: bool = True

    def _text(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def render(self, conversation, add_generation_prompt=False, system=None):
        messages = [{"role": t.role, "content": t.content} for t in conversation.messages]
        sys_text = self.system_text(conversation, system)
        head = [{"role": "system", "content": sys_text}] if sys_text else []
        segments, done = [], ""
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._text(head + messages[:i], add_generation_prompt=True)
            full = self._text(head + messages[: i + 1], add_generation_prompt=False)
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise VlitError("template: the LLM's chat template does not render conversations as prefixes; "
                                "choose a named template (chatml, vicuna_v1, llama2_inst)")
            segments += [Segment(prompt[len(done):]), Segment(full[len(prompt):], learned=True)]
            done = full
        final = self._text(head + messages, add_generation_prompt=add_generation_prompt)
        segments.append(Segment(final[len(done):]))
        return [s for s in segments if s.text]


def chat_template(name: str, tokenizer: PreTrainedTokenizerBase) -> ChatTemplate:
    """The template a model config names; `llm` is the tokenizer's own."""
    eos = tokenizer.eos_token or ""
    if name == "llm":
        if not tokenizer.chat_template:
            raise VlitError("template: the LLM's tokenizer has no chat template; choose a named one")
        return LLMOwnTemplate(eos=eos, tokenizer=tokenizer)
    named = {"vicuna_v1": VicunaV1, "llama2_inst": Llama2Inst, "chatml": ChatML, "plain": Plain,
             "instructblip": InstructBlipPrompt}
    if name not in named:
        raise VlitError(f"template: unknown chat template {name!r}")
    return named[name](eos="<|im_end|>") if name == "chatml" else named[name](eos=eos)

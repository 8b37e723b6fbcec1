"""The LLM tokenizer's own chat template (`template: llm`), used through transformers' `apply_chat_template`;
its learned spans are found by rendering growing prefixes. The named templates are in `chat_templates`."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from vlit.data.conversation import IMAGE_TOKEN
from vlit.data.prompting.chat_templates import JINJA_HEADER, ChatTemplate, Segment
from vlit.data.prompting.jinja import content_macro, own_template_form
from vlit.errors import VlitError


@dataclass(frozen=True)
class LLMOwnTemplate(ChatTemplate):
    """The tokenizer's own Jinja chat template. Learned spans are found by rendering growing prefixes: the
    text added by each assistant turn (including its end-of-turn marker) is what the model must learn."""

    tokenizer: PreTrainedTokenizerBase | None = None
    renders_bos: bool = True

    def jinja(self, system: str | None = None, image: str = IMAGE_TOKEN) -> str:
        """The tokenizer's own Jinja template, behind a preamble that gives it what `render` gives it: content
        parts as text, and `system` (the configured prompt) when the messages have no system message."""
        return JINJA_HEADER + content_macro(image) + own_template_form(system, self.tokenizer.get_chat_template())

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

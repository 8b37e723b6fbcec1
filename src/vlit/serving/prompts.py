"""Tokenizing prompts and compiling grammars on request threads, so the one thread that runs the model only runs
the model: a 10 MB prompt tokenized there once held every other request for 13 s.

The encoder owns a copy of the pipeline's processor: a fast tokenizer shared between threads fails ("Already
borrowed") when one encodes while another reads it, and the worker keeps decoding with the original. Requests
take turns on the copy (a lock); each turn is bounded by the server's limits on text.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from functools import cached_property

from vlit.errors import VlitError
from vlit.inference.constraints import Grammars
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.serving.errors import APIError
from vlit.serving.messages import Prepared
from vlit.serving.settings import ServerSettings


class PromptEncoder:
    def __init__(self, pipe: Pipeline, settings: ServerSettings):
        self.pipe = pipe
        self.settings = settings
        self.processor = copy.deepcopy(pipe.processor)
        self._lock = threading.Lock()

    def token_text(self, token: int) -> str:
        """One token's text, for log-probabilities (the worker decodes with the pipeline's own tokenizer)."""
        with self._lock:
            return self.processor.tokenizer.decode([token], skip_special_tokens=False)

    @cached_property
    def vocab_size(self) -> int:
        return self.pipe.model.llm.get_output_embeddings().weight.shape[0]

    @cached_property
    def grammars(self) -> Grammars:
        """Built at the first grammar (it reads the whole vocabulary), on its own copy of the tokenizer."""
        return Grammars(copy.deepcopy(self.processor.tokenizer), self.vocab_size, self.pipe.end_ids)

    @cached_property
    def context_length(self) -> int | None:
        """The most tokens, prompt and answer together, the LLM's positions cover (vLLM's `max_model_len`):
        `max_position_embeddings` (Llama, Mistral, Qwen, ...) or `n_positions` (GPT-2 and kin). None for an
        encoder-decoder: T5's positions are relative, only `max_prompt_tokens` bounds its prompt."""
        if self.processor.seq2seq:
            return None
        config = self.pipe.model.llm.config
        for name in ("max_position_embeddings", "n_positions"):  # transformers' names for one idea, by family
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def encode(self, prepared: Prepared) -> Prepared:
        """`prepared` with its prompt tokenized, its grammar compiled and `max_new_tokens` fitted to the context;
        APIError 400 (`context_length_exceeded`) when the prompt, or prompt and `max_tokens`, do not fit, and
        400 for token ids outside the vocabulary or a grammar that does not compile."""
        self._check_tokens(prepared.options)
        with self._lock:
            example = self.processor.encode(prepared.conversation, add_generation_prompt=True)
            options = self._fit(len(example), prepared.options, prepared.max_tokens_given)
        return dataclasses.replace(prepared, options=options, example=example, grammar=self._grammar(prepared))

    def _check_tokens(self, options: GenerationOptions) -> None:
        named = [("logit_bias", t) for t, _ in options.logit_bias] + [("stop_token_ids", t)
                                                                    for t in options.stop_token_ids]
        for param, token in named:
            if not 0 <= token < self.vocab_size:
                raise APIError(400, f"{param}: token id {token} is outside the vocabulary (0 to "
                                    f"{self.vocab_size - 1})", param)

    def _grammar(self, prepared: Prepared) -> object | None:
        spec = prepared.decoding.grammar
        if spec is None:
            return None
        kind, value, param = spec
        try:
            return self.grammars.json(value) if kind == "json" else self.grammars.regex(value)
        except VlitError as e:
            raise APIError(400, f"{param}: {e}", param, "invalid_grammar") from None

    def _fit(self, prompt: int, options: GenerationOptions, given: bool) -> GenerationOptions:
        limit = self.settings.max_prompt_tokens
        if prompt > limit:
            raise _too_long(f"messages: the prompt is {prompt} tokens (images included), over this server's "
                            f"limit of {limit} (--max-prompt-tokens)")
        context = self.context_length
        if context is None:
            return options
        # OpenAI's and vLLM's own words, which clients and their users already know.
        if prompt >= context:
            raise _too_long(f"This model's maximum context length is {context} tokens. However, your messages "
                            f"resulted in {prompt} tokens. Please reduce the length of the messages.")
        wanted = options.max_new_tokens
        if prompt + wanted <= context:
            return options
        if given:
            raise _too_long(f"This model's maximum context length is {context} tokens. However, you requested "
                            f"{prompt + wanted} tokens ({prompt} in the messages, {wanted} in the completion). "
                            "Please reduce the length of the messages or completion.")
        return dataclasses.replace(options, max_new_tokens=context - prompt)


def _too_long(message: str) -> APIError:
    return APIError(400, message, "messages", "context_length_exceeded")

"""Grammar-constrained decoding: answers that match a JSON schema, any JSON object, or a regular expression.

Built on xgrammar (what vLLM uses): a grammar is compiled once against the tokenizer's vocabulary
(`Grammars`, on a request thread: compiling a schema takes milliseconds to seconds), then each answer being
decoded has its own matcher (`Constraint`) that masks every token the grammar cannot take next and ends the
answer once the grammar is complete. LLaVA-1.5's paper shows its model answering in a requested JSON format;
this turns that habit into a guarantee.

JSON is compiled without free whitespace between tokens (`any_whitespace=False`): a model may otherwise pad an
answer with newlines until `max_tokens` runs out, and the compact form is the same JSON.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import torch

from vlit.errors import VlitError


def _xgrammar():
    try:
        import xgrammar
    except ImportError:
        raise VlitError("constrained decoding needs xgrammar: pip install 'vlit[serve]'") from None
    return xgrammar


class Grammars:
    """Compiles grammars for one tokenizer and vocabulary; thread-safe, and it keeps what it compiled."""

    def __init__(self, tokenizer, vocab_size: int, end_ids: Sequence[int]):
        xgr = _xgrammar()
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=list(end_ids))
        self.vocab_size = vocab_size
        self._compiler = xgr.GrammarCompiler(info)
        self._lock = threading.Lock()

    def json(self, schema: dict | None = None) -> object:
        """Any JSON object (`schema=None`, OpenAI's `json_object`), or JSON matching `schema`; VlitError naming
        what xgrammar could not compile."""
        text = json.dumps({"type": "object"} if schema is None else schema)
        return self._compile(lambda c: c.compile_json_schema(text, any_whitespace=False), "schema")

    def regex(self, pattern: str) -> object:
        return self._compile(lambda c: c.compile_regex(pattern), "regular expression")

    def _compile(self, how, what: str) -> object:
        with self._lock:
            try:
                return how(self._compiler)
            except (RuntimeError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise VlitError(f"the {what} cannot be compiled into a grammar: {first}") from None


class Constraint:
    """One answer's place in a compiled grammar: masks the scores, follows the chosen tokens."""

    def __init__(self, compiled: object, vocab_size: int):
        xgr = _xgrammar()
        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """float[1, V] scores with every token the grammar cannot take next at -inf (in place)."""
        self._matcher.fill_next_token_bitmask(self._bitmask)
        self._xgr.apply_token_bitmask_inplace(scores, self._bitmask.to(scores.device))
        return scores

    def accept(self, token: int) -> None:
        if not self._matcher.accept_token(token):
            raise VlitError(f"token {token} does not follow the grammar")  # the mask makes this unreachable

    @property
    def complete(self) -> bool:
        """The grammar has ended (it took an end-of-sequence token)."""
        return self._matcher.is_terminated()

"""Candidate answers as tokens: exactly those the chat template produces for each as the assistant's answer, the
tokens training learns (see `vlit.inference.ranking` for how they are scored).

`include_end=True` adds the template's end-of-turn marker, so "bag" is told apart from "bag pack": the former must
be followed by the end of the answer. `include_end=False` is the answer text alone, as InstructBLIP scores it. A
BPE tokenizer may merge the prompt's last token into an answer's first word (after Llama's `[/INST] ` the space
merges into " red" but not into "7"): the prompt is then cut to the tokens every candidate's full sequence agrees
on, and the rest of it becomes each candidate's context (attended, not scored).
"""

from __future__ import annotations

from dataclasses import dataclass

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import Processor
from vlit.errors import VlitError


@dataclass(frozen=True)
class CandidateTokens:
    """Candidates as token ids after the generation prompt less its last `prompt_drop` tokens; the first
    `context[i]` ids of candidate i are the rest of the prompt (attended to, not scored)."""

    prompt_drop: int
    ids: list[list[int]]
    context: list[int]

    def scored(self, i: int) -> list[int]:
        return self.ids[i][self.context[i]:]


def require_user_turn_last(conversation: Conversation, purpose: str) -> None:
    """An answer is wanted: the conversation must end with a user turn."""
    if not conversation.messages or conversation.messages[-1].role != "user":
        where = f"conversation {conversation.id}" if conversation.id is not None else "conversation"
        raise VlitError(f"{where}: the last turn must be the user's to {purpose}")


def _answer_text(processor: Processor, conversation: Conversation, prompt: str, candidate: str,
                 include_end: bool) -> str:
    """What the template writes after the prompt for `candidate`, up to the end of the learned answer."""
    answered = conversation.add("assistant", candidate)
    segments = processor.template.render(answered, False, processor.system_prompt)
    full, end = "", 0
    for s in segments:
        full += s.text
        end = len(full) if s.learned else end
    if not full.startswith(prompt) or end <= len(prompt):
        raise VlitError(f"candidate {candidate!r}: the chat template does not render it after the prompt")
    piece = full[len(prompt):end]
    if include_end:
        return piece
    at = piece.find(candidate)
    if at < 0:
        raise VlitError(f"candidate {candidate!r}: the chat template changes the answer text")
    return piece[: at + len(candidate)]


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def tokenize_candidates(processor: Processor, conversation: Conversation, candidates: list[str],
                        include_end: bool = True) -> CandidateTokens:
    """Token ids of each candidate as the assistant's answer to `conversation` (which ends with a user turn),
    after the prompt tokens that every candidate's full sequence shares."""
    require_user_turn_last(conversation, "rank answers")
    prompt = processor.render(conversation, add_generation_prompt=True)
    tokenize = lambda text: processor.tokenizer(text, add_special_tokens=not processor.template.renders_bos)
    prompt_ids = tokenize(prompt)["input_ids"]
    full = [tokenize(prompt + _answer_text(processor, conversation, prompt, c, include_end))["input_ids"]
            for c in candidates]
    kept = [_common_prefix(prompt_ids, f) for f in full]
    shared = min(kept, default=len(prompt_ids))
    if processor.image_token_id in prompt_ids[shared:]:
        raise VlitError("candidates: the tokenizer merges an answer into the image marker")
    for c, f, k in zip(candidates, full, kept, strict=True):
        if len(f) == k:
            raise VlitError(f"candidate {c!r}: no tokens to score")
    return CandidateTokens(len(prompt_ids) - shared, [f[shared:] for f in full], [k - shared for k in kept])


def candidate_ids(processor: Processor, conversation: Conversation, candidate: str,
                  include_end: bool = True) -> list[int]:
    """The scored token ids of one candidate answer (see `tokenize_candidates`)."""
    return tokenize_candidates(processor, conversation, [candidate], include_end).scored(0)

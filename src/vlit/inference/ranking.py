"""Ranked answers: InstructBLIP's constrained decoding for classification and multiple choice.

Each candidate answer is scored by its log-likelihood given the prompt. The prompt (image included) runs
through the LLM once; its KV cache is repeated across the candidates, which then run as one right-padded batch
whose attention mask spans prompt + candidate. The first candidate token's log-probability comes from the
prompt's last logits; padding never counts, neither in the sum nor in the mean's token count.

Which tokens a candidate is: exactly those the chat template produces for it as the assistant's answer, the
tokens training learns. `include_end=True` (the default) adds the template's end-of-turn marker, so "bag" is
told apart from "bag pack": the former must be followed by the end of the answer. `include_end=False` scores
the answer text alone, as InstructBLIP does. A BPE tokenizer may merge the prompt's last token into an
answer's first word (after Llama's `[/INST] ` the space merges into " red" but not into "7"): the cached
prompt is then the tokens every candidate's full sequence agrees on, the rest of the prompt is fed with each
candidate that keeps it (attended, not scored), and each candidate is scored on the tokens training learns
for it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import Processor
from vlit.errors import VlitError
from vlit.models.feature_cache import encode_images
from vlit.models.vlm import VisionLanguageModel

Normalize = Literal["sum", "mean"]


@dataclass(frozen=True)
class RankResult:
    """Candidates with their scores (log-likelihoods, summed or per token), in the order given."""

    candidates: list[str]
    scores: list[float]
    best: str

    def ranked(self) -> list[tuple[str, float]]:
        """(candidate, score) pairs, best first."""
        return sorted(zip(self.candidates, self.scores, strict=True), key=lambda p: -p[1])


@dataclass(frozen=True)
class CandidateTokens:
    """Candidates as token ids after the generation prompt less its last `prompt_drop` tokens; the first
    `context[i]` ids of candidate i are the rest of the prompt (attended to, not scored)."""

    prompt_drop: int
    ids: list[list[int]]
    context: list[int]

    def scored(self, i: int) -> list[int]:
        return self.ids[i][self.context[i]:]


@dataclass(frozen=True)
class PromptState:
    """The prompt after one LLM pass: its length, the next-token log-probs and its KV cache (batch 1)."""

    length: int
    next_logprobs: torch.Tensor
    """float[V]: log-probabilities of the first answer token."""
    cache: object


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


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout: the Q-Former has some) for the block, then every module's own mode back, so
    ranking during training neither gets noisy scores nor switches training off."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _prompt_inputs(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                   image_features: torch.Tensor | None, drop: int) -> tuple[torch.Tensor, dict]:
    """long[1, P] prompt ids (less the last `drop`) and the image arguments of `embed_multimodal`."""
    require_user_turn_last(conversation, "rank answers")
    example = processor.encode(conversation, add_generation_prompt=True)
    batch = processor.collate([example], with_pixels=False, with_labels=False).to(model.device)
    if image_features is None and batch.images:
        image_features = encode_images(model, processor, batch.images)
    ids = batch.input_ids[:, : batch.input_ids.shape[1] - drop]
    return ids, {"image_features": image_features, "side": batch.side}


@torch.no_grad()
def encode_prompt(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                  image_features: torch.Tensor | None = None, drop: int = 0) -> PromptState:
    """Run the generation prompt (less its last `drop` tokens) through the LLM once, keeping its KV cache."""
    ids, images = _prompt_inputs(model, processor, conversation, image_features, drop)
    embeds = model.embed_multimodal(ids, **images)
    out = model.llm(inputs_embeds=embeds, attention_mask=torch.ones_like(ids), use_cache=True)
    return PromptState(ids.shape[1], out.logits[0, -1].float().log_softmax(-1), out.cache)


@torch.no_grad()
def score_after_prompt(model: VisionLanguageModel, prompt: PromptState, candidates: list[list[int]],
                       pad_id: int, context: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float[C] summed log-likelihoods and long[C] counts of the scored tokens of token-id candidates (the
    first `context[i]` tokens of candidate i are attended to but not scored), in one batched pass over a copy
    of the prompt's cache repeated C times."""
    device = model.device
    count, width = len(candidates), max(len(c) for c in candidates)
    context = context or [0] * count
    ids = torch.full((count, width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((count, width), dtype=torch.long, device=device)
    scored = torch.zeros((count, width), dtype=torch.long, device=device)
    for i, c in enumerate(candidates):
        ids[i, : len(c)] = torch.tensor(c, device=device)
        mask[i, : len(c)] = 1
        scored[i, context[i]: len(c)] = 1
    cache = copy.deepcopy(prompt.cache)  # the forward appends to the cache; the prompt's copy stays reusable
    cache.batch_repeat_interleave(count)
    attention = torch.cat([torch.ones((count, prompt.length), dtype=torch.long, device=device), mask], dim=1)
    positions = (prompt.length + torch.arange(width, device=device)).expand(count, -1)
    logits = model.llm(inputs_embeds=model.embed_multimodal(ids), attention_mask=attention,
                       position_ids=positions, cache=cache, use_cache=True).logits
    logprobs = logits.float().log_softmax(-1)
    first = prompt.next_logprobs[ids[:, 0]].unsqueeze(1)
    rest = logprobs[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    token_logprobs = torch.cat([first, rest], dim=1) * scored
    return token_logprobs.sum(1), scored.sum(1)


def _result(candidates: list[str], scores: torch.Tensor) -> RankResult:
    values = scores.tolist()
    return RankResult(list(candidates), values, candidates[max(range(len(values)), key=values.__getitem__)])


def rank(model: VisionLanguageModel, processor: Processor, conversation: Conversation, candidates: list[str],
         normalize: Normalize = "sum", include_end: bool = True, image_features: torch.Tensor | None = None,
         batch_size: int = 32) -> RankResult:
    """Score every candidate answer by its log-likelihood given the prompt (`sum`, or `mean` per token).

    `image_features` float[I, N, Dv] skips the vision encoder (the pipeline passes cached features);
    candidates run `batch_size` at a time against the prompt's one KV cache. Runs in eval mode.
    """
    if not candidates:
        raise VlitError("candidates: give at least one candidate answer")
    if normalize not in ("sum", "mean"):
        raise VlitError(f"normalize: {normalize!r} is not 'sum' or 'mean'")
    if model.seq2seq:
        return _rank_seq2seq(model, processor, conversation, candidates, normalize, include_end, image_features,
                             batch_size)
    tokens = tokenize_candidates(processor, conversation, candidates, include_end)
    pad = processor.tokenizer.pad_token_id
    sums, counts = [], []
    with evaluating(model):
        prompt = encode_prompt(model, processor, conversation, image_features, tokens.prompt_drop)
        for start in range(0, len(candidates), batch_size):
            chunk = slice(start, start + batch_size)
            s, n = score_after_prompt(model, prompt, tokens.ids[chunk], pad, tokens.context[chunk])
            sums.append(s)
            counts.append(n)
    total, count = torch.cat(sums), torch.cat(counts)
    return _result(candidates, total / count if normalize == "mean" else total)


def _rank_seq2seq(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                  candidates: list[str], normalize: Normalize, include_end: bool,
                  image_features: torch.Tensor | None, batch_size: int) -> RankResult:
    from vlit.inference.ranking_seq2seq import decoder_candidates, encode_source, score_labels

    ids = decoder_candidates(processor, conversation, candidates, include_end)
    sums, counts = [], []
    with evaluating(model):
        hidden, mask = encode_source(model, processor, conversation, image_features)
        for start in range(0, len(ids), batch_size):
            s, n = score_labels(model, hidden, mask, ids[start: start + batch_size])
            sums.append(s)
            counts.append(n)
    total, count = torch.cat(sums), torch.cat(counts)
    return _result(candidates, total / count if normalize == "mean" else total)


@torch.no_grad()
def score_full(model: VisionLanguageModel, processor: Processor, conversation: Conversation, candidate: str,
               normalize: Normalize = "sum", include_end: bool = True,
               image_features: torch.Tensor | None = None) -> float:
    """One candidate scored as a whole sequence, prompt and all (the baseline `rank` must equal)."""
    if model.seq2seq:
        from vlit.inference.ranking_seq2seq import decoder_candidates

        ids = decoder_candidates(processor, conversation, [candidate], include_end)[0]
        with evaluating(model):
            prompt, images = _prompt_inputs(model, processor, conversation, image_features, 0)
            labels = torch.tensor([ids], device=prompt.device)
            logits = model(prompt, torch.ones_like(prompt), labels=labels, **images).logits[0].float()
        total = logits.log_softmax(-1).gather(-1, labels[0][:, None]).sum()
        return float(total / len(ids) if normalize == "mean" else total)
    tokens = tokenize_candidates(processor, conversation, [candidate], include_end)
    ids = tokens.scored(0)  # alone, a candidate has no prompt context of its own
    with evaluating(model):
        prompt, images = _prompt_inputs(model, processor, conversation, image_features, tokens.prompt_drop)
        full = torch.cat([prompt, torch.tensor([ids], device=prompt.device)], dim=1)
        logits = model.llm(inputs_embeds=model.embed_multimodal(full, **images)).logits[0].float()
    logprobs = logits[prompt.shape[1] - 1: -1].log_softmax(-1)
    total = logprobs.gather(-1, torch.tensor(ids, device=prompt.device)[:, None]).sum()
    return float(total / len(ids) if normalize == "mean" else total)


def rank_letters(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                 letters: tuple[str, ...] = ("A", "B", "C", "D"),
                 image_features: torch.Tensor | None = None) -> RankResult:
    """Multiple choice by letter: one forward pass, the next-token distribution restricted to the letters'
    tokens. Scores are log-probabilities renormalised over the letters (their exps sum to 1)."""
    if not letters:
        raise VlitError("letters: give at least one option letter")
    if model.seq2seq:
        from vlit.inference.ranking_seq2seq import decoder_candidates, encode_source, first_token_logprobs

        first = [ids[0] for ids in decoder_candidates(processor, conversation, list(letters), include_end=False)]
        if len(set(first)) != len(first):
            raise VlitError(f"letters: {', '.join(letters)} do not have distinct tokens")
        with evaluating(model):
            logprobs = first_token_logprobs(model, *encode_source(model, processor, conversation, image_features))
        logprobs = logprobs[first]
        return _result(list(letters), logprobs - logprobs.logsumexp(0))
    tokens = tokenize_candidates(processor, conversation, list(letters), include_end=False)
    for letter, ids in zip(letters, tokens.ids, strict=True):
        if len(ids) != 1:  # also when it keeps prompt context that other letters merge away
            raise VlitError(f"letters: {letter!r} is {len(ids)} tokens after the prompt, not one")
    first = [ids[0] for ids in tokens.ids]
    if len(set(first)) != len(first):
        raise VlitError(f"letters: {', '.join(letters)} do not have distinct tokens")
    with evaluating(model):
        state = encode_prompt(model, processor, conversation, image_features, tokens.prompt_drop)
    logprobs = state.next_logprobs[first]
    return _result(list(letters), logprobs - logprobs.logsumexp(0))

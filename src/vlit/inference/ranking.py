"""Ranked answers: InstructBLIP's constrained decoding for classification and multiple choice.

Each candidate answer is scored by its log-likelihood given the prompt (its tokens: `vlit.inference.candidates`).
The prompts of a batch of conversations run through the LLM once, left-padded; each candidate then runs on a
copy of its own prompt's row of the KV cache, all of them as one right-padded batch whose attention mask spans
the prompt (its padding masked out) and the candidate, at the positions it would have alone. The first
candidate token's log-probability comes from the prompt's last logits; padding never counts, neither in the sum
nor in the mean's token count.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

import torch

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import Processor
from vlit.errors import VlitError
from vlit.inference.candidates import require_user_turn_last, tokenize_candidates
from vlit.inference.kv_rows import select_rows
from vlit.models.feature_cache import encode_images
from vlit.models.packing import real_positions
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
class PromptState:
    """B prompts after one LLM pass, left-padded: their mask, the next-token log-probs and their KV cache."""

    mask: torch.Tensor
    """long[B, P], 0 on each row's left padding."""
    next_logprobs: torch.Tensor
    """float[B, V]: log-probabilities of each prompt's first answer token."""
    cache: object


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


def _prompt_examples(processor: Processor, conversations: Sequence[Conversation],
                     drops: Sequence[int] | None) -> list:
    """Each conversation's generation prompt, less its last `drops[i]` tokens."""
    examples = []
    for conversation, drop in zip(conversations, drops or [0] * len(conversations), strict=True):
        require_user_turn_last(conversation, "rank answers")
        e = processor.encode(conversation, add_generation_prompt=True)
        examples.append(replace(e, input_ids=e.input_ids[: len(e) - drop], labels=e.labels[: len(e) - drop]))
    return examples


@torch.no_grad()
def encode_prompts(model: VisionLanguageModel, processor: Processor, conversations: Sequence[Conversation],
                   image_features: torch.Tensor | None = None, drops: Sequence[int] | None = None,
                   examples: list | None = None) -> PromptState:
    """Run the generation prompts (each less its last `drops[i]` tokens; or `examples`, already encoded) through
    the LLM as one left-padded batch, keeping the KV cache. `image_features` float[I, N, Dv]: every
    conversation's images, in order."""
    examples = examples or _prompt_examples(processor, conversations, drops)
    batch = processor.collate(examples, "left", with_pixels=False, with_labels=False).to(model.device)
    if image_features is None and batch.images:
        image_features = encode_images(model, processor, batch.images)
    embeds = model.embed_multimodal(batch.input_ids, image_features=image_features, side=batch.side)
    mask = batch.attention_mask
    # Positions count each row's own tokens, so a padded row sees what it would alone.
    out = model.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=real_positions(mask),
                    use_cache=True, logits_to_keep=1)
    return PromptState(mask, out.logits[:, -1].float().log_softmax(-1), out.cache)


def encode_prompt(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                  image_features: torch.Tensor | None = None, drop: int = 0) -> PromptState:
    """One generation prompt (less its last `drop` tokens) through the LLM, keeping its KV cache."""
    return encode_prompts(model, processor, [conversation], image_features, [drop])


@torch.no_grad()
def score_after_prompt(model: VisionLanguageModel, prompt: PromptState, candidates: list[list[int]],
                       pad_id: int, context: list[int] | None = None,
                       rows: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float[C] summed log-likelihoods and long[C] counts of the scored tokens of token-id candidates, candidate
    i after prompt `rows[i]` (default: all after prompt 0); its first `context[i]` tokens are attended to but
    not scored. One batched pass over a copy of the prompts' cache rows."""
    device = model.device
    count, width = len(candidates), max(len(c) for c in candidates)
    context = context or [0] * count
    index = torch.tensor(rows or [0] * count, device=device)
    ids = torch.full((count, width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((count, width), dtype=torch.long, device=device)
    scored = torch.zeros((count, width), dtype=torch.long, device=device)
    for i, c in enumerate(candidates):
        ids[i, : len(c)] = torch.tensor(c, device=device)
        mask[i, : len(c)] = 1
        scored[i, context[i]: len(c)] = 1
    prompt_mask = prompt.mask[index]
    attention = torch.cat([prompt_mask, mask], dim=1)
    positions = prompt_mask.sum(1, keepdim=True) + torch.arange(width, device=device)
    logits = model.llm(inputs_embeds=model.embed_multimodal(ids), attention_mask=attention,
                       position_ids=positions, cache=select_rows(prompt.cache, index), use_cache=True).logits
    logprobs = logits.float().log_softmax(-1)
    first = prompt.next_logprobs[index, ids[:, 0]].unsqueeze(1)
    rest = logprobs[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    token_logprobs = torch.cat([first, rest], dim=1) * scored
    return token_logprobs.sum(1), scored.sum(1)


def _result(candidates: list[str], scores: torch.Tensor) -> RankResult:
    values = scores.tolist()
    return RankResult(list(candidates), values, candidates[max(range(len(values)), key=values.__getitem__)])


def _check(candidates: Sequence[str], normalize: str) -> None:
    if not candidates:
        raise VlitError("candidates: give at least one candidate answer")
    if normalize not in ("sum", "mean"):
        raise VlitError(f"normalize: {normalize!r} is not 'sum' or 'mean'")


def rank(model: VisionLanguageModel, processor: Processor, conversation: Conversation, candidates: list[str],
         normalize: Normalize = "sum", include_end: bool = True, image_features: torch.Tensor | None = None,
         batch_size: int = 32) -> RankResult:
    """Score every candidate answer by its log-likelihood given the prompt (`sum`, or `mean` per token).

    `image_features` float[I, N, Dv] skips the vision encoder (the pipeline passes cached features);
    candidates run `batch_size` at a time against the prompt's one KV cache. Runs in eval mode.
    """
    return rank_many(model, processor, [conversation], [candidates], normalize, include_end, image_features,
                     batch_size)[0]


def rank_many(model: VisionLanguageModel, processor: Processor, conversations: Sequence[Conversation],
              candidates: Sequence[list[str]], normalize: Normalize = "sum", include_end: bool = True,
              image_features: torch.Tensor | None = None, batch_size: int = 32) -> list[RankResult]:
    """`rank` for many conversations, each with its own candidates: their prompts run as one batch, then the
    candidates of all of them `batch_size` at a time. `image_features`: every conversation's images, in order."""
    for c in candidates:
        _check(c, normalize)
    if model.seq2seq:
        from vlit.inference.ranking_seq2seq import seq2seq_scores

        results = []
        with evaluating(model):
            for conversation, c, features in zip(conversations, candidates,
                                                 _split_features(conversations, image_features), strict=True):
                total, count = seq2seq_scores(model, processor, conversation, c, include_end, features, batch_size)
                results.append(_result(c, total / count if normalize == "mean" else total))
        return results
    tokens = [tokenize_candidates(processor, conv, c, include_end)
              for conv, c in zip(conversations, candidates, strict=True)]
    examples = _prompt_examples(processor, conversations, [t.prompt_drop for t in tokens])
    longest = max(len(e) for e in examples) + max(len(ids) for t in tokens for ids in t.ids)
    if len(conversations) > 1 and not _fits_window(model, longest):
        return [rank_many(model, processor, [conversation], [c], normalize, include_end, features, batch_size)[0]
                for conversation, c, features in zip(conversations, candidates,
                                                     _split_features(conversations, image_features), strict=True)]
    pairs = [(row, i) for row, t in enumerate(tokens) for i in range(len(t.ids))]
    pad = processor.tokenizer.pad_token_id
    sums, counts = [], []
    with evaluating(model):
        prompt = encode_prompts(model, processor, conversations, image_features, examples=examples)
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start: start + batch_size]
            s, n = score_after_prompt(model, prompt, [tokens[r].ids[i] for r, i in chunk], pad,
                                      [tokens[r].context[i] for r, i in chunk], [r for r, _ in chunk])
            sums.append(s)
            counts.append(n)
    total, count = torch.cat(sums), torch.cat(counts)
    scores = total / count if normalize == "mean" else total
    results, at = [], 0
    for c in candidates:
        results.append(_result(c, scores[at: at + len(c)]))
        at += len(c)
    return results


def _fits_window(model: VisionLanguageModel, width: int) -> bool:
    """Whether a left-padded batch `width` tokens wide keeps every token in the cache: a sliding-window layer
    keeps the last W columns, padding included, so a padded row would lose tokens the row alone keeps."""
    config = model.llm.config
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    return not window or width <= window


def _split_features(conversations: Sequence[Conversation],
                    features: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Each conversation's rows of the features of all their images (None: none given)."""
    if features is None:
        return [None] * len(conversations)
    out, at = [], 0
    for conversation in conversations:
        n = len(conversation.images)
        out.append(features[at: at + n] if n else None)
        at += n
    return out


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
    return rank_letters_many(model, processor, [conversation], letters, image_features)[0]


def rank_letters_many(model: VisionLanguageModel, processor: Processor, conversations: Sequence[Conversation],
                      letters: tuple[str, ...] = ("A", "B", "C", "D"),
                      image_features: torch.Tensor | None = None) -> list[RankResult]:
    """`rank_letters` for many conversations, their prompts run as one batch (an encoder-decoder's one by one).
    `image_features`: every conversation's images, in order."""
    if not letters:
        raise VlitError("letters: give at least one option letter")
    if model.seq2seq:
        from vlit.inference.ranking_seq2seq import seq2seq_letter_logprobs

        with evaluating(model):
            rows = [seq2seq_letter_logprobs(model, processor, conv, letters, features)
                    for conv, features in zip(conversations, _split_features(conversations, image_features),
                                              strict=True)]
        return [_result(list(letters), x - x.logsumexp(0)) for x in rows]
    tokens = [tokenize_candidates(processor, conv, list(letters), include_end=False) for conv in conversations]
    for t in tokens:
        for letter, ids in zip(letters, t.ids, strict=True):
            if len(ids) != 1:  # also when it keeps prompt context that other letters merge away
                raise VlitError(f"letters: {letter!r} is {len(ids)} tokens after the prompt, not one")
        if len({ids[0] for ids in t.ids}) != len(letters):
            raise VlitError(f"letters: {', '.join(letters)} do not have distinct tokens")
    with evaluating(model):
        state = encode_prompts(model, processor, conversations, image_features, [t.prompt_drop for t in tokens])
    results = []
    for row, t in enumerate(tokens):
        logprobs = state.next_logprobs[row, [ids[0] for ids in t.ids]]
        results.append(_result(list(letters), logprobs - logprobs.logsumexp(0)))
    return results

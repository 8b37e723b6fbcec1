"""Decoding options -> transformers' logits processors, in one order for `Pipeline.generate_ids` (through
`generate`) and the serving `Engine` (one row at a time).

The order is vLLM's and transformers': penalties and biases change the model's scores first (repetition, then
OpenAI's frequency and presence penalties, `logit_bias`, the `min_new_tokens` ban on ending); then, only when
sampling, the warpers reshape the distribution (temperature, top-k, top-p, min-p). Each processor is
transformers' own where one exists; OpenAI's frequency and presence penalties have no transformers
counterpart, so `OpenAIPenalties` implements their published formula.

Processors see the answer's ids only, never the prompt's: `generate` fed `inputs_embeds` (as vlit feeds it)
passes them nothing else, and the engine does the same, so both penalise the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

if TYPE_CHECKING:
    from vlit.inference.options import GenerationOptions


class OpenAIPenalties(LogitsProcessor):
    """OpenAI's definition: `logit[j] -= count[j] * frequency + (count[j] > 0) * presence`, where `count[j]` is
    how often token j appears in the answer so far (the tokens after the first `prompt_length`)."""

    def __init__(self, prompt_length: int, frequency: float, presence: float):
        self.prompt_length = prompt_length
        self.frequency = frequency
        self.presence = presence

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        answer = input_ids[:, self.prompt_length:]
        counts = torch.zeros_like(scores).scatter_add_(1, answer, torch.ones_like(answer, dtype=scores.dtype))
        return scores - counts * self.frequency - (counts > 0).to(scores.dtype) * self.presence


def penalties(options: GenerationOptions, end_ids: Sequence[int], prompt_length: int = 0,
              device: torch.device | str = "cpu") -> LogitsProcessorList:
    """The score-changing processors the options ask for (none at their defaults). `end_ids` are the tokens
    that end an answer (held back until `min_new_tokens` are out); `prompt_length` where the answer starts in
    the ids a processor sees; `device` the scores' (the `min_new_tokens` processor keeps its end ids there: on
    the CPU beside CUDA scores, generating failed on a GPU)."""
    out = LogitsProcessorList()
    if options.repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(float(options.repetition_penalty)))
    if options.frequency_penalty or options.presence_penalty:
        out.append(OpenAIPenalties(prompt_length, options.frequency_penalty, options.presence_penalty))
    if options.logit_bias:
        out.append(SequenceBiasLogitsProcessor([[[token], bias] for token, bias in options.logit_bias]))
    if options.min_new_tokens:
        out.append(MinNewTokensLengthLogitsProcessor(prompt_length, options.min_new_tokens, list(end_ids),
                                                      device=str(device)))
    return out


def warpers(options: GenerationOptions) -> LogitsProcessorList:
    """The sampling warpers (none for greedy decoding), as `generate` builds them from the same fields."""
    out = LogitsProcessorList()
    if not options.do_sample:
        return out
    if options.temperature != 1.0:
        out.append(TemperatureLogitsWarper(options.temperature))
    if options.top_k:
        out.append(TopKLogitsWarper(options.top_k))
    if options.top_p < 1.0:
        out.append(TopPLogitsWarper(options.top_p))
    if options.min_p:
        out.append(MinPLogitsWarper(options.min_p))
    return out

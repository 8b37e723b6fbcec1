"""Inference: batched, streamed and multi-turn generation, ranked answers, grounding."""

from vlit.inference.grounding import (
    GroundedBox,
    draw_grounding,
    format_grounding,
    parse_grounding,
    save_grounding,
)
from vlit.inference.pipeline import GenerationOptions, Pipeline
from vlit.inference.ranking import (
    RankResult,
    candidate_ids,
    rank,
    rank_letters,
    score_full,
    tokenize_candidates,
)

__all__ = [
    "GenerationOptions",
    "GroundedBox",
    "Pipeline",
    "RankResult",
    "candidate_ids",
    "draw_grounding",
    "format_grounding",
    "parse_grounding",
    "rank",
    "rank_letters",
    "save_grounding",
    "score_full",
    "tokenize_candidates",
]

"""Inference: batched, streamed and multi-turn generation, ranked answers, grounding."""

from vlit.inference.candidates import candidate_ids, tokenize_candidates
from vlit.inference.grounding import (
    GroundedBox,
    draw_grounding,
    format_grounding,
    parse_grounding,
    save_grounding,
)
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.inference.ranking import RankResult, rank, rank_letters, rank_many, score_full

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
    "rank_many",
    "save_grounding",
    "score_full",
    "tokenize_candidates",
]

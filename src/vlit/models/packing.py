"""A training batch packed into one sequence: every row's real tokens one after another, no padding computed.

Position ids restart at 0 with each row; transformers' causal LMs read that as packed sequences and mask
attention across rows (`masking_utils.find_packed_sequence_indices` for eager and SDPA, variable-length kernels
for FlashAttention), so each row sees exactly what it would alone. The quickstart recipes' rows of a few dozen
tokens at batch 4 are 7-12% padding after length grouping; packed, their CPU training steps are 1.01-1.13x
faster (`benchmarks/packing.py`), and only the positions whose next token is learned get logits. With eager or
SDPA attention the mask spans the whole packed sequence (its length squared), so it suits short rows;
FlashAttention packs long ones without that cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlit.data.loading.processor import IGNORE_INDEX


def real_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """long[B, L] positions that count each row's real tokens only (0 on padding before them), so a left- or
    right-padded row, or a packed one, gets the positions it would have alone."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@dataclass(frozen=True)
class Packed:
    """B padded rows as one: what the LLM reads and what its loss compares."""

    embeds: torch.Tensor
    """float[1, N, D]: the rows' real tokens, row after row (N = the batch's unpadded token count)."""
    position_ids: torch.Tensor
    """long[1, N]: each row's own positions, from 0."""
    logit_positions: torch.Tensor
    """long[K]: the packed positions whose next token is learned, the only ones that need logits."""
    targets: torch.Tensor
    """long[K]: the learned token after each of them (shifted within its row, never across rows)."""
    rows: torch.Tensor
    """long[K]: the batch row of each target."""
    num_rows: int


def pack_rows(embeds: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Packed:
    """float[B, L, D] embeddings, long[B, L] mask (0 on padding, either side) and labels -> one packed row."""
    keep = attention_mask.bool()
    # Each position's next label within its own row; a row's last real token predicts nothing (padding or
    # the end), so no target crosses into the next row.
    following = torch.cat([labels[:, 1:], labels.new_full((labels.shape[0], 1), IGNORE_INDEX)], dim=1)
    following = following.masked_fill(~torch.cat([keep[:, 1:], keep.new_zeros(keep.shape[0], 1)], dim=1),
                                      IGNORE_INDEX)
    rows = torch.arange(labels.shape[0], device=labels.device).unsqueeze(1).expand_as(labels)[keep]
    following = following[keep]
    positions = (following != IGNORE_INDEX).nonzero().squeeze(1)
    return Packed(embeds=embeds[keep].unsqueeze(0),
                  position_ids=real_positions(attention_mask)[keep].unsqueeze(0),
                  logit_positions=positions, targets=following[positions], rows=rows[positions],
                  num_rows=labels.shape[0])


def packed_loss(logits: torch.Tensor, packed: Packed, loss_per: str) -> torch.Tensor:
    """The loss of the padded batch, from logits float[1, K, V] at `packed.logit_positions`: the mean over the
    learned tokens (`token`), or each row's mean, then the mean over the rows that have any (`sample`).
    float32, like the LLM's own loss."""
    tokens = nn.functional.cross_entropy(logits[0].float(), packed.targets, reduction="none")
    return tokens.mean() if loss_per == "token" else mean_over_rows(tokens, packed.rows, packed.num_rows)


def mean_over_rows(tokens: torch.Tensor, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    """The `sample` loss: float[K] token losses averaged within their row (long[K] row ids), then over the
    rows that have any, so a one-word answer weighs as much as a paragraph beside it."""
    sums = tokens.new_zeros(num_rows).index_add_(0, rows, tokens)
    counts = tokens.new_zeros(num_rows).index_add_(0, rows, torch.ones_like(tokens))
    learned = counts > 0
    return (sums[learned] / counts[learned]).mean()

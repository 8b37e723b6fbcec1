"""A KV cache whose rows join and leave while the others keep decoding (continuous batching).

Rows are left-padded to one width: each row's real tokens end at the last column, its padding columns are
masked out of attention (and zero in the cache, so they add nothing), and positions count each row's own
tokens, so a row sees exactly the positions and keys it would see alone. A joining row (prefilled alone) is
padded to the batch's width, or the batch to its own; a leaving row is dropped, and columns that have become
padding in every row are cut away.

Works on transformers' `DynamicCache` with full-attention layers (`DynamicLayer`: keys and values float[B, H,
T, D]), through the cache's own methods where it has them (`batch_select_indices`); `mergeable` says
whether an LLM's cache is of that kind.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


def mergeable(cache: object) -> bool:
    """Whether rows of `cache` can be joined by padding (every layer a plain full-attention `DynamicLayer`)."""
    layers = getattr(cache, "layers", None)
    return isinstance(cache, DynamicCache) and bool(layers) and all(type(x) is DynamicLayer for x in layers)


def _pad_left(t: torch.Tensor, width: int) -> torch.Tensor:
    if width == 0:
        return t
    return torch.cat([t.new_zeros((*t.shape[:-2], width, t.shape[-1])), t], dim=-2)


def _slice(cache: DynamicCache, rows: slice, columns: slice) -> DynamicCache:
    """A new cache holding a copy of `cache`'s keys and values in `rows` and `columns`."""
    return DynamicCache(ddp_cache_data=[(layer.keys[rows, :, columns], layer.values[rows, :, columns])
                                        for layer in cache.layers])


def select_rows(cache: object, rows: torch.Tensor) -> object:
    """A new cache holding `rows` of `cache` (long[R], repeats allowed), which stays as it was."""
    if mergeable(cache):
        return DynamicCache(ddp_cache_data=[(layer.keys[rows], layer.values[rows]) for layer in cache.layers])
    picked = copy.deepcopy(cache)  # other kinds of cache: their own selection, on a copy
    picked.batch_select_indices(rows)
    return picked


def prefix(cache: DynamicCache, length: int) -> DynamicCache:
    """A copy of a one-row cache holding its first `length` tokens (a prompt prefix to decode on from)."""
    return _slice(cache, slice(None), slice(0, length))


class RowCache:
    """The running batch's cache, its attention mask long[B, T] and each row's length long[B]."""

    def __init__(self):
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None
        self.lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.mask is None else self.mask.shape[0]

    def extend(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Add the rows of a left-padded cache, with their attention mask long[N, T], after the others."""
        lengths = mask.sum(1)
        if self.cache is None:
            self.cache, self.mask, self.lengths = cache, mask, lengths
            return
        width, theirs = self.mask.shape[1], mask.shape[1]
        grow, pad = max(theirs - width, 0), max(width - theirs, 0)
        for mine, other in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, grow), _pad_left(other.keys, pad)])
            mine.values = torch.cat([_pad_left(mine.values, grow), _pad_left(other.values, pad)])
        self.mask = torch.cat([F.pad(self.mask, (grow, 0)), F.pad(mask, (pad, 0))])
        self.lengths = torch.cat([self.lengths, lengths])

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (in this order); cut the columns left that are padding in all of them."""
        if not rows:
            self.cache = self.mask = self.lengths = None
            return
        index = torch.tensor(rows, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.lengths = self.mask[index], self.lengths[index]
        cut = self.mask.shape[1] - int(self.lengths.max())
        if cut > 0:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., cut:, :], layer.values[..., cut:, :]
            self.mask = self.mask[:, cut:]

    def step_inputs(self) -> dict:
        """The LLM's arguments for one new token per row (besides `inputs_embeds`), the mask grown by it."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self), 1))], dim=1)
        positions = self.lengths[:, None].clone()
        self.lengths = self.lengths + 1
        return {"attention_mask": self.mask, "position_ids": positions, "cache": self.cache, "use_cache": True}

    def row(self, i: int) -> DynamicCache:
        """A copy of row i's cache without its padding (one row)."""
        return _slice(self.cache, slice(i, i + 1), slice(self.mask.shape[1] - int(self.lengths[i]), None))

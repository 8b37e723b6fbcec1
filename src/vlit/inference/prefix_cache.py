"""Prefix caching: the KV cache of a conversation's earlier turns, reused by its next turn.

A chat client re-sends the whole conversation each turn, so the next prompt starts with the previous prompt and
(re-tokenized, as the template writes it) the previous answer. Each finished answer leaves its prompt and
answer tokens with their KV cache here; a new prompt is prefilled only from where it stops agreeing with the
longest stored one. Image placeholders carry no identity of their own, so a prefix counts only up to the first
image that differs (or is cut by the prefix), compared by the feature cache's image keys.

Only valid when a token's keys and values depend on the tokens before it alone: a connector that reads the
instruction (InstructBLIP's Q-Former) gives an image different tokens for a different question, so the engine
turns prefix caching off for it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from vlit.inference.kv_rows import prefix


@dataclass(frozen=True)
class _Entry:
    ids: torch.Tensor
    """long[L]: the tokens the cache holds."""
    images: tuple[str, ...]
    cache: object


class PrefixCache:
    """The `capacity` most recently stored (ids, image keys, one-row KV cache) entries."""

    def __init__(self, capacity: int, image_token_id: int, tokens_per_image: int):
        self.capacity = capacity
        self.image_token_id = image_token_id
        self.tokens_per_image = tokens_per_image
        self.hits = 0
        self.reused_tokens = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()

    def store(self, ids: list[int], images: tuple[str, ...], cache: object) -> None:
        if self.capacity < 1 or not ids:
            return
        tensor = torch.tensor(ids)
        for key, e in list(self._entries.items()):  # an entry the new one extends is no longer needed
            if len(e.ids) <= len(tensor) and torch.equal(e.ids, tensor[: len(e.ids)]):
                del self._entries[key]
        self._entries[id(cache)] = _Entry(tensor, images, cache)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def lookup(self, ids: list[int], images: tuple[str, ...]) -> tuple[int, object | None]:
        """(n, a copy of the cache of `ids[:n]`) for the longest stored prefix, n < len(ids) so that one token
        is left to prefill; (0, None) when none agrees."""
        tensor = torch.tensor(ids)
        best, found = 0, None
        for key, e in self._entries.items():
            n = self._usable(e, tensor, images)
            if n > best:
                best, found = n, key
        if found is None:
            return 0, None
        self._entries.move_to_end(found)
        self.hits += 1
        self.reused_tokens += best
        return best, prefix(self._entries[found].cache, best)

    def _usable(self, entry: _Entry, ids: torch.Tensor, images: tuple[str, ...]) -> int:
        width = min(len(entry.ids), len(ids) - 1)
        differs = (entry.ids[:width] != ids[:width]).nonzero()
        n = int(differs[0]) if len(differs) else width
        slots = (ids[:n] == self.image_token_id).nonzero().flatten().tolist()
        per = self.tokens_per_image
        for i in range(0, len(slots), per):
            image = i // per
            whole = i + per <= len(slots)
            if not whole or image >= len(entry.images) or image >= len(images) or entry.images[image] != images[image]:
                return slots[i]  # the prefix ends where this image's placeholders start
        return n

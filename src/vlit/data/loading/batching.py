"""Batches of one modality and similar lengths, from an endless stream of draws (LLaVA's
`group_by_modality_length`).

Padding every sequence of a batch to its longest one wastes compute in proportion to the spread of lengths,
and a batch mixing image and text-only rows runs the vision tower for part of it only. So the stream is cut
into mega-batches of `batch_size * group_size` items; each mega-batch is split by modality, sorted by length
and chunked into batches, which are then served in a seeded random order. A modality's last, partial batch
waits for the next mega-batch instead of being padded out with the other modality, so every batch holds a
single modality; only the end of a finite stream yields partial batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from vlit.errors import VlitError

T = TypeVar("T")


@runtime_checkable
class Resumable(Protocol):
    """A stream that is its own iterator and whose position can be saved and restored (MixtureSampler)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def group_batches(items: Sequence[T], length_fn: Callable[[T], int], is_multimodal_fn: Callable[[T], bool],
                  batch_size: int, final: bool) -> tuple[list[list[T]], list[T]]:
    """Split by modality, sort each by length (longest first, ties in arrival order), chunk into batches.

    Returns the batches and the left-over items (each modality's partial batch) unless `final`, in which case
    the partial batches are returned too.
    """
    batches: list[list[T]] = []
    carry: list[T] = []
    for multimodal in (True, False):
        group = [item for item in items if bool(is_multimodal_fn(item)) == multimodal]
        group.sort(key=length_fn, reverse=True)
        full = len(group) - len(group) % batch_size
        batches += [group[i:i + batch_size] for i in range(0, full, batch_size)]
        rest = group[full:]
        if rest and final:
            batches.append(rest)
        else:
            carry += rest
    return batches, carry


class LengthGroupedBatches(Generic[T]):
    """Iterator of batches (lists of stream items) grouped by modality and length.

    If the stream is `Resumable`, `state_dict()` captures the stream position right after the current
    mega-batch was filled together with its batches not yet served, and `load_state_dict()` restores both:
    the resumed run yields exactly the batches the original would have.
    """

    def __init__(self, stream: Iterable[T], length_fn: Callable[[T], int],
                 is_multimodal_fn: Callable[[T], bool], batch_size: int, group_size: int = 32,
                 seed: int = 0) -> None:
        if batch_size < 1 or group_size < 1:
            raise VlitError(f"batching: batch_size and group_size must be >= 1, got {batch_size}, "
                            f"{group_size}")
        self._source = stream
        self._stream = iter(stream)
        self.length_fn = length_fn
        self.is_multimodal_fn = is_multimodal_fn
        self.batch_size = batch_size
        self.group_size = group_size
        self.seed = seed
        self._pending: list[list[T]] = []
        self._carry: list[T] = []
        self._megabatches = 0
        self._exhausted = False
        self._stream_state = self._snapshot()

    def _snapshot(self) -> dict[str, Any] | None:
        return self._source.state_dict() if isinstance(self._source, Resumable) else None

    def __iter__(self) -> LengthGroupedBatches[T]:
        return self

    def __next__(self) -> list[T]:
        if not self._pending:
            self._fill()
        if not self._pending:
            raise StopIteration
        return self._pending.pop(0)

    def _fill(self) -> None:
        if self._exhausted and not self._carry:
            return
        need = self.batch_size * self.group_size - len(self._carry)
        fresh = list(islice(self._stream, need))
        self._exhausted = self._exhausted or len(fresh) < need
        self._stream_state = self._snapshot()
        batches, self._carry = group_batches(self._carry + fresh, self.length_fn, self.is_multimodal_fn,
                                             self.batch_size, final=self._exhausted)
        order = np.random.default_rng([self.seed, self._megabatches]).permutation(len(batches))
        self._pending = [batches[i] for i in order]
        self._megabatches += 1

    def state_dict(self) -> dict[str, Any]:
        """Items are stored as they are (pickle or torch.save the dict; JSON turns tuples into lists)."""
        if not isinstance(self._source, Resumable):
            raise VlitError("batching: the stream has no state_dict(), so the batch order cannot be resumed")
        return {
            "pending": [list(batch) for batch in self._pending],
            "carry": list(self._carry),
            "megabatches": self._megabatches,
            "exhausted": self._exhausted,
            "stream": self._stream_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(self._source, Resumable):
            raise VlitError("batching: the stream has no load_state_dict(), so the batch order cannot be "
                            "resumed")
        self._source.load_state_dict(state["stream"])
        self._stream = iter(self._source)
        self._stream_state = state["stream"]
        self._pending = [list(batch) for batch in state["pending"]]
        self._carry = list(state["carry"])
        self._megabatches = int(state["megabatches"])
        self._exhausted = bool(state["exhausted"])


def padding_fraction(lengths_per_batch: Iterable[Sequence[int]]) -> float:
    """Padded positions / all positions when each batch is padded to its longest sequence."""
    padded = total = 0
    for lengths in lengths_per_batch:
        if lengths:
            width = max(lengths) * len(lengths)
            total += width
            padded += width - sum(lengths)
    return padded / total if total else 0.0

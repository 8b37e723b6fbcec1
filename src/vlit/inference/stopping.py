"""Where answers end: cutting decoded text at stop strings (whole, or while it streams) and stopping a
generation from another thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from transformers import StoppingCriteria


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


class StopCutter:
    """Streams text while cutting it at the first stop string: a tail that may be the start of a stop string
    is held back until the next chunk decides; leading and trailing whitespace is dropped, as `chat` does."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = stops
        self.buffer = ""
        self.started = False
        self.stopped = False

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        self.buffer += chunk
        cut = cut_at_stop(self.buffer, self.stops)
        if len(cut) < len(self.buffer):
            self.stopped, self.buffer = True, ""
            return self._emit(cut.rstrip())
        ends = self.buffer.endswith
        keep = max((k for s in self.stops for k in range(1, len(s)) if ends(s[:k])), default=0)
        # Trailing whitespace waits too: it is dropped if nothing follows.
        emit = self.buffer[: len(self.buffer) - keep].rstrip()
        self.buffer = self.buffer[len(emit):]
        return self._emit(emit)

    def finish(self) -> str:
        rest, self.buffer = ("" if self.stopped else self.buffer.rstrip()), ""
        return self._emit(rest)

    def _emit(self, text: str) -> str:
        if not self.started:
            text = text.lstrip()
            self.started = bool(text)
        return text


class Cancel(StoppingCriteria):
    """Stops generation once `event` is set (from another thread)."""

    def __init__(self):
        self.event = threading.Event()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        stop = self.event.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class CancelRows(StoppingCriteria):
    """Stops each row of a batch once its own event is set: one client that leaves ends its own answer, not
    its neighbours' (transformers pads a finished row and ends the call when every row is finished)."""

    def __init__(self, events: Sequence[threading.Event]):
        self.events = list(events)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        stop = torch.tensor([e.is_set() for e in self.events], dtype=torch.bool, device=input_ids.device)
        return stop.repeat_interleave(input_ids.shape[0] // len(self.events))  # beams sit next to each other

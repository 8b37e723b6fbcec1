"""The batches of one stage: draws from the mixture, encoded by the processor, grouped by modality and
length, split across processes. Its position is a small JSON-able dict, restored exactly on resume."""

from __future__ import annotations

import logging
from collections import OrderedDict
from itertools import islice
from pathlib import Path
from typing import Any

from vlit.config import StageConfig
from vlit.data.conversation import Conversation
from vlit.data.loading.batching import LengthGroupedBatches, padding_fraction
from vlit.data.loading.dataset import load_mixture
from vlit.data.loading.mixture import Draw, MixtureSampler
from vlit.data.loading.processor import Example, Processor

log = logging.getLogger(__name__)


class PlainBatches:
    """Consecutive draws as batches, in sampling order (the ungrouped baseline)."""

    def __init__(self, sampler: MixtureSampler, batch_size: int):
        self.sampler = sampler
        self.batch_size = batch_size

    def __iter__(self) -> PlainBatches:
        return self

    def __next__(self) -> list[Draw]:
        return list(islice(self.sampler, self.batch_size))

    def state_dict(self) -> dict[str, Any]:
        return {"stream": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["stream"])


class StageStream:
    """Endless per-process batches of `Example`s for one stage."""

    def __init__(self, stage: StageConfig, root: Path, processor: Processor, seed: int, rank: int = 0,
                 world_size: int = 1, group_by_length: bool = True, group_size: int = 16):
        self.processor = processor
        self.rank, self.world_size = rank, world_size
        self.datasets = load_mixture(stage.data, root)
        self.sampler = MixtureSampler.from_config(stage.data, {n: len(d) for n, d in self.datasets.items()})
        log.info("stage %s: %s", stage.name, self.sampler.describe())
        global_batch = stage.batch_size * world_size
        self._examples: OrderedDict[Draw, Example] = OrderedDict()
        if group_by_length:
            self.batches = LengthGroupedBatches(self.sampler, self._length, self._multimodal, global_batch,
                                                group_size, seed)
        else:
            self.batches = PlainBatches(self.sampler, global_batch)
        self.padding: list[float] = []

    @property
    def total_rows(self) -> int:
        return sum(len(d) for d in self.datasets.values())

    def conversation(self, draw: Draw) -> Conversation:
        """The drawn item as rendered in its epoch, image paths made absolute."""
        dataset = self.datasets[draw.dataset]
        conv = dataset.get(draw.index, draw.epoch)
        images = [str(dataset.image_root / ref) if isinstance(ref, str) else ref for ref in conv.images]
        return Conversation(conv.turns, images, conv.id, conv.meta)

    def example(self, draw: Draw) -> Example:
        # Grouping asks for an item's length before the batch is served: encode once, keep a window.
        if draw not in self._examples:
            self._examples[draw] = self.processor.encode(self.conversation(draw))
            while len(self._examples) > 8192:
                self._examples.popitem(last=False)
        return self._examples[draw]

    def _length(self, draw: Draw) -> int:
        return len(self.example(draw))

    def _multimodal(self, draw: Draw) -> bool:
        return bool(self.example(draw).images)

    def next_batch(self) -> list[Example]:
        """This process's share of the next global batch (every process draws the same global batch)."""
        draws = next(self.batches)
        examples = [self.example(d) for d in draws]
        self.padding.append(padding_fraction([[len(e) for e in examples]]))
        return examples[self.rank::self.world_size]

    def state_dict(self) -> dict[str, Any]:
        state = self.batches.state_dict()
        for key in ("pending", "carry"):
            if key in state:
                state[key] = _plain(state[key])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "pending" in state:
            state["pending"] = [[Draw(*d) for d in batch] for batch in state["pending"]]
            state["carry"] = [Draw(*d) for d in state["carry"]]
        self.batches.load_state_dict(state)


def _plain(value: Any) -> Any:
    """Draw tuples -> lists, for JSON."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value

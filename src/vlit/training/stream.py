"""The batches of one stage: draws from the mixture, grouped by modality and length, this process's rows of
each global batch encoded by DataLoader workers. Its position is a small JSON-able dict, restored exactly on
resume (see `vlit.data.loading.loader` for why each batch carries its own copy)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlit.config import StageConfig
from vlit.data.loading.batch import Batch
from vlit.data.loading.batching import LengthGroupedBatches
from vlit.data.loading.dataset import load_mixture
from vlit.data.loading.loader import DrawDataset, PlainBatches, RankBatchSampler, load_batches
from vlit.data.loading.mixture import MixtureSampler
from vlit.data.loading.processor import Processor
from vlit.machine import cores

log = logging.getLogger(__name__)


def default_workers() -> int:
    """`train.num_workers: null` (see `TrainConfig.num_workers` for the measurements behind it): no workers on
    a machine of two cores or fewer, else one core left to the training process and at most 4 workers."""
    count = cores()
    return 0 if count <= 2 else min(4, count - 1)


class StageStream:
    """Endless per-process `(Batch, state)` pairs for one stage; `state` is the position to resume after it."""

    def __init__(self, stage: StageConfig, root: Path, processor: Processor, seed: int, rank: int = 0,
                 world_size: int = 1, group_by_length: bool = True, group_size: int = 16,
                 num_workers: int | None = 0, with_pixels: bool = True):
        self.datasets = load_mixture(stage.data, root, processor.image_spec)
        self.sampler = MixtureSampler.from_config(stage.data, {n: len(d) for n, d in self.datasets.items()})
        log.info("stage %s: %s", stage.name, self.sampler.describe())
        self.dataset = DrawDataset(self.datasets, processor, "left", with_pixels, stage.data.on_bad_row)
        global_batch = stage.batch_size * world_size
        if group_by_length:
            batches = LengthGroupedBatches(self.sampler, self.dataset.length, self.dataset.multimodal,
                                           global_batch, group_size, seed)
        else:
            batches = PlainBatches(self.sampler, global_batch)
        self.batch_sampler = RankBatchSampler(batches, rank, world_size)
        self.num_workers = default_workers() if num_workers is None else num_workers

    @property
    def total_rows(self) -> int:
        return sum(len(d) for d in self.datasets.values())

    def __iter__(self) -> Iterator[tuple[Batch, dict[str, Any]]]:
        """Starts the workers; the batches follow the sampler's current position."""
        return load_batches(self.dataset, self.batch_sampler, self.num_workers)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after the batch whose state this is. (No `state_dict()`: the sampler's own position is
        ahead of the loop while workers prefetch; a checkpoint saves the state of the last consumed batch.)"""
        self.batch_sampler.load_state_dict(state)


class ConsumedBatches:
    """The stage's batches, remembering the sampler position that came with the last one taken: the position
    a checkpoint saves (the DataLoader's own sampler is ahead by what its workers prefetched)."""

    def __init__(self, batches, state: dict | None):
        self._batches = batches
        self.state = state

    def next(self) -> Batch:
        batch, self.state = next(self._batches)
        return batch

    def close(self) -> None:
        """Drop the DataLoader iterator, which stops its workers, at the end of the stage."""
        self._batches = None

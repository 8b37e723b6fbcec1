"""Training input through torch's `DataLoader`: a rank-aware batch sampler and a map-style dataset.

The sampler runs in the main process: it draws from the mixture, groups draws by modality and length and
yields a `Request` per global batch holding only this process's rows, so each process encodes only its own
rows. Grouping must not tokenize every draw (every process would tokenize the whole global batch), so it
uses a cheap proxy: the rendered conversation's word count (LLaVA's `modality_lengths`; why words, not
characters: `DrawDataset.measure`) and its image count. The dataset turns a request into a `Batch` (render,
tokenize, and decode pixels when asked), in worker processes when there are some, so they hide tokenizing and
image decoding.

The DataLoader prefetches ahead of the training loop, so the sampler's own position is ahead of what was
trained on. Each request therefore carries a snapshot of the sampler's position right after it, and the
batch comes back with it: the loop saves the snapshot of the last batch it consumed, and a run resumed from
it yields exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice
from typing import Any, NamedTuple

import torch
from PIL import Image
from torch.utils.data import DataLoader

from vlit.data.conversation import Conversation
from vlit.data.loading.batch import Batch
from vlit.data.loading.batching import LengthGroupedBatches
from vlit.data.loading.dataset import LoadedDataset
from vlit.data.loading.mixture import Draw, MixtureSampler
from vlit.data.loading.processor import Processor
from vlit.data.loading.skipped import BatchSkips
from vlit.data.reading.images import ImageError, check_image_file, open_image, resolve_image_path
from vlit.errors import VlitError


class BadData(NamedTuple):
    """A batch that could not be encoded (a bad row or image): its one-line message."""

    message: str


class BadRow(NamedTuple):
    """A drawn item that could not be encoded, skipped (`on_bad_row: skip`): its one-line message."""

    dataset: str
    index: int
    kind: str
    message: str


class Encoded(NamedTuple):
    """What a worker makes of a `Request`: the batch (None when skipping left no row of it; BadData when it
    failed), the sampler position after it, and the rows skipped from it."""

    batch: Batch | BadData | None
    state: dict[str, Any]
    skipped: tuple[BadRow, ...] = ()


class Request(NamedTuple):
    """This process's rows of one global batch, and the sampler's position right after that batch."""

    draws: tuple[Draw, ...]
    state: dict[str, Any]


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


class RankBatchSampler:
    """Endless `Request`s: each global batch of `batches`, this rank's rows (row `rank`, `rank + world`, ...).

    Every process runs the same sampler with the same seed, so they agree on the global batches without
    talking to each other. Its state is plain JSON (draws as lists).
    """

    def __init__(self, batches: LengthGroupedBatches[Draw] | PlainBatches, rank: int = 0, world_size: int = 1):
        self.batches = batches
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[Request]:
        for draws in self.batches:
            yield Request(tuple(draws[self.rank::self.world_size]), self.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return _plain(self.batches.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "pending" in state:
            state["pending"] = [[Draw(*d) for d in batch] for batch in state["pending"]]
            state["carry"] = [Draw(*d) for d in state["carry"]]
        self.batches.load_state_dict(state)


class DrawDataset(torch.utils.data.Dataset):
    """Requests -> `Encoded` batches: the draws rendered in their epoch, encoded and collated.

    `padding_side` "left" lines every row's answer up at the end (the training loop's choice: the window of
    positions whose logits are computed is then as short as the longest answer). Pixels are decoded only
    `with_pixels` (the vision tower trains, or there is no feature cache). With `on_bad_row` "skip", a batch
    that fails is encoded again row by row: the bad rows are left out and named, the rest are the batch (a
    bad row costs its batch one retry; a good batch costs nothing more). Without pixels, skip mode still
    decodes each image once (`_verify`).
    """

    def __init__(self, datasets: dict[str, LoadedDataset], processor: Processor, padding_side: str = "left",
                 with_pixels: bool = True, on_bad_row: str = "fail"):
        if on_bad_row not in ("fail", "skip"):
            raise VlitError(f"on_bad_row: {on_bad_row!r} is not one of 'fail', 'skip'")
        self.datasets = datasets
        self.processor = processor
        self.padding_side = padding_side
        self.with_pixels = with_pixels
        self.on_bad_row = on_bad_row
        self._measured: OrderedDict[Draw, tuple[int, bool]] = OrderedDict()
        self._verified: OrderedDict[tuple[str, int, int], None] = OrderedDict()

    def conversation(self, draw: Draw) -> Conversation:
        """The drawn item as rendered in its epoch, image paths made absolute."""
        dataset = self.datasets[draw.dataset]
        conv = dataset.get(draw.index, draw.epoch)
        images = [ref if isinstance(ref, Image.Image) else str(resolve_image_path(ref, dataset.image_root))
                  for ref in conv.images]
        return Conversation(conv.turns, images, conv.id, conv.meta)

    def measure(self, draw: Draw) -> tuple[int, bool]:
        """(words of the rendered turns, has images): grouping's proxy for the token length and the
        modality, without tokenizing. Words, as LLaVA counts them, not characters: with characters, rows of one
        template sorted by the length of their answer, so a class name's rows filled whole batches (the
        quickstart's LLaVA-style Fashion-MNIST batches held one class: 4 "bag", 4 "coat"); with words the
        answers of one or two words tie and keep the random order they were drawn in. Kept for a window of
        draws: grouping asks again for left-overs. In skip mode an item that does not render measures (0,
        False); its batch then skips it."""
        if draw not in self._measured:
            try:
                conv = self.datasets[draw.dataset].get(draw.index, draw.epoch)
                self._measured[draw] = (sum(len(t.content.split()) for t in conv.turns), bool(conv.images))
            except VlitError:
                if self.on_bad_row == "fail":
                    raise
                self._measured[draw] = (0, False)
            while len(self._measured) > 8192:
                self._measured.popitem(last=False)
        return self._measured[draw]

    def length(self, draw: Draw) -> int:
        return self.measure(draw)[0]

    def multimodal(self, draw: Draw) -> bool:
        return self.measure(draw)[1]

    def _batch(self, draws: tuple[Draw, ...]) -> Batch:
        """The draws encoded and collated; VlitError for the first bad row or image."""
        conversations = [self.conversation(d) for d in draws]
        if self.on_bad_row == "skip" and not self.with_pixels:
            for conv in conversations:
                for ref in conv.images:
                    if not isinstance(ref, Image.Image):
                        self._verify(ref)
        examples = [self.processor.encode(c) for c in conversations]
        return self.processor.collate(examples, self.padding_side, self.with_pixels)

    def _verify(self, path: str) -> None:
        """Skip mode without pixels: the feature cache decodes images in the training process, where a bad one
        could not be skipped, so each is decoded here first, once per process while it stays unchanged (a
        window of the last 65536 files: a file read by a previous run's cache is decoded again once)."""
        status = check_image_file(path)
        key = (path, status.st_size, status.st_mtime_ns)
        if key not in self._verified:
            open_image(path).close()
            self._verified[key] = None
            while len(self._verified) > 65536:
                self._verified.popitem(last=False)
        self._verified.move_to_end(key)

    def _bad_row(self, draw: Draw, error: VlitError) -> BadRow:
        try:
            row_id = self.datasets[draw.dataset].get(draw.index, draw.epoch).id
        except VlitError:
            row_id = None
        name = f"item {draw.index}" + (f" (id {row_id})" if row_id is not None else "")
        return BadRow(draw.dataset, draw.index, "image" if isinstance(error, ImageError) else "row",
                      f"{name}: {error}")

    def __getitem__(self, request: Request) -> Encoded:
        # Errors are returned, not raised: torch re-raises a worker's exception with the worker's traceback
        # folded into its message, and a bad image or row must reach the user as its one line.
        try:
            return Encoded(self._batch(request.draws), request.state)
        except VlitError as e:
            if self.on_bad_row == "fail":
                return Encoded(BadData(str(e)), request.state)
        good, bad = [], []
        for draw in request.draws:
            try:
                self._batch((draw,))
                good.append(draw)
            except VlitError as e:
                bad.append(self._bad_row(draw, e))
        try:
            batch = self._batch(tuple(good)) if good else None
        except VlitError as e:  # a file changed between the two tries
            batch = BadData(str(e))
        return Encoded(batch, request.state, tuple(bad))


def _as_is(item: Any) -> Any:
    """The DataLoader's collate function: the dataset already returns whole batches."""
    return item


def load_batches(dataset: DrawDataset, sampler: RankBatchSampler,
                 num_workers: int = 0) -> Iterator[tuple[Batch, dict[str, Any]]]:
    """(Batch, sampler state) pairs from a DataLoader whose `num_workers` processes (0: inline) encode them;
    a bad row or image raises its one-line VlitError here, in the training process, or in skip mode is named
    once and left out (`vlit.data.loading.skipped`: a dataset whose every item is bad raises)."""
    if num_workers:
        # HF tokenizers disable their thread pool in a forked worker and warn, unless told beforehand.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The DataLoader draws its workers' base seed when it is iterated; from the global RNG that draw would come
    # between a resumed run's restored RNG state and its next step, and every dropout mask after it would
    # differ from the uninterrupted run's. Its own generator keeps the global stream for the model alone (the
    # rows are drawn by the sampler's own seeded state, not here).
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(dataset, sampler=sampler, batch_size=None, collate_fn=_as_is, num_workers=num_workers,
                        prefetch_factor=2 if num_workers else None, generator=generator)
    skips = BatchSkips({name: len(d) for name, d in dataset.datasets.items()})
    for batch, state, skipped in loader:
        for row in skipped:
            skips.add(row.dataset, row.index, row.message, row.kind)
        if isinstance(batch, BadData):
            raise VlitError(batch.message)
        if batch is not None:
            yield batch, state


def _plain(value: Any) -> Any:
    """Draw tuples -> lists, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) if k in ("pending", "carry") else v for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value

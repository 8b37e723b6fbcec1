from __future__ import annotations

import json
from pathlib import Path

from vlit.data.conversation import Conversation
from vlit.data.loading.batching import LengthGroupedBatches
from vlit.data.loading.dataset import LoadedDataset
from vlit.data.loading.loader import DrawDataset, PlainBatches, RankBatchSampler
from vlit.data.loading.mixture import MixtureSampler


def _datasets() -> dict[str, LoadedDataset]:
    text = [Conversation.single("q" * (i % 7 + 1), "a" * (i % 5 + 1)) for i in range(40)]
    images = [Conversation.single("q" * (i % 3 + 1), "a", image=f"{i}.png") for i in range(30)]
    return {"text": LoadedDataset("text", text, Path("/x")), "images": LoadedDataset("images", images, Path("/x"))}


def _sampler(data: DrawDataset, rank: int, world: int, grouped: bool = True, per_rank: int = 4) -> RankBatchSampler:
    mixture = MixtureSampler({n: len(d) for n, d in data.datasets.items()}, seed=3)
    size = per_rank * world
    batches = (LengthGroupedBatches(mixture, data.length, data.multimodal, size, group_size=3, seed=5)
               if grouped else PlainBatches(mixture, size))
    return RankBatchSampler(batches, rank, world)


def _take(sampler: RankBatchSampler, n: int):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_ranks_split_each_global_batch_without_overlap():
    data = DrawDataset(_datasets(), processor=None)
    for grouped in (True, False):
        whole = _take(_sampler(data, 0, 1, grouped, per_rank=8), 10)  # one process, the same global batches
        ranks = [_take(_sampler(data, rank, 2, grouped), 10) for rank in range(2)]
        for w, a, b in zip(whole, *ranks, strict=True):
            assert a.draws == w.draws[0::2] and b.draws == w.draws[1::2]
            assert a.state == b.state == w.state  # every rank holds the same position
        if grouped:  # each global batch holds one modality, by the image count of the rendered row
            assert all(len({d.dataset for d in w.draws}) == 1 for w in whole)


def test_length_proxy_counts_characters_without_tokenizing():
    data = DrawDataset(_datasets(), processor=None)  # no processor: grouping never encodes
    draws = [r.draws for r in _take(_sampler(data, 0, 1), 6)]
    for batch in draws:
        lengths = [data.length(d) for d in batch]
        assert lengths == sorted(lengths, reverse=True)


def test_the_state_a_request_carries_resumes_right_after_it():
    data = DrawDataset(_datasets(), processor=None)
    requests = _take(_sampler(data, 1, 2), 12)
    for k in (0, 2, 5, 9):
        resumed = _sampler(data, 1, 2)
        resumed.load_state_dict(json.loads(json.dumps(requests[k].state)))  # as a checkpoint stores it
        assert [r.draws for r in _take(resumed, 2)] == [r.draws for r in requests[k + 1:k + 3]]

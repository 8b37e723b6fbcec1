from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vlit.data.conversation import Conversation, Turn
from vlit.data.loading.batching import LengthGroupedBatches
from vlit.data.loading.dataset import LoadedDataset
from vlit.data.loading.loader import DrawDataset, PlainBatches, RankBatchSampler
from vlit.data.loading.mixture import Draw, MixtureSampler
from vlit.errors import VlitError


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


def test_length_proxy_counts_words_without_tokenizing():
    data = DrawDataset(_datasets(), processor=None)  # no processor: grouping never encodes
    draws = [r.draws for r in _take(_sampler(data, 0, 1), 6)]
    for batch in draws:
        lengths = [data.length(d) for d in batch]
        assert lengths == sorted(lengths, reverse=True)
    rows = [Conversation.single("What is this?\nAnswer with a word.", "an " + "x" * n) for n in (2, 9)]
    words = DrawDataset({"one": LoadedDataset("one", rows, Path("/x"))}, processor=None)
    first, second = (words.length(Draw("one", i, 0)) for i in range(2))
    assert first == second == 9


def test_answers_of_one_template_keep_their_draw_order_in_grouped_batches():
    """A classification dataset with one template: sorting by characters put each class name in batches of its
    own (a batch of 4 "bag"); the word count ties them, so batches hold the classes as drawn."""
    classes = ["bag", "coat", "dress", "sneaker", "pullover", "t-shirt/top"]
    rows = [Conversation.single("What type of fashion item is this?", classes[i % len(classes)],
                                image=f"{i}.png") for i in range(600)]
    data = DrawDataset({"fmnist": LoadedDataset("fmnist", rows, Path("/x"))}, processor=None)
    mixture = MixtureSampler({"fmnist": len(rows)}, seed=0)
    grouped = LengthGroupedBatches(mixture, data.length, data.multimodal, 4, group_size=16, seed=0)
    batches = [next(grouped) for _ in range(100)]
    one_class = sum(len({rows[d.index].turns[-1].content for d in b}) == 1 for b in batches)
    assert one_class <= 5  # drawn at random: 6 * (1/6)**4 = 0.5% of batches hold one class


def test_the_state_a_request_carries_resumes_right_after_it():
    data = DrawDataset(_datasets(), processor=None)
    requests = _take(_sampler(data, 1, 2), 12)
    for k in (0, 2, 5, 9):
        resumed = _sampler(data, 1, 2)
        resumed.load_state_dict(json.loads(json.dumps(requests[k].state)))  # as a checkpoint stores it
        assert [r.draws for r in _take(resumed, 2)] == [r.draws for r in requests[k + 1:k + 3]]


# ---- on_bad_row: skip at batch time: a row that fails to encode leaves its batch, named once


def _image_rows(tmp_path: Path, bad: set[int], n: int = 8) -> LoadedDataset:
    """n image rows, those in `bad` pointing at a file that is no image (found only when decoded)."""
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    rows = [Conversation([Turn("user", f"<image>\nq{i}"), Turn("assistant", f"a{i}")],
                         ["bad.png" if i in bad else "good.png"], f"r{i}") for i in range(n)]
    return LoadedDataset("pics", rows, tmp_path)


def _batches(data: DrawDataset, count: int, workers: int = 0):
    from itertools import islice

    from vlit.data.loading.loader import load_batches

    mixture = MixtureSampler({n: len(d) for n, d in data.datasets.items()}, seed=1)
    return list(islice(load_batches(data, RankBatchSampler(PlainBatches(mixture, 3)), workers), count))


@pytest.mark.parametrize(("with_pixels", "workers"), [(True, 0), (False, 0), (True, 2)])
def test_skip_leaves_bad_rows_out_of_their_batches_and_names_each_once(tmp_path, debug_model, caplog,
                                                                       with_pixels, workers):
    _, processor = debug_model
    data = DrawDataset({"pics": _image_rows(tmp_path, bad={1, 6})}, processor, with_pixels=with_pixels,
                       on_bad_row="skip")
    with caplog.at_level(logging.WARNING):
        batches = _batches(data, 12, workers)  # 36 draws: every row several times
    assert all(b.images == [str(tmp_path / "good.png")] * len(b) for b, _ in batches)
    assert sum(len(b) for b, _ in batches) < 36
    skipped = [r.getMessage() for r in caplog.records if "(row skipped)" in r.getMessage()]
    assert sorted(skipped) == [f"pics: item {i} (id r{i}): {tmp_path / 'bad.png'}: not an image (format not "
                               "recognised) (row skipped)" for i in (1, 6)]


def test_skip_raises_once_every_item_is_bad(tmp_path, debug_model):
    _, processor = debug_model
    data = DrawDataset({"pics": _image_rows(tmp_path, bad=set(range(4)), n=4)}, processor, on_bad_row="skip")
    with pytest.raises(VlitError) as caught:
        _batches(data, 1)
    message = str(caught.value)
    assert message.startswith("dataset 'pics': all 4 item(s) are bad (on_bad_row: skip has nothing left to "
                              "train on); the first: item ") and "\n" not in message


def test_fail_raises_the_first_bad_row_in_one_line(tmp_path, debug_model):
    _, processor = debug_model
    data = DrawDataset({"pics": _image_rows(tmp_path, bad={0, 1, 2, 3, 4, 5, 6, 7})}, processor)
    with pytest.raises(VlitError, match=rf"^{tmp_path / 'bad.png'}: not an image \(format not recognised\)$"):
        _batches(data, 1)


def test_skip_reports_each_bad_row_of_many_only_up_to_a_count(caplog):
    from vlit.data.loading.skipped import LISTED, BatchSkips

    skips = BatchSkips({"d": 1000})
    with caplog.at_level(logging.WARNING):
        for _drawn_again in range(2):
            for i in range(100):
                skips.add("d", i, f"item {i}: bad", "image")
    assert skips.count == 100 and skips.rows["d"].by_kind == {"image": 100}
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:LISTED] == [f"d: item {i}: bad (row skipped)" for i in range(LISTED)]
    assert lines[LISTED:] == [f"d: more than {LISTED} bad rows; the rest are skipped and counted, not listed"]

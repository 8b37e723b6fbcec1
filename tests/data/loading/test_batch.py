from __future__ import annotations

import torch

from vlit.data.loading.batch import Batch, TextInput


def _batch(labels: bool = True) -> Batch:
    ids = torch.tensor([[1, 2, 3], [0, 4, 5]])
    return Batch(ids, (ids > 0).long(), ids.clone() if labels else None, ["a.png"],
                 pixel_values=torch.zeros(1, 3, 4, 4), side={"instruction": TextInput(ids[:1], ids[:1] > 0)})


def test_to_returns_a_new_batch_and_casts_only_floating_tensors():
    batch = _batch()
    moved = batch.to("cpu", torch.float64)
    assert moved is not batch and batch.pixel_values.dtype == torch.float32
    assert moved.pixel_values.dtype == torch.float64 and moved.image_features is None
    assert moved.input_ids.dtype == moved.attention_mask.dtype == moved.labels.dtype == torch.long
    assert isinstance(moved.side["instruction"], TextInput)
    assert torch.equal(moved.side["instruction"].ids, batch.side["instruction"].ids)
    assert moved.images == ["a.png"] and len(moved) == 2


def test_model_inputs_name_the_forward_arguments():
    inputs = _batch().model_inputs()
    assert set(inputs) == {"input_ids", "attention_mask", "labels", "pixel_values", "image_features", "side"}
    assert "labels" not in _batch(labels=False).model_inputs()  # what generate takes

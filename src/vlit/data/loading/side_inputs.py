"""Side-input builders that connectors and training objectives declare (see `vlit.data.loading.batch`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from transformers import PreTrainedTokenizerBase

from vlit.data.conversation import Conversation
from vlit.data.loading.batch import TextInput

INSTRUCTION = "instruction"
"""The side input of an instruction-aware Q-Former: the instruction's tokens."""


@dataclass(frozen=True)
class TextInputBuilder:
    """One part of the conversation as `tokenizer` sees it, at most `max_length` tokens; every image of a
    conversation gets the same text. `instruction`: the user turn holding the image, which InstructBLIP's
    Q-Former reads beside its queries. `answer`: the last assistant turn (a caption, a class name), the text
    BLIP-2's first stage pairs with the image."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int = 128
    reads: Literal["instruction", "answer"] = "instruction"

    def encode(self, conversation: Conversation) -> list[int]:
        text = conversation.instruction() if self.reads == "instruction" else conversation.answer()
        return self.tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"]

    def collate(self, values: list[list[int]]) -> TextInput:
        return right_padded(values, self.tokenizer.pad_token_id)


@dataclass(frozen=True)
class NoText:
    """A text side input withheld: zero tokens for every image. An instruction-aware Q-Former given it runs its
    queries alone, as BLIP-2's Q-Former (a stage's `qformer_reads_instruction: false`)."""

    def encode(self, conversation: Conversation) -> list[int]:
        return []

    def collate(self, values: list[list[int]]) -> TextInput:
        return right_padded(values, pad_id=0)  # long[I, 0]: no position to pad


def right_padded(values: list[list[int]], pad_id: int) -> TextInput:
    """long[I, T] ids right-padded with `pad_id`, and their mask."""
    width = max(len(x) for x in values)
    ids = torch.full((len(values), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(values), width), dtype=torch.long)
    for i, x in enumerate(values):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return TextInput(ids, mask)

"""Side-input builders that connectors declare (see `vlit.data.loading.batch`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from vlit.data.conversation import Conversation
from vlit.data.loading.batch import TextInput


@dataclass(frozen=True)
class InstructionInput:
    """The conversation's instruction as `tokenizer` sees it, at most `max_length` tokens (InstructBLIP's
    Q-Former reads it beside its queries). Every image of a conversation gets the same instruction."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int = 128

    def encode(self, conversation: Conversation) -> list[int]:
        return self.tokenizer(conversation.instruction(), truncation=True, max_length=self.max_length)["input_ids"]

    def collate(self, values: list[list[int]]) -> TextInput:
        """long[I, T] ids right-padded with the tokenizer's pad id, and their mask."""
        width = max(len(x) for x in values)
        ids = torch.full((len(values), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(values), width), dtype=torch.long)
        for i, x in enumerate(values):
            ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        return TextInput(ids, mask)

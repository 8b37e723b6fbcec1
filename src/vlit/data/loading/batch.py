"""The one batch type: what the processor builds and the model reads, in training, inference and ranking.

A connector may need more than image features: InstructBLIP's Q-Former also reads the instruction, tokenized
by its own tokenizer. Such inputs are *side inputs*: each connector declares them by name with a builder
(`SideInputBuilder`, a data-side object), the processor builds exactly those, and the batch carries them in
`side`, one row per image in placeholder order, so the model passes them on without knowing what they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import torch

from vlit.data.conversation import Conversation, ImageRef


class TextInput(NamedTuple):
    """Text for a connector, tokenized by its own tokenizer: long[I, T] ids and their 0/1 mask."""

    ids: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> TextInput:
        return TextInput(self.ids.to(device), self.mask.to(device))


class SideInputBuilder(Protocol):
    """Builds one side input: `encode` runs per conversation (in a data-loading worker when there are some),
    `collate` turns the encoded values, one per image in placeholder order, into the batch's tensors."""

    def encode(self, conversation: Conversation) -> Any: ...

    def collate(self, values: list[Any]) -> TextInput: ...


@dataclass(frozen=True)
class Batch:
    """Padded model inputs for B rows holding I images between them.

    Images come as references (always), and as pixels float[I, 3, S, S] or vision features float[I, N, Dv]
    when computed; `images[i]` fills the i-th run of placeholders, row by row.
    """

    input_ids: torch.Tensor
    """long[B, L], each `<image>` expanded to the connector's M placeholder ids."""
    attention_mask: torch.Tensor
    """long[B, L], 0 on padding."""
    labels: torch.Tensor | None = None
    """long[B, L], -100 where not learned (None for generation)."""
    images: list[ImageRef] = field(default_factory=list)
    pixel_values: torch.Tensor | None = None
    image_features: torch.Tensor | None = None
    side: dict[str, TextInput] = field(default_factory=dict)
    """The connector's side inputs by name, one row per image."""

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Batch:
        """A new batch on `device`; `dtype` also casts the floating tensors (pixels, features)."""

        def move(t: torch.Tensor | None, floating: bool = False) -> torch.Tensor | None:
            if t is None:
                return None
            return t.to(device, dtype) if floating and dtype is not None else t.to(device)

        return dataclasses.replace(
            self, input_ids=move(self.input_ids), attention_mask=move(self.attention_mask),
            labels=move(self.labels), pixel_values=move(self.pixel_values, True),
            image_features=move(self.image_features, True),
            side={name: value.to(device) for name, value in self.side.items()})

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments of `VisionLanguageModel.forward` / `generate` (labels only when present)."""
        inputs: dict[str, Any] = {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                                  "pixel_values": self.pixel_values, "image_features": self.image_features,
                                  "side": self.side}
        if self.labels is not None:
            inputs["labels"] = self.labels
        return inputs

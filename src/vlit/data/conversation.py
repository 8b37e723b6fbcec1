"""The conversation: the one data object that every dataset, template, processor and server passes around.

Images sit in the text as `<image>` markers, one per entry of `images`, in order. Loss masks come from roles:
only `assistant` turns are learned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

IMAGE_TOKEN = "<image>"
Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")
ImageRef = str | Path | Image.Image
"""A path (absolute, or relative to the dataset's image root) or an image already in memory."""


@dataclass
class Turn:
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role: {self.role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(self.content, str):
            raise ValueError(f"content: expected text, got {type(self.content).__name__}")


@dataclass
class Conversation:
    """Turns with roles plus the images their `<image>` markers refer to.

    `meta` carries what evaluation and sampling need but the model never reads: task, dataset, the ground
    truth answer(s), candidate answers, boxes in pixels.
    """

    turns: list[Turn]
    images: list[ImageRef] = field(default_factory=list)
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_image_markers(self) -> int:
        return sum(t.content.count(IMAGE_TOKEN) for t in self.turns)

    @property
    def system(self) -> str | None:
        return self.turns[0].content if self.turns and self.turns[0].role == "system" else None

    @property
    def messages(self) -> list[Turn]:
        """The turns without a leading system turn."""
        return self.turns[1:] if self.system is not None else self.turns

    def check(self) -> None:
        """Raise ValueError naming the first problem: marker count, role order, empty turns."""
        if self.num_image_markers != len(self.images):
            raise ValueError(
                f"images: {len(self.images)} image(s) but {self.num_image_markers} {IMAGE_TOKEN} marker(s)"
            )
        for i, turn in enumerate(self.turns):
            if turn.role == "system" and i != 0:
                raise ValueError(f"turns[{i}]: a system turn may only come first")
        messages = self.messages
        if not messages:
            raise ValueError("turns: no user or assistant turn")
        for i, turn in enumerate(messages):
            expected = "user" if i % 2 == 0 else "assistant"
            if turn.role != expected:
                raise ValueError(f"turns[{i}]: expected a {expected} turn, got {turn.role}")

    def instruction(self) -> str:
        """The text of the user turn that holds the first image, marker removed: what InstructBLIP's Q-Former
        reads. Falls back to the first user turn for text-only conversations."""
        users = [t for t in self.turns if t.role == "user"]
        holder = next((t for t in users if IMAGE_TOKEN in t.content), users[0] if users else None)
        return "" if holder is None else holder.content.replace(IMAGE_TOKEN, "").strip()

    def answer(self) -> str:
        """The text of the last assistant turn (a caption, a class name); empty when there is none."""
        return next((t.content for t in reversed(self.turns) if t.role == "assistant"), "")

    def add(self, role: Role, content: str) -> Conversation:
        """A copy with one more turn (conversations are values; chat history grows by copying)."""
        return Conversation([*self.turns, Turn(role, content)], list(self.images), self.id, dict(self.meta))

    @classmethod
    def single(cls, question: str, answer: str | None = None, image: ImageRef | None = None,
               **meta: Any) -> Conversation:
        """One user question (with the image marker first, as LLaVA does) and optionally its answer."""
        text = f"{IMAGE_TOKEN}\n{question}" if image is not None and IMAGE_TOKEN not in question else question
        turns = [Turn("user", text)] + ([Turn("assistant", answer)] if answer is not None else [])
        return cls(turns, [image] if image is not None else [], meta=meta)

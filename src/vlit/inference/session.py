"""The state of a chat about one image, shared by the terminal chat (`vlit chat`) and the web demo.

A state is a value: every change returns a new one. The terminal chat keeps one and replaces it; the web demo
keeps one per browser session in `gr.State`, where handlers must return new values rather than mutate shared
ones. Both therefore build prompts, reset and parse boxes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from vlit.data.conversation import Conversation, ImageRef
from vlit.data.loading.transforms import ImageSpec
from vlit.data.reading.images import load_image
from vlit.errors import VlitError
from vlit.inference.grounding import GroundedBox, parse_grounding
from vlit.inference.tasks import TASKS, with_task


@dataclass(frozen=True)
class ChatState:
    """The image (as given, and decoded), the task identifier, the conversation so far (None before the
    first question) and the model's image input `frame` (`Pipeline.processor.image_spec`; None: boxes are
    named on the original image)."""

    image: ImageRef | None = None
    picture: Image.Image | None = None
    task: str | None = None
    conversation: Conversation | None = None
    frame: ImageSpec | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the image, the frame that answers' boxes refer to."""
        return None if self.picture is None else self.picture.size

    def with_image(self, image: ImageRef | None) -> ChatState:
        """This image (None: none) and a new conversation: answers about another image do not carry over.
        The image is decoded here, so a bad file fails now with a VlitError naming it."""
        picture = None if image is None else load_image(image)
        return replace(self, image=image, picture=picture, conversation=None)

    def with_task(self, task: str | None) -> ChatState:
        """Prefix later questions with `[task]` (None: no identifier); the conversation goes on."""
        if task is not None and task not in TASKS:
            raise VlitError(f"task: {task!r} is not one of {', '.join(TASKS)}")
        return replace(self, task=task)

    def reset(self) -> ChatState:
        """Forget the conversation; the image and the task stay."""
        return replace(self, conversation=None)

    def ask(self, text: str) -> Conversation:
        """The conversation to answer next: the history plus `text` as a user turn with the task identifier
        in front (the first turn also carries the image marker)."""
        question = with_task(text, self.task)
        if self.conversation is None:
            return Conversation.single(question, image=self.image)
        return self.conversation.add("user", question)

    def answered(self, asked: Conversation, answer: str) -> ChatState:
        """The state once `answer` to `asked` (from `ask`) is complete."""
        return replace(self, conversation=asked.add("assistant", answer))

    def boxes(self, answer: str) -> list[GroundedBox]:
        """The boxes of an answer in pixels of the image (none without an image), read in the model's frame."""
        return [] if self.size is None else parse_grounding(answer, *self.size, frame=self.frame)

"""A chat request -> a vlit `Conversation` and `GenerationOptions`, or an APIError naming the field.

Each `image_url` part becomes an `<image>` marker where it stands among the text parts (parts are joined
with newlines, so `[image, text]` reads like LLaVA's `<image>\\nquestion`). Consecutive messages of one role
are merged, as a chat template has no place for two user turns in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.errors import VlitError
from vlit.inference.pipeline import GenerationOptions
from vlit.inference.tasks import with_task
from vlit.serving.errors import APIError
from vlit.serving.images import load_image_url
from vlit.serving.schema import ChatRequest, ImagePart, Message
from vlit.serving.settings import ServerSettings


@dataclass
class Prepared:
    """What the worker needs for one request, plus the size boxes are measured against."""

    conversation: Conversation
    options: GenerationOptions
    image_size: tuple[int, int] | None


def prepare(request: ChatRequest, settings: ServerSettings) -> Prepared:
    """Check, decode images and build the conversation (blocking: images may be fetched)."""
    options = generation_options(request, settings)
    conversation = to_conversation(request, settings)
    images = conversation.images
    return Prepared(conversation, options, images[-1].size if images else None)


def generation_options(request: ChatRequest, settings: ServerSettings) -> GenerationOptions:
    """OpenAI's fields -> vlit's, with the server's limits; sampling as `GenerationOptions.sampling` decides."""
    if request.n != 1:
        raise APIError(400, f"n: only n=1 is supported, got {request.n}", "n")
    param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
    max_tokens = request.max_completion_tokens or request.max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_tokens_limit:
        raise APIError(400, f"{param}: {max_tokens} is over this server's limit of {settings.max_tokens_limit} "
                            "(--max-tokens-limit)", param)
    sampling = GenerationOptions.sampling(request.temperature, request.top_p)
    # A seed only matters when sampling; greedy requests that differ only in it still share a batch.
    seed = request.seed if sampling["do_sample"] else None
    options = {"max_new_tokens": max_tokens, "stop": request.stops, "seed": seed, **sampling}
    try:
        return GenerationOptions(**options)
    except VlitError as e:
        raise APIError(400, str(e)) from None


def to_conversation(request: ChatRequest, settings: ServerSettings) -> Conversation:
    messages = request.messages
    count = sum(isinstance(p, ImagePart) for m in messages if isinstance(m.content, list) for p in m.content)
    if count > settings.max_images:
        raise APIError(400, f"messages: {count} images is over this server's limit of {settings.max_images} "
                            "per request (--max-images)", "messages", "too_many_images")
    task = request.vlit.task if request.vlit is not None else None
    turns: list[Turn] = []
    images: list[Image.Image] = []
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        last = i == len(messages) - 1
        text = _content(message, f"messages[{i}]", images, settings, task if last else None)
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].content}\n\n{text}")
        else:
            turns.append(Turn(role, text))
    conversation = Conversation(turns, images)
    try:
        conversation.check()
    except ValueError as e:
        raise APIError(400, f"messages: {e}", "messages") from None
    if turns[-1].role != "user":
        raise APIError(400, "messages: the last message must be from the user", "messages")
    return conversation


def _content(message: Message, where: str, images: list[Image.Image], settings: ServerSettings,
             task: str | None) -> str:
    """The message's text with an image marker per image part; decoded images are appended to `images`."""
    parts = [message.content] if isinstance(message.content, str) else message.content
    pieces = []
    for j, part in enumerate(parts):
        param = where if isinstance(message.content, str) else f"{where}.content[{j}]"
        if isinstance(part, ImagePart):
            if message.role != "user":
                raise APIError(400, f"{param}: only user messages may hold images", param)
            images.append(load_image_url(part.image_url.url, settings, f"{param}.image_url"))
            pieces.append(IMAGE_TOKEN)
            continue
        text = part if isinstance(part, str) else part.text
        if IMAGE_TOKEN in text:
            raise APIError(400, f"{param}: text may not contain {IMAGE_TOKEN}; send images as image_url parts",
                           param)
        if task is not None and message.role == "user":
            text = text if text.lstrip().startswith(f"[{task}]") else with_task(text, task)
            task = None
        pieces.append(text)
    if task is not None and message.role == "user":
        pieces.append(with_task("", task).strip())
    return "\n".join(pieces)

"""A chat request -> a vlit `Conversation` and `GenerationOptions`, or an APIError naming the field.

Each `image_url` part becomes an `<image>` marker where it stands among the text parts (parts are joined
with newlines, so `[image, text]` reads like LLaVA's `<image>\\nquestion`). Consecutive messages of one role
are merged, as a chat template has no place for two user turns in a row.

`check` holds the checks that cost next to nothing (options, text length, text that is not Unicode), so the
API runs them before it fetches, decodes or tokenizes anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from PIL import Image

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.loading.processor import Example
from vlit.errors import VlitError
from vlit.inference.options import GenerationOptions
from vlit.inference.tasks import with_task
from vlit.serving.errors import APIError
from vlit.serving.fields import Decoding, decoding, refuse_tools
from vlit.serving.images import load_image_url
from vlit.serving.schema import ChatRequest, ImagePart, Message, TextPart
from vlit.serving.settings import ServerSettings

# torch's generators take any seed in this range (a 64-bit integer, signed or not); outside it they fail.
SEED_RANGE = range(-(2**63), 2**64)


@dataclass
class Prepared:
    """What the worker needs for one request, plus the size boxes are measured against. `example` and
    `grammar` (the prompt tokenized, the grammar compiled) are filled by `PromptEncoder`."""

    conversation: Conversation
    options: GenerationOptions
    image_size: tuple[int, int] | None
    max_tokens_given: bool = False
    """The client set `max_tokens` (or `max_completion_tokens`): the context must hold it, or the request is
    refused; a default is lowered to what the context leaves instead."""
    decoding: Decoding = Decoding()
    example: Example | None = None
    grammar: object | None = None


def prepare(request: ChatRequest, settings: ServerSettings, fetched: Mapping[str, bytes] | None = None
            ) -> Prepared:
    """Check, decode images and build the conversation (blocking). Remote images must be in `fetched`
    (`vlit.serving.images.fetch_images` over `image_urls(request)`); data URIs are decoded here."""
    options = check(request, settings)
    conversation = to_conversation(request, settings, fetched or {})
    images = conversation.images
    given = request.max_completion_tokens is not None or request.max_tokens is not None
    return Prepared(conversation, options, images[-1].size if images else None, given, decoding(request))


def check(request: ChatRequest, settings: ServerSettings) -> GenerationOptions:
    """The generation options, once the text is checked: its length over all messages against
    `max_prompt_chars`, and that it is Unicode a tokenizer can take (JSON lets `"\\ud800"` through)."""
    refuse_tools(request)
    decoding(request)
    options = generation_options(request, settings)
    count = sum(isinstance(p, ImagePart) for m in request.messages if isinstance(m.content, list)
                for p in m.content)
    if count > settings.max_images:
        raise APIError(400, f"messages: {count} images is over this server's limit of {settings.max_images} "
                            "per request (--max-images)", "messages", "too_many_images")
    texts = list(_texts(request))
    chars = sum(len(text) for _, text in texts)
    if chars > settings.max_prompt_chars:
        raise APIError(400, f"messages: {chars} characters of text is over this server's limit of "
                            f"{settings.max_prompt_chars} (--max-prompt-chars)", "messages",
                       "string_above_max_length")
    for param, text in texts:  # (stop strings and URLs, length-constrained, are refused by the schema already)
        unicode_text(text, param)
    return options


def unicode_text(text: str, param: str) -> None:
    """APIError 400 naming `param` for text with a lone UTF-16 surrogate (valid JSON, not valid Unicode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise APIError(400, f"{param}: not valid Unicode text: a lone surrogate {text[e.start]!r} at character "
                            f"{e.start}", param, "invalid_text") from None


def _texts(request: ChatRequest) -> Iterator[tuple[str, str]]:
    """(param, text) of every text in the messages."""
    for i, message in enumerate(request.messages):
        if isinstance(message.content, str):
            yield f"messages[{i}].content", message.content
            continue
        for j, part in enumerate(message.content):
            if isinstance(part, TextPart):
                yield f"messages[{i}].content[{j}].text", part.text


def image_urls(request: ChatRequest) -> list[tuple[str, str]]:
    """(param, url) of the image parts of user messages (others are refused, never fetched)."""
    return [(f"messages[{i}].content[{j}].image_url", part.image_url.url)
            for i, message in enumerate(request.messages) if isinstance(message.content, list)
            and message.role == "user"
            for j, part in enumerate(message.content) if isinstance(part, ImagePart)]


def generation_options(request: ChatRequest, settings: ServerSettings) -> GenerationOptions:
    """OpenAI's fields -> vlit's, with the server's limits; sampling as `GenerationOptions.sampling` decides."""
    if request.n != 1:
        raise APIError(400, f"n: only n=1 is supported, got {request.n}", "n")
    param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
    max_tokens = request.max_completion_tokens or request.max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_tokens_limit:
        raise APIError(400, f"{param}: {max_tokens} is over this server's limit of {settings.max_tokens_limit} "
                            "(--max-tokens-limit)", param)
    if request.seed is not None and request.seed not in SEED_RANGE:
        raise APIError(400, "seed: must be a 64-bit integer, from -2**63 to 2**64 - 1", "seed")
    for i, stop in enumerate(request.stops):  # (a lone surrogate in one is refused by the schema already)
        where = "stop" if isinstance(request.stop, str) else f"stop[{i}]"
        if len(stop) > settings.max_stop_chars:
            raise APIError(400, f"{where}: a stop string of {len(stop)} characters is over this server's limit "
                                f"of {settings.max_stop_chars} (--max-stop-chars)", where)
    sampling = GenerationOptions.sampling(request.temperature, request.top_p)
    if sampling["do_sample"]:
        # vLLM's "off" for top_k is -1 (or 0). Greedy decoding drops the seed, top_k and min_p: the most likely
        # token is in every top-k and above every min-p, and no random draw is made.
        sampling |= {"seed": request.seed, "top_k": max(request.top_k or 0, 0), "min_p": request.min_p or 0.0}
    if request.min_tokens is not None and request.min_tokens > max_tokens:
        raise APIError(400, f"min_tokens: {request.min_tokens} is over the answer's {max_tokens} tokens", "min_tokens")
    logit_bias = tuple((_token_id(k, "logit_bias"), v) for k, v in (request.logit_bias or {}).items())
    options = {"max_new_tokens": max_tokens, "stop": request.stops, **sampling,
               "min_new_tokens": request.min_tokens or 0, "repetition_penalty": request.repetition_penalty or 1.0,
               "frequency_penalty": request.frequency_penalty or 0.0,
               "presence_penalty": request.presence_penalty or 0.0, "logit_bias": logit_bias,
               "stop_token_ids": tuple(request.stop_token_ids or ())}
    try:
        return GenerationOptions(**options)
    except VlitError as e:
        raise APIError(400, str(e)) from None


def _token_id(key: str, param: str) -> int:
    if not key.isdigit():
        raise APIError(400, f"{param}: {key!r} is not a token id", f"{param}.{key}")
    return int(key)


def to_conversation(request: ChatRequest, settings: ServerSettings, fetched: Mapping[str, bytes]) -> Conversation:
    messages = request.messages
    task = request.vlit.task if request.vlit is not None else None
    runs: list[tuple[str, list[str]]] = []  # (role, texts) of consecutive messages of one role
    images: list[Image.Image] = []
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        last = i == len(messages) - 1
        text = _content(message, f"messages[{i}]", images, settings, fetched, task if last else None)
        if runs and runs[-1][0] == role:
            runs[-1][1].append(text)  # joined once below: joining as they come is quadratic in the messages
        else:
            runs.append((role, [text]))
    turns = [Turn(role, "\n\n".join(texts)) for role, texts in runs]
    conversation = Conversation(turns, images)
    try:
        conversation.check()
    except ValueError as e:
        raise APIError(400, f"messages: {e}", "messages") from None
    if turns[-1].role != "user":
        raise APIError(400, "messages: the last message must be from the user", "messages")
    return conversation


def _content(message: Message, where: str, images: list[Image.Image], settings: ServerSettings,
             fetched: Mapping[str, bytes], task: str | None) -> str:
    """The message's text with an image marker per image part; decoded images are appended to `images`."""
    parts = [message.content] if isinstance(message.content, str) else message.content
    pieces = []
    for j, part in enumerate(parts):
        param = where if isinstance(message.content, str) else f"{where}.content[{j}]"
        if isinstance(part, ImagePart):
            if message.role != "user":
                raise APIError(400, f"{param}: only user messages may hold images", param)
            images.append(load_image_url(part.image_url.url, settings, f"{param}.image_url", fetched))
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

"""OpenAI chat-completions request and response shapes (the subset vlit serves), as pydantic models.

Unknown fields are ignored, as OpenAI's own clients send fields a local model has no use for (`user`,
`presence_penalty`, ...); fields with values vlit cannot honour (`n` > 1) are refused where they are read.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from vlit.inference.tasks import TASKS


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ImageURL(_Lenient):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Lenient):
    # OpenAI's newer models call the system turn `developer`; both mean the same here.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]


class StreamOptions(_Lenient):
    include_usage: bool = False


class VlitOptions(_Lenient):
    """vlit's own request field: a MiniGPT-v2 task identifier for the last user message."""

    task: Literal[TASKS] | None = None  # type: ignore[valid-type]


StopString = Annotated[str, Field(min_length=1)]
# OpenAI's limit, kept for a reason of our own too: each new set of stop strings costs the worker a scan of
# the vocabulary (transformers' StopStringCriteria), paid by every request waiting behind it.
StopList = Annotated[list[StopString], Field(max_length=4)]


class ChatRequest(_Lenient):
    model: str
    messages: list[Message] = Field(min_length=1, max_length=2048)  # OpenAI's limit
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: StopString | StopList | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    vlit: VlitOptions | None = None

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


# ---- errors, as the OpenAPI schema documents them -----------------------------------------------------------

class ErrorDetail(BaseModel):
    message: str
    type: Literal["invalid_request_error", "server_error"]
    param: str | None
    """The request field at fault, as a path into the JSON body (`messages[0].content[1].image_url`)."""
    code: str | None


class ErrorResponse(BaseModel):
    """Every error the server answers, in OpenAI's shape."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "not ready"]
    model: str
    waiting: int
    stats: dict[str, int]


ERRORS = {
    400: "A request the model cannot answer: a field's value over a server limit, a conversation the chat template "
         "cannot render, text that is not Unicode, a prompt longer than the model's context "
         "(`context_length_exceeded`), an image that cannot be read or fetched.",
    401: "A missing or wrong API key (when the server has one).",
    404: "No such model.",
    413: "The body, or an image in it, is over the server's size limits.",
    422: "The body does not match this schema (`param` names the field).",
    500: "An unexpected failure; the details are in the server's log, never in the answer.",
    503: "The queue is full (`overloaded`) or the model is not ready (`not_ready`): retry later.",
}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """FastAPI `responses=` documenting `statuses` with the error body (and 500, which any route can give)."""
    return {s: {"model": ErrorResponse, "description": ERRORS[s]} for s in sorted({*statuses, 500})}


# ---- responses: plain dicts in OpenAI's field order -------------------------------------------------------

def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(cid: str, model: str, text: str, finish_reason: str, prompt_tokens: int,
               completion_tokens: int, boxes: list[dict] | None = None) -> dict:
    message = {"role": "assistant", "content": text, "refusal": None}
    if boxes:
        message["boxes"] = boxes  # vlit's own field: grounded boxes in pixels of the last image
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage(prompt_tokens, completion_tokens), "system_fingerprint": None}


def chunk(cid: str, model: str, delta: dict | None, finish_reason: str | None = None,
          with_usage: bool = False) -> dict:
    """One `chat.completion.chunk`; `delta=None` is the usage-only chunk, which has no choices."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [] if delta is None else
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
    if with_usage:
        body["usage"] = None
    return body


def model_list(model: str, created: int) -> dict:
    return {"object": "list", "data": [{"id": model, "object": "model", "created": created, "owned_by": "vlit"}]}

"""OpenAI chat-completions request and response shapes (the subset vlit serves), as pydantic models.

Every field is honoured or refused: a field these models do not declare gets 400 naming it (`extra="forbid"`),
never a silent default, so a client that relies on one (a misspelt `max_token`, `tools`, `audio`) learns at
once. The few fields declared without effect are listed with the reason they cannot change the answer;
values vlit cannot honour (`n` > 1, `tools`) are refused where they are read (`vlit.serving.fields`).
vLLM's extra sampling and guided-decoding fields are declared too, with vLLM's names.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vlit.inference.tasks import TASKS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageURL(_Strict):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None
    """Accepted without effect: the model sees every image at its one input resolution."""


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Strict):
    # OpenAI's newer models call the system turn `developer`; both mean the same here. `tool` and `function`
    # turns are declared only to be refused with a message about tools (`fields.refuse_tools`).
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    """Refused when set: the chat templates have no place for a participant's name."""
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None
    # What vlit's own answers carry, so a client may send an answer back as it came: `refusal` is always null,
    # `boxes` and `scores` are read from the content, which the template renders.
    refusal: None = None
    boxes: list[dict[str, Any]] | None = None
    scores: dict[str, float] | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class VlitOptions(_Strict):
    """vlit's own request field: a MiniGPT-v2 task identifier for the last user message."""

    task: Literal[TASKS] | None = None  # type: ignore[valid-type]


class JSONSchemaFormat(_Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    """Accepted: the answer is always held to the schema (grammar-constrained), strict or not."""


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


StopString = Annotated[str, Field(min_length=1)]
# OpenAI's limit, kept for a reason of our own too: each set of stop strings is searched for in the answer's
# text at every decoding step.
StopList = Annotated[list[StopString], Field(max_length=4)]
Penalty = Annotated[float, Field(ge=-2, le=2)]


class ChatRequest(_Strict):
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
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = Field(default=None, max_length=300)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    """Accepted only without tools, where it says nothing."""
    # vLLM's extra fields
    top_k: int | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0, le=10)
    min_tokens: int | None = Field(default=None, ge=0)
    stop_token_ids: list[int] | None = Field(default=None, max_length=64)
    guided_choice: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1,
                                                                             max_length=256)
    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = Field(default=None, min_length=1, max_length=4096)
    # Fields that cannot change the answer: who asks (`user`, OpenAI's abuse-monitoring id), tags for stored
    # completions (`metadata`), and `store`, accepted when false (vlit stores no completion to fetch later).
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: Literal[False] | None = None
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
    400: "A request the model cannot answer: a body that does not match this schema or has a field vlit does not "
         "honour (`param` names the field), a field's value over a server limit, a conversation the chat template "
         "cannot render, text that is not Unicode, a prompt longer than the model's context "
         "(`context_length_exceeded`), an image that cannot be read or fetched.",
    401: "A missing or wrong API key (when the server has one).",
    404: "No such model.",
    413: "The body, or an image in it, is over the server's size limits.",
    422: "Not sent: a body that does not match this schema gets 400, as OpenAI and vLLM answer it (listed because "
         "FastAPI lists 422 for every route with parameters).",
    500: "An unexpected failure; the details are in the server's log, never in the answer.",
    503: "The queue is full (`overloaded`) or the model is not ready (`not_ready`): retry later.",
}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """FastAPI `responses=` documenting `statuses` with the error body (and 500, which any route can give)."""
    return {s: {"model": ErrorResponse, "description": ERRORS[s]} for s in sorted({*statuses, 500})}


# ---- responses: plain dicts in OpenAI's field order -------------------------------------------------------

def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict:
    """OpenAI's usage; `cached_tokens` counts prompt tokens whose KV cache an earlier turn left (prefix caching)."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def logprobs(content: list[dict] | None) -> dict | None:
    """A choice's `logprobs`: one entry per answer token (`{"token", "logprob", "bytes", "top_logprobs"}`)."""
    return None if content is None else {"content": content, "refusal": None}


def token_logprob(text: str, logprob: float, top: list[dict] | None = None) -> dict:
    entry = {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}
    return entry if top is None else {**entry, "top_logprobs": top}


def completion(cid: str, model: str, text: str, finish_reason: str, usage_: dict, boxes: list[dict] | None = None,
               content_logprobs: list[dict] | None = None, scores: dict[str, float] | None = None) -> dict:
    message = {"role": "assistant", "content": text, "refusal": None}
    if boxes:
        message["boxes"] = boxes  # vlit's own field: grounded boxes in pixels of the last image
    if scores is not None:
        message["scores"] = scores  # vlit's own field: each `guided_choice`'s log-likelihood, best first
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": logprobs(content_logprobs),
                         "finish_reason": finish_reason}],
            "usage": usage_, "system_fingerprint": None}


def chunk(cid: str, model: str, delta: dict | None, finish_reason: str | None = None,
          with_usage: bool = False, content_logprobs: list[dict] | None = None) -> dict:
    """One `chat.completion.chunk`; `delta=None` is the usage-only chunk, which has no choices."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [] if delta is None else
            [{"index": 0, "delta": delta, "logprobs": logprobs(content_logprobs), "finish_reason": finish_reason}]}
    if with_usage:
        body["usage"] = None
    return body


def model_list(model: str, created: int) -> dict:
    return {"object": "list", "data": [{"id": model, "object": "model", "created": created, "owned_by": "vlit"}]}

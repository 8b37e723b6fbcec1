"""The OpenAI-compatible HTTP API: `POST /v1/chat/completions` (plain or streamed), `GET /v1/models`,
`GET /health`. `create_app(pipe, settings)` builds it; `vlit serve` runs it under uvicorn.

No request does unbounded work: the body's size is capped before it is parsed (`Guard`), its text and options
before anything is fetched or tokenized (`messages.check`), remote images are fetched on the event loop under
one deadline, and request threads decode images, tokenize and compile grammars (`PromptEncoder`), so the
`Batcher`'s one worker thread only runs the model. A client that leaves has its generation stopped, streamed
or not. Every error leaves in OpenAI's shape (`vlit.serving.errors`), never as a traceback; the OpenAPI
schema (`/openapi.json`) documents each status with that body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from vlit.data.loading.transforms import ImageSpec
from vlit.errors import VlitError
from vlit.inference.engine import TokenLogprob
from vlit.inference.grounding import parse_grounding
from vlit.inference.pipeline import Pipeline
from vlit.serving import schema
from vlit.serving.batcher import Batcher, Completion, Job
from vlit.serving.errors import APIError, error_body
from vlit.serving.handlers import Guard, add_error_handlers
from vlit.serving.images import fetch_images
from vlit.serving.messages import Prepared, check, image_urls, prepare
from vlit.serving.prompts import PromptEncoder
from vlit.serving.schema import ChatRequest, Health, error_responses
from vlit.serving.settings import ServerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
CLIENT_GONE = 499  # nginx's "client closed request": only the access log ever sees it
STREAM_OR_JSON = {"description": "The completion; with `stream: true`, server-sent `chat.completion.chunk`s",
                  "content": {"application/json": {}, "text/event-stream": {}}}


def create_app(pipe: Pipeline, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    batcher = Batcher(pipe, settings.max_batch_size, settings.batch_wait_ms / 1000, settings.max_queue,
                      settings.max_prompt_tokens, settings.static_batching, settings.prefix_cache_size)
    encoder = PromptEncoder(pipe, settings)
    started = int(time.time())
    token_text = encoder.token_text

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(batcher.stop)

    app = FastAPI(title="vlit", summary="OpenAI-compatible chat completions with images", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.encoder = encoder
    app.state.settings = settings
    app.add_middleware(Guard, settings=settings)
    add_error_handlers(app)

    @app.get("/health", responses={200: {"model": Health}, 503: {"model": Health, "description": "Not ready"},
                                   **error_responses()})
    def health() -> JSONResponse:
        body = {"status": "ok" if batcher.running else "not ready", "model": settings.model_name,
                "waiting": batcher.waiting, "stats": dataclasses.asdict(batcher.stats)}
        return JSONResponse(body, status_code=200 if batcher.running else 503)

    @app.get("/v1/models", responses=error_responses(401))
    def models() -> dict:
        return schema.model_list(settings.model_name, started)

    # FastAPI would list 422 for the path parameter with its own body; it is listed here with the real one.
    @app.get("/v1/models/{model_id}", responses=error_responses(401, 404, 422))
    def model(model_id: str) -> dict:
        _check_model(model_id, settings)
        return schema.model_list(settings.model_name, started)["data"][0]

    def encoded(chat: ChatRequest, fetched: dict[str, bytes]) -> Prepared:
        """Images decoded, prompt tokenized, stop strings compiled: a request thread's work, never the worker's."""
        try:
            return encoder.encode(prepare(chat, settings, fetched))
        except VlitError:
            raise
        except Exception:  # logged here, answered as the worker answers its own failures
            log.exception("preparing a request failed")
            raise APIError(500, "The server had an error while processing your request.") from None

    @app.post("/v1/chat/completions", response_model=None,
              responses={200: STREAM_OR_JSON, **error_responses(400, 401, 404, 413, 422, 503)})
    async def chat_completions(chat: ChatRequest, request: Request) -> dict | Response:
        _check_model(chat.model, settings)
        check(chat, settings)  # before anything is fetched, decoded or tokenized
        fetched = await fetch_images(image_urls(chat), settings)
        prepared = await run_in_threadpool(encoded, chat, fetched)
        try:
            if chat.stream:
                include_usage = chat.stream_options is not None and chat.stream_options.include_usage
                return await _stream(batcher, prepared, settings.model_name, include_usage, request, token_text)
            job = _submit(batcher, prepared)
            done = await _unless_gone(request, job, asyncio.wrap_future(job.future))
        except ClientGone:
            return Response(status_code=CLIENT_GONE)
        boxes = answer_boxes(done.text, prepared, pipe.processor.image_spec)
        return schema.completion(schema.completion_id(), settings.model_name, done.text, done.finish_reason,
                                 _usage(done), boxes, _logprobs(done.logprobs, token_text), done.scores)

    return app


def _check_model(name: str, settings: ServerSettings) -> None:
    if name != settings.model_name:
        raise APIError(404, f"The model {name!r} does not exist; this server serves {settings.model_name!r}",
                       "model", "model_not_found")


def answer_boxes(text: str, prepared: Prepared, frame: ImageSpec | None = None) -> list[dict]:
    """The boxes in the answer, in pixels of the conversation's last image; `frame` is the model's image
    input, the square the model names boxes on."""
    if prepared.image_size is None:
        return []
    return [g.to_dict() for g in parse_grounding(text, *prepared.image_size, frame=frame)]


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def _submit(batcher: Batcher, prepared: Prepared,
            on_piece: Callable[[str, list[TokenLogprob]], None] | None = None) -> Job:
    d = prepared.decoding
    return batcher.submit(prepared.conversation, prepared.options, on_piece=on_piece, example=prepared.example,
                          grammar=prepared.grammar, choices=d.choices, top_logprobs=d.top_logprobs)


def _usage(done: Completion) -> dict:
    return schema.usage(done.prompt_tokens, done.completion_tokens, done.cached_tokens)


def _logprobs(entries: list[TokenLogprob] | None, text: Callable[[int], str]) -> list[dict] | None:
    """OpenAI's `logprobs.content` for the answer's tokens (their texts decoded one token at a time)."""
    if entries is None:
        return None
    return [schema.token_logprob(text(e.token), e.logprob,
                                 [schema.token_logprob(text(t), lp) for t, lp in e.top]) for e in entries]


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection. The body has been read, so the next ASGI message is
    the disconnect (the server sends it when the connection drops, or once the response is complete)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(request: Request, job: Job, waiting: Awaitable[T]) -> T:
    """`waiting`'s result, or ClientGone once the client has left: its job is cancelled then, so the worker drops
    it from the queue or stops it at the next decoding step instead of answering nobody."""
    task = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():  # the client left, or the server is stopping: nobody waits for this answer
            job.cancel()
            task.cancel()
    if task.cancelled():
        raise ClientGone
    return task.result()


def _sse(body: dict | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body)}\n\n"


async def _stream(batcher: Batcher, prepared: Prepared, model: str, include_usage: bool, request: Request,
                  token_text: Callable[[int], str]) -> StreamingResponse:
    """Server-sent `chat.completion.chunk`s: the role, the content pieces (with their tokens' log-probabilities
    when asked), the finish reason, the usage when asked, `[DONE]`."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[str, list[TokenLogprob]] | None] = asyncio.Queue()
    wants_logprobs = prepared.decoding.top_logprobs is not None

    def put(*item) -> None:  # called from the worker thread
        with suppress(RuntimeError):  # the loop has closed: the server is shutting down, nobody listens
            loop.call_soon_threadsafe(pieces.put_nowait, item or None)

    job = _submit(batcher, prepared, on_piece=put)  # 503 before any byte
    job.future.add_done_callback(lambda _: put())
    # The status line waits for the first piece, so a request the worker refuses still gets its own status
    # rather than a 200 followed by an error event; a client that leaves while it waits is noticed.
    first = await _unless_gone(request, job, pieces.get())
    if first is None and job.future.exception() is not None:
        raise job.future.exception()
    cid = schema.completion_id()

    def chunk(delta: dict | None, finish: str | None = None, entries: list[TokenLogprob] | None = None) -> str:
        content = _logprobs(entries, token_text) if wants_logprobs else None
        return _sse(schema.chunk(cid, model, delta, finish, with_usage=include_usage, content_logprobs=content))

    async def events() -> AsyncIterator[str]:
        try:
            yield chunk({"role": "assistant", "content": ""})
            item = first
            while item is not None:
                yield chunk({"content": item[0]}, entries=item[1])
                item = await pieces.get()
            try:
                done = job.future.result()
            except APIError as e:  # the status line has gone out: OpenAI sends errors as an event then
                yield _sse(e.body())
                return
            except Exception:
                log.exception("streamed generation failed")
                yield _sse(error_body(500, "The server had an error while generating the answer."))
                return
            yield chunk({}, done.finish_reason)
            if include_usage:
                yield _sse({**schema.chunk(cid, model, None), "usage": _usage(done)})
            yield _sse("[DONE]")
        finally:
            job.cancel()  # a client that left mid-answer stops the generation

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

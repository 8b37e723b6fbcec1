"""The OpenAI-compatible HTTP API: `POST /v1/chat/completions` (plain or streamed), `GET /v1/models`,
`GET /health`. `create_app(pipe, settings)` builds it; `vlit serve` runs it under uvicorn.

Request threads only parse and decode images; the `Batcher`'s one worker thread owns the model. Every error
leaves in OpenAI's shape (`vlit.serving.errors`), never as a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from vlit.data.loading.transforms import ImageSpec
from vlit.inference.grounding import parse_grounding
from vlit.inference.pipeline import Pipeline
from vlit.serving import schema
from vlit.serving.batcher import Batcher, Job
from vlit.serving.errors import APIError, error_body
from vlit.serving.handlers import Guard, add_error_handlers
from vlit.serving.messages import Prepared, prepare
from vlit.serving.schema import ChatRequest
from vlit.serving.settings import ServerSettings

log = logging.getLogger(__name__)


def create_app(pipe: Pipeline, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    batcher = Batcher(pipe, settings.max_batch_size, settings.batch_wait_ms / 1000, settings.max_queue,
                      settings.max_prompt_tokens)
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(batcher.stop)

    app = FastAPI(title="vlit", summary="OpenAI-compatible chat completions with images", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.settings = settings
    app.add_middleware(Guard, settings=settings)
    add_error_handlers(app)

    @app.get("/health")
    def health() -> JSONResponse:
        body = {"status": "ok" if batcher.running else "not ready", "model": settings.model_name,
                "waiting": batcher.waiting, "stats": dataclasses.asdict(batcher.stats)}
        return JSONResponse(body, status_code=200 if batcher.running else 503)

    @app.get("/v1/models")
    def models() -> dict:
        return schema.model_list(settings.model_name, started)

    @app.get("/v1/models/{model_id}")
    def model(model_id: str) -> dict:
        _check_model(model_id, settings)
        return schema.model_list(settings.model_name, started)["data"][0]

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: ChatRequest) -> dict | StreamingResponse:
        _check_model(request.model, settings)
        prepared = await run_in_threadpool(prepare, request, settings)  # may fetch and decode images
        if request.stream:
            include_usage = request.stream_options is not None and request.stream_options.include_usage
            return await _stream(batcher, prepared, settings.model_name, include_usage)
        job = batcher.submit(prepared.conversation, prepared.options)
        done = await asyncio.wrap_future(job.future)
        boxes = answer_boxes(done.text, prepared, pipe.processor.image_spec)
        return schema.completion(schema.completion_id(), settings.model_name, done.text, done.finish_reason,
                                 done.prompt_tokens, done.completion_tokens, boxes)

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


def _sse(body: dict | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body)}\n\n"


async def _stream(batcher: Batcher, prepared: Prepared, model: str, include_usage: bool) -> StreamingResponse:
    """Server-sent `chat.completion.chunk`s: the role, the content pieces, the finish reason, `[DONE]`."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:  # called from the worker thread
        with suppress(RuntimeError):  # the loop has closed: the server is shutting down, nobody listens
            loop.call_soon_threadsafe(pieces.put_nowait, item)

    job: Job = batcher.submit(prepared.conversation, prepared.options, on_piece=put)  # 503 before any byte
    job.future.add_done_callback(lambda _: put(None))
    # The status line waits for the first piece, so a request the worker refuses (a prompt over the limit)
    # still gets its own status rather than a 200 followed by an error event.
    first = await pieces.get()
    if first is None and job.future.exception() is not None:
        raise job.future.exception()
    cid = schema.completion_id()

    def chunk(delta: dict | None, finish: str | None = None) -> str:
        return _sse(schema.chunk(cid, model, delta, finish, with_usage=include_usage))

    async def events() -> AsyncIterator[str]:
        try:
            yield chunk({"role": "assistant", "content": ""})
            piece = first
            while piece is not None:
                yield chunk({"content": piece})
                piece = await pieces.get()
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
                yield _sse({**schema.chunk(cid, model, None),
                            "usage": schema.usage(done.prompt_tokens, done.completion_tokens)})
            yield _sse("[DONE]")
        finally:
            job.cancel()  # a client that left mid-answer stops the generation

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

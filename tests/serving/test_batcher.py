"""The queue: continuous batching (any options share the running batch, answers equal to one at a time), the
static policy kept for comparison, limits, cancellation, failures that stay alone; and how the HTTP layer
answers when the queue is full, stopped, or the model fails unexpectedly."""

from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from vlit.data.conversation import Conversation
from vlit.inference.engine import Engine
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.serving.api import create_app
from vlit.serving.batcher import Batcher
from vlit.serving.errors import APIError
from vlit.serving.settings import ServerSettings

GREEDY = GenerationOptions(max_new_tokens=6)
LONG = GenerationOptions(max_new_tokens=24)
QUESTIONS = ["What is this?", "Hi.", "Describe a red fox in the snow, please.", "Count to three."]


@pytest.fixture
def pipe(debug_model) -> Pipeline:
    return Pipeline(*debug_model)


def _results(jobs, timeout: float = 60):
    return [job.future.result(timeout) for job in jobs]


def _alone(pipe: Pipeline, conversation: Conversation, options: GenerationOptions) -> list[int]:
    return pipe.generate_ids([conversation], **dataclasses.asdict(options))[0]


def test_requests_of_any_options_share_the_running_batch_and_match_one_at_a_time(pipe, red_image):
    conversations = [Conversation.single(q, image=red_image if i % 2 else None) for i, q in enumerate(QUESTIONS)]
    options = [GREEDY, LONG, GenerationOptions(max_new_tokens=9, repetition_penalty=1.3), LONG]
    seeded = GenerationOptions(max_new_tokens=6, do_sample=True, temperature=0.7, seed=3)
    batcher = Batcher(pipe, max_batch_size=8)
    jobs = [batcher.submit(c, o) for c, o in zip(conversations, options, strict=True)]
    sampled = batcher.submit(conversations[0], seeded)  # queued before the worker starts: all start together
    batcher.start()
    done = _results(jobs)
    with_company = sampled.future.result(60)
    alone_sample = batcher.submit(conversations[0], seeded).future.result(60)
    batcher.stop()
    alone = [_alone(pipe, c, o) for c, o in zip(conversations, options, strict=True)]
    assert [r.completion_tokens for r in done] == [len(ids) for ids in alone]
    assert [r.text for r in done] == [pipe.decode(ids) for ids in alone]
    assert done[0].prompt_tokens == len(pipe.processor.encode(conversations[0], add_generation_prompt=True))
    # A seeded sample has its own random generator: its neighbours do not change it.
    assert with_company.text == alone_sample.text
    assert batcher.stats.batched_requests == 5 and batcher.stats.largest_batch == 5
    assert batcher.stats.steps < sum(len(ids) for ids in alone)


def test_a_request_joins_the_running_batch_without_waiting_for_it_to_finish(pipe):
    batcher = Batcher(pipe, max_batch_size=4)
    batcher.start()
    long = batcher.submit(Conversation.single("Tell me a story."), GenerationOptions(max_new_tokens=60))
    while not batcher.stats.steps:
        time.sleep(0.005)
    short = batcher.submit(Conversation.single("Hi."), GREEDY)
    short.future.result(60)
    assert not long.future.done()  # the short one finished while the long one was still being decoded
    long.future.result(60)
    batcher.stop()
    assert batcher.stats.batched_requests == 2


def test_static_batching_waits_for_a_batch_of_equal_options(pipe):
    batcher = Batcher(pipe, max_batch_size=4, batch_wait_s=0.3, static=True)
    jobs = [batcher.submit(Conversation.single(q), GREEDY) for q in QUESTIONS[:3]]
    other = batcher.submit(Conversation.single("Other."), LONG)
    batcher.start()
    _results([*jobs, other])
    batcher.stop()
    assert batcher.stats.batched_requests == 3 and batcher.stats.largest_batch == 3


def test_a_request_that_fails_does_not_fail_the_others(pipe, monkeypatch):
    batcher = Batcher(pipe, max_batch_size=4, max_prompt_tokens=40)
    jobs = [batcher.submit(Conversation.single(q), GREEDY) for q in ("One?", "word " * 60, "Two?")]
    batcher.start()
    with pytest.raises(APIError) as info:
        jobs[1].future.result(60)
    assert info.value.status == 400 and info.value.code == "context_length_exceeded"
    first, third = jobs[0].future.result(60), jobs[2].future.result(60)
    # A decoding step that fails fails the answers in it; the worker starts afresh for the next ones.
    original = Engine.step
    failures = iter([True])

    def fail_once(self):
        if next(failures, False):
            raise RuntimeError("step failure")
        return original(self)

    monkeypatch.setattr(Engine, "step", fail_once)
    with pytest.raises(RuntimeError):
        batcher.submit(Conversation.single("One?"), GREEDY).future.result(60)
    again = _results([batcher.submit(Conversation.single(q), GREEDY) for q in ("One?", "Two?")])
    batcher.stop()
    assert [r.text for r in again] == [first.text, third.text]


def test_queue_limit_cancellation_and_stop(pipe):
    batcher = Batcher(pipe, max_queue=2)
    kept = batcher.submit(Conversation.single("Hi"), GREEDY)
    dropped = batcher.submit(Conversation.single("Bye"), GREEDY)
    with pytest.raises(APIError) as info:
        batcher.submit(Conversation.single("One too many"), GREEDY)
    assert info.value.status == 503 and info.value.code == "overloaded"
    dropped.cancel()  # the client went away while it waited
    batcher.start()
    assert kept.future.result(60).text is not None
    assert dropped.future.cancelled() and batcher.stats.requests == 1
    batcher.stop()
    with pytest.raises(APIError) as info:
        batcher.submit(Conversation.single("Late"), GREEDY)
    assert info.value.status == 503 and info.value.code == "not_ready"


def test_cancelling_a_running_job_stops_its_row_at_the_next_step(pipe):
    """A client that leaves a non-streamed request mid-answer: its row stops, its neighbour's answer is the one
    it gets alone."""
    story, count = Conversation.single("Tell me a story."), Conversation.single("Count to three.")
    alone = _alone(pipe, count, LONG)
    steps: list[int] = []
    leaving: list = []

    def step(module, args) -> None:
        steps.append(1)
        if len(steps) == 4:
            leaving[0].cancel()

    handle = pipe.model.llm.get_decoder().register_forward_pre_hook(step)
    batcher = Batcher(pipe, max_batch_size=2)
    try:
        leaving.append(batcher.submit(story, LONG))
        staying = batcher.submit(count, LONG)
        batcher.start()
        left, stayed = leaving[0].future.result(60), staying.future.result(60)
        assert stayed.completion_tokens == len(alone) and stayed.text == pipe.decode(alone)
        assert left.completion_tokens <= 4 < len(alone)
    finally:
        handle.remove()
        batcher.stop()
    assert batcher.stats.cancelled == 1 and batcher.stats.batched_requests == 2


def test_streaming_through_the_queue(pipe):
    batcher = Batcher(pipe)
    batcher.start()
    pieces: list[str] = []
    job = batcher.submit(Conversation.single("Tell me a story."), LONG, on_piece=lambda p, _: pieces.append(p))
    done = job.future.result(60)
    assert "".join(pieces) == done.text == pipe.chat(Conversation.single("Tell me a story."), max_new_tokens=24)
    # A client that leaves after the first piece stops the generation; the worker goes on with the next job.
    seen: list[str] = []
    submitted = threading.Event()

    def leave(piece: str, _) -> None:
        seen.append(piece)
        submitted.wait(10)
        job.cancel()

    job = batcher.submit(Conversation.single("Tell me a story."), LONG, on_piece=leave)
    submitted.set()
    assert job.future.result(60).completion_tokens < LONG.max_new_tokens and len(seen) <= 2
    assert batcher.submit(Conversation.single("Hi"), GREEDY).future.result(60).text is not None
    batcher.stop()
    assert batcher.stats.streams == 2


# ---- the HTTP layer around the queue -------------------------------------------------------------------------

BODY = {"model": "vlit", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def _error(response, status: int, code: str | None) -> dict:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    return error


def test_full_queue_is_503_and_a_stopped_worker_is_not_ready(pipe):
    app = create_app(pipe, ServerSettings(max_queue=1))
    client = TestClient(app)  # not entered: the worker has not started, so the first request waits
    first: list = []
    waiting = threading.Thread(target=lambda: first.append(client.post("/v1/chat/completions", json=BODY)))
    waiting.start()
    deadline = time.monotonic() + 30
    while app.state.batcher.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "overloaded" in _error(client.post("/v1/chat/completions", json=BODY), 503, "overloaded")["message"]
    app.state.batcher.start()
    waiting.join(60)
    assert first[0].status_code == 200
    app.state.batcher.stop()
    _error(client.post("/v1/chat/completions", json=BODY), 503, "not_ready")
    assert client.get("/health").status_code == 503


def test_an_unexpected_failure_is_a_500_without_details(caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    broken = SimpleNamespace(processor=SimpleNamespace(encode=boom))
    with TestClient(create_app(broken, ServerSettings()), raise_server_exceptions=False) as client:
        response = client.post("/v1/chat/completions", json=BODY)
        error = _error(response, 500, None)
        assert error["type"] == "server_error" and "secret" not in response.text
        assert client.get("/health").status_code == 200
    assert "secret internals" in caplog.text  # logged on the server side

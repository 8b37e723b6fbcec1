"""The queue: grouping by options, batched == one at a time, limits, cancellation, failures that stay alone;
and how the HTTP layer answers when the queue is full, stopped, or the model fails unexpectedly."""

from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from vlit.data.conversation import Conversation
from vlit.inference.pipeline import GenerationOptions, Pipeline
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


@pytest.fixture
def calls(pipe, monkeypatch) -> list[int]:
    """Batch sizes of the pipeline's `generate_ids` calls."""
    sizes: list[int] = []
    original = pipe.generate_ids

    def recording(conversations, **generation):
        sizes.append(len(conversations))
        return original(conversations, **generation)

    monkeypatch.setattr(pipe, "generate_ids", recording)
    return sizes


def _results(jobs, timeout: float = 60):
    return [job.future.result(timeout) for job in jobs]


def test_equal_options_share_a_batch_and_match_one_at_a_time(pipe, calls, red_image):
    conversations = [Conversation.single(q, image=red_image if i % 2 else None) for i, q in enumerate(QUESTIONS)]
    sampled = GenerationOptions(max_new_tokens=6, do_sample=True, temperature=0.7)
    seeded = GenerationOptions(max_new_tokens=6, do_sample=True, temperature=0.7, seed=3)
    batcher = Batcher(pipe, max_batch_size=4, batch_wait_s=0.3)
    greedy = [batcher.submit(c, GREEDY) for c in conversations]  # queued before the worker starts
    others = [batcher.submit(conversations[0], sampled), batcher.submit(conversations[1], sampled),
              batcher.submit(conversations[0], seeded), batcher.submit(conversations[0], GREEDY)]
    batcher.start()
    batched = _results(greedy)
    _results(others)
    batcher.stop()
    # Greedy x4 together, the two unseeded samples together, the seeded one alone, the late greedy one alone.
    assert calls == [4, 2, 1, 1]
    assert batcher.stats.batches == 4 and batcher.stats.batched_requests == 6 and batcher.stats.largest_batch == 4
    alone = [pipe.generate_ids([c], **dataclasses.asdict(GREEDY))[0] for c in conversations]
    assert [r.completion_tokens for r in batched] == [len(ids) for ids in alone]
    assert [r.text for r in batched] == [pipe.decode(ids) for ids in alone]
    assert batched[0].prompt_tokens == len(pipe.processor.encode(conversations[0], add_generation_prompt=True))


def test_a_request_that_fails_does_not_fail_its_batch(pipe, calls, monkeypatch):
    batcher = Batcher(pipe, max_batch_size=4, batch_wait_s=0.2, max_prompt_tokens=40)
    jobs = [batcher.submit(Conversation.single(q), GREEDY) for q in ("One?", "word " * 60, "Two?")]
    batcher.start()
    with pytest.raises(APIError) as info:
        jobs[1].future.result(60)
    assert info.value.status == 400 and info.value.code == "context_length_exceeded"
    first, third = jobs[0].future.result(60), jobs[2].future.result(60)
    assert calls == [2]
    # A batch whose forward pass fails is retried one request at a time.
    original = pipe.generate_ids

    def fail_batches(conversations, **generation):
        if len(conversations) > 1:
            raise RuntimeError("batch failure")
        return original(conversations, **generation)

    monkeypatch.setattr(pipe, "generate_ids", fail_batches)
    again = _results([batcher.submit(Conversation.single(q), GREEDY) for q in ("One?", "Two?")])
    batcher.stop()
    assert [r.text for r in again] == [first.text, third.text]


def test_queue_limit_cancellation_and_stop(pipe, calls):
    batcher = Batcher(pipe, max_queue=2, batch_wait_s=0)
    kept = batcher.submit(Conversation.single("Hi"), GREEDY)
    dropped = batcher.submit(Conversation.single("Bye"), GREEDY)
    with pytest.raises(APIError) as info:
        batcher.submit(Conversation.single("One too many"), GREEDY)
    assert info.value.status == 503 and info.value.code == "overloaded"
    dropped.cancel()  # the client went away while it waited
    batcher.start()
    assert kept.future.result(60).text is not None
    assert dropped.future.cancelled() and calls == [1]
    batcher.stop()
    with pytest.raises(APIError) as info:
        batcher.submit(Conversation.single("Late"), GREEDY)
    assert info.value.status == 503 and info.value.code == "not_ready"


def test_cancelling_a_running_job_stops_its_row_at_the_next_step(pipe):
    """A client that leaves a non-streamed request mid-answer: its row of the batch stops, its neighbour's
    answer is the one it gets alone, and alone a cancelled job ends the generation."""
    story, count = Conversation.single("Tell me a story."), Conversation.single("Count to three.")
    alone = pipe.generate_ids([count], **dataclasses.asdict(LONG))[0]
    steps: list[int] = []
    leaving: list = []

    def step(module, args) -> None:
        steps.append(1)
        if len(steps) == 3:
            leaving[0].cancel()

    handle = pipe.model.llm.get_decoder().register_forward_pre_hook(step)
    batcher = Batcher(pipe, max_batch_size=2, batch_wait_s=0.3)
    try:
        leaving.append(batcher.submit(story, LONG))
        staying = batcher.submit(count, LONG)
        batcher.start()
        left, stayed = leaving[0].future.result(60), staying.future.result(60)
        assert stayed.completion_tokens == len(alone) and stayed.text == pipe.decode(alone)
        assert left.completion_tokens <= 3 < len(alone)
        steps.clear()
        leaving[0] = batcher.submit(story, LONG)
        assert leaving[0].future.result(60).completion_tokens <= 3
        assert len(steps) <= 3 < LONG.max_new_tokens
    finally:
        handle.remove()
        batcher.stop()
    assert batcher.stats.cancelled == 2 and batcher.stats.batched_requests == 2


def test_streaming_through_the_queue(pipe):
    batcher = Batcher(pipe)
    batcher.start()
    pieces: list[str] = []
    job = batcher.submit(Conversation.single("Tell me a story."), LONG, on_piece=pieces.append)
    done = job.future.result(60)
    assert "".join(pieces) == done.text == pipe.chat(Conversation.single("Tell me a story."), max_new_tokens=24)
    # A client that leaves after the first piece stops the generation; the worker goes on with the next job.
    seen: list[str] = []
    submitted = threading.Event()

    def leave(piece: str) -> None:
        seen.append(piece)
        submitted.wait(10)
        job.cancel()

    job = batcher.submit(Conversation.single("Tell me a story."), LONG, on_piece=leave)
    submitted.set()
    assert job.future.result(60).text == seen[0] and len(seen) == 1
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

"""16 concurrent clients against the live server: all answered, each as it is answered alone, streamed or not, in
shared decoding steps, and the model never runs two forward passes at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import openai

MODEL = "debug-vlm"
CLIENTS = 16
STREAMING = {3, 7, 11}  # a few clients stream: they share the running batch too


class Overlap:
    """Forward-hook pair on the LLM's decoder: the most forward passes that were ever running at once."""

    def __init__(self, module):
        self.active = self.peak = 0
        self.lock = threading.Lock()
        self.handles = [module.register_forward_pre_hook(self.enter), module.register_forward_hook(self.leave)]

    def enter(self, module, args) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self, module, args, out) -> None:
        with self.lock:
            self.active -= 1

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def test_sixteen_concurrent_clients(base_url, api_server, api_http, api_client, red_png, image_message):
    messages = [[image_message(f"Picture {i}: what is in it?", red_png)] if i % 2 else
                [{"role": "user", "content": f"Question {i}: tell me about the number {i}."}]
                for i in range(CLIENTS)]
    expected = [api_client.chat.completions.create(model=MODEL, messages=m, max_tokens=10).choices[0].message.content
                for m in messages]  # one at a time: each is a batch of one
    assert len(set(expected)) > 1

    before = api_http.get("/health").json()["stats"]
    overlap = Overlap(api_server[1].state.batcher.pipe.model.llm.get_decoder())
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> str:
        # One client each, as separate programs would have; bounded in time so a hang fails the test.
        c = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_client.api_key, max_retries=0, timeout=60)
        start.wait(30)
        if i in STREAMING:
            chunks = c.chat.completions.create(model=MODEL, messages=messages[i], max_tokens=10, stream=True)
            return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        return c.chat.completions.create(model=MODEL, messages=messages[i], max_tokens=10).choices[0].message.content

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(client, range(CLIENTS), timeout=120))
    finally:
        overlap.remove()
    after = api_http.get("/health").json()["stats"]

    assert answers == expected
    assert after["requests"] - before["requests"] == CLIENTS
    assert after["streams"] - before["streams"] == len(STREAMING)
    assert after["batched_requests"] > before["batched_requests"]  # shared forward passes happened
    assert after["steps"] - before["steps"] < CLIENTS * 10  # fewer steps than one request at a time
    assert overlap.peak == 1

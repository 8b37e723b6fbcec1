"""No request does unbounded work: text, stop strings and seeds are checked before anything costly, prompts are
tokenized off the worker and fitted to the model's context, a client that leaves stops its generation, and a
slow image host is cut off at the fetch deadline."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from vlit.data.conversation import Conversation
from vlit.errors import VlitError
from vlit.serving.api import create_app
from vlit.serving.cli import serve_parser, serve_settings
from vlit.serving.errors import APIError
from vlit.serving.images import fetch
from vlit.serving.prompts import PromptEncoder
from vlit.serving.settings import ServerSettings

MODEL = "debug-vlm"
HELLO = [{"role": "user", "content": "Hello"}]
CONTEXT = 1024  # the debug recipe's max_position_embeddings


def _post(api_http, **body) -> tuple[int, dict]:
    response = api_http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, **body})
    return response.status_code, response.json()


def _error(body: dict, param: str | None = None, code: str | None = None) -> str:
    error = body["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["code"] == code
    return error["message"]


@pytest.fixture
def calls(api_server, monkeypatch) -> dict[str, list[str]]:
    """The thread names that tokenized a prompt or compiled stop strings, on the worker's pipeline and on the
    request threads' encoder."""
    app = api_server[1]
    pipe, encoder = app.state.batcher.pipe, app.state.encoder
    seen: dict[str, list[str]] = {"worker encode": [], "worker stops": [], "request encode": []}

    def spy(owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def recording(*args, **kwargs):
            seen[key].append(threading.current_thread().name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recording)

    spy(pipe.processor, "encode", "worker encode")
    spy(pipe.tokenizer, "get_vocab", "worker stops")  # what compiling stop strings reads first
    spy(encoder.processor, "encode", "request encode")
    return seen


def test_the_worker_never_tokenizes_nor_compiles_stop_strings(api_client, calls):
    plain = api_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4, stop=["never seen"])
    chunks = list(api_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4, stream=True,
                                                     stop=["nor this"]))
    assert plain.usage.prompt_tokens > 0 and chunks
    assert calls["worker encode"] == [] and calls["worker stops"] == []
    assert len(calls["request encode"]) == 2 and "vlit-batcher" not in calls["request encode"]


def test_text_over_the_character_limit_is_refused_before_tokenizing(api_http, calls):
    limit = 16 * 4096  # the test server's max_prompt_tokens, 16 characters a token
    text = "word " * (limit // 5 + 1)
    got, body = _post(api_http, messages=[{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": [{"type": "text", "text": text}]}])
    assert got == 400 and f"limit of {limit} (--max-prompt-chars)" in _error(body, "messages",
                                                                            "string_above_max_length")
    assert calls["request encode"] == [] and calls["worker encode"] == []


@pytest.mark.parametrize(("stop", "param"), [("x" * 129, "stop"), (["ok", "y" * 4000], "stop[1]")])
def test_stop_string_over_the_length_limit(api_http, calls, stop, param):
    got, body = _post(api_http, stop=stop)
    assert got == 400 and "limit of 128 (--max-stop-chars)" in _error(body, param)
    assert calls["request encode"] == [] and calls["worker stops"] == []


def _user(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": list(parts)}]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "a\ud800b"}]}, "messages[0].content"),
    ({"messages": _user({"type": "text", "text": "ok"}, {"type": "text", "text": "\udfff"})},
     "messages[0].content[1].text"),
])
def test_lone_surrogates_are_refused_naming_the_field(api_http, body, param):
    # Valid JSON (json.dumps writes the surrogate as an escape), not valid Unicode: no tokenizer, fetcher or
    # response encoder can take it.
    response = api_http.post("/v1/chat/completions", content=json.dumps({"model": MODEL, **body}).encode(),
                             headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "lone surrogate" in _error(response.json(), param, "invalid_text")


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": HELLO, "stop": ["ok", "\ud83d"]}, "stop[1]"),
    ({"messages": _user({"type": "image_url", "image_url": {"url": "http://127.0.0.1/\ud800"}})},
     "messages[0].content[0].image_url.url"),
])
def test_a_lone_surrogate_in_a_length_constrained_field_fails_the_schema(api_http, body, param):
    # pydantic refuses it where it measures the string (as it does an empty stop string): 400 naming it.
    response = api_http.post("/v1/chat/completions", content=json.dumps({"model": MODEL, **body}).encode(),
                             headers={"content-type": "application/json"})
    assert response.status_code == 400 and _error(response.json(), param, "invalid_request")


@pytest.mark.parametrize("seed", [2**64, -(2**70), 10**30])
def test_seed_outside_64_bits(api_http, seed):
    got, body = _post(api_http, seed=seed, temperature=1)
    assert got == 400 and "64-bit integer" in _error(body, "seed")


def test_seeds_at_the_ends_of_the_range_and_tiny_temperatures_answer(api_http):
    for extra in ({"seed": 2**64 - 1, "temperature": 1}, {"seed": -(2**63), "temperature": 1},
                  {"temperature": 1e-40}):  # a temperature that small is greedy, not a division into inf
        got, body = _post(api_http, max_tokens=2, **extra)
        assert got == 200, (extra, body)


def _words(reference, tokens: int) -> str:
    """Text whose prompt (the debug template's) is `tokens` tokens long."""
    def length(n: int) -> int:
        return len(reference.encode(Conversation.single(" ".join(["word"] * n))))

    n = tokens - length(0)
    while length(n) > tokens:
        n -= 1
    while length(n) < tokens:
        n += 1
    assert length(n) == tokens
    return " ".join(["word"] * n)


def test_prompt_and_answer_must_fit_the_model_context(api_server, api_http, reference):
    assert api_server[1].state.encoder.context_length == CONTEXT
    got, body = _post(api_http, messages=[{"role": "user", "content": _words(reference, CONTEXT + 10)}])
    assert got == 400
    assert _error(body, "messages", "context_length_exceeded") == (
        f"This model's maximum context length is {CONTEXT} tokens. However, your messages resulted in "
        f"{CONTEXT + 10} tokens. Please reduce the length of the messages.")
    near_the_end = [{"role": "user", "content": _words(reference, CONTEXT - 5)}]
    got, body = _post(api_http, messages=near_the_end, max_tokens=16)
    assert got == 400 and "you requested 1035 tokens (1019 in the messages, 16 in the completion)" in _error(
        body, "messages", "context_length_exceeded")
    # Without max_tokens the default (16) is lowered to what the context leaves, as vLLM does.
    got, body = _post(api_http, messages=near_the_end)
    assert got == 200 and body["usage"]["prompt_tokens"] == CONTEXT - 5
    assert body["usage"]["completion_tokens"] <= 5


def test_streamed_prompt_over_the_context_gets_its_own_status(api_http, reference):
    body = {"model": MODEL, "messages": [{"role": "user", "content": _words(reference, CONTEXT)}], "stream": True}
    response = api_http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and "maximum context length" in response.json()["error"]["message"]


def test_context_length_from_the_llm_config():
    def encoder(seq2seq: bool, **config) -> PromptEncoder:
        llm = SimpleNamespace(config=SimpleNamespace(**config))
        pipe = SimpleNamespace(processor=SimpleNamespace(seq2seq=seq2seq), model=SimpleNamespace(llm=llm))
        return PromptEncoder(pipe, ServerSettings())  # type: ignore[arg-type]

    assert encoder(False, max_position_embeddings=4096).context_length == 4096
    assert encoder(False, n_positions=2048).context_length == 2048  # GPT-2's name for it
    assert encoder(False).context_length is None
    assert encoder(True, n_positions=512).context_length is None  # T5: relative positions, no such limit


def test_a_client_that_leaves_a_plain_request_stops_the_generation(api_server, api_http):
    batcher = api_server[1].state.batcher
    decoder = batcher.pipe.model.llm.get_decoder()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Talk."}], "max_tokens": 64}
    steps: list[int] = []
    running = threading.Event()

    def step(module, args) -> None:
        steps.append(1)
        running.set()

    handle = decoder.register_forward_pre_hook(step)
    try:
        answer = api_http.post("/v1/chat/completions", json=body).json()
        whole = len(steps)
        assert whole > 20 and answer["usage"]["completion_tokens"] > 20  # long enough for leaving to show
        steps.clear()
        running.clear()
        cancelled = batcher.stats.cancelled
        data = json.dumps(body).encode()
        url = urlsplit(str(api_http.base_url))
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                f"Authorization: {api_http.headers['Authorization']}\r\nContent-Length: {len(data)}\r\n\r\n")
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            sock.sendall(head.encode() + data)
            assert running.wait(30)  # the answer is being generated: leave now
        deadline = time.monotonic() + 30
        while batcher.stats.cancelled == cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
        assert batcher.stats.cancelled == cancelled + 1
    finally:
        handle.remove()
    assert len(steps) < whole / 2


class Dripping(BaseHTTPRequestHandler):
    """An image host that promises 100 bytes and sends one every half second."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def dripping_host():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_dripping_image_host_is_cut_off_at_the_fetch_deadline(dripping_host, api_pipe):
    settings = ServerSettings(allowed_image_hosts=("127.0.0.1",), image_fetch_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(APIError) as info:
        asyncio.run(fetch(f"{dripping_host}/cat.png", settings, "p"))
    # Each read comes within httpx's per-read timeout: only a deadline on the whole fetch ends it before the
    # 50 s the host would take. The bound is loose on purpose: behaviour, not speed.
    assert time.monotonic() - started < 5
    assert info.value.status == 400 and info.value.code == "image_fetch_failed"
    assert "longer than 1" in info.value.message
    # Through the API: the request fails naming its image part (refused before the worker, which never starts).
    client = TestClient(create_app(api_pipe, settings))
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"{dripping_host}/x.png"}},
                                           {"type": "text", "text": "What is it?"}]}
    response = client.post("/v1/chat/completions", json={"model": "vlit", "messages": [message]})
    assert response.status_code == 400
    assert _error(response.json(), "messages[0].content[0].image_url", "image_fetch_failed")


def test_settings_and_flags_for_the_new_limits(tmp_path):
    assert ServerSettings(max_prompt_tokens=100).max_prompt_chars == 1600
    with pytest.raises(VlitError, match="max_stop_chars"):
        ServerSettings(max_stop_chars=0)
    args = serve_parser().parse_args(["--checkpoint", str(tmp_path), "--max-prompt-chars", "10",
                                      "--max-stop-chars", "8", "--image-fetch-timeout", "2.5"])
    settings = serve_settings(args)
    assert (settings.max_prompt_chars, settings.max_stop_chars, settings.image_fetch_timeout_s) == (10, 8, 2.5)

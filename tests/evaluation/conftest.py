"""A local judge: a tiny OpenAI-compatible chat-completions server in the test process (stdlib http.server in a
thread), answering each request with what the test's `reply(body)` returns and recording every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from vlit.cli import main as cli


@dataclass
class FakeJudge:
    url: str = ""
    reply: Callable[[dict[str, Any]], str | int] = lambda body: "0 0"
    """The reply's text, or an HTTP status to fail with."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Each request: its JSON body plus `path` and `authorization`."""

    def judged_eval(self, benchmark: str, bench: str | Path, predictions: str | Path, out: Path,
                    model: str = "j") -> int:
        """`vlit eval`'s exit code scoring `predictions` on `benchmark` at `bench` into `out`, judged by this
        server as `model`."""
        return cli(["eval", "--benchmarks", f"{benchmark}={bench}", "--predictions", f"{benchmark}={predictions}",
                    "--out", str(out), "--judge-url", self.url, "--judge-model", model])


def _handler(judge: FakeJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            judge.requests.append(body | {"path": self.path, "authorization": self.headers.get("Authorization")})
            answer = judge.reply(body)
            if isinstance(answer, int):
                payload, status = {"error": {"message": f"status {answer}"}}, answer
            else:
                payload, status = {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]}, 200
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_judge() -> Iterator[FakeJudge]:
    judge = FakeJudge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(judge))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    judge.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield judge
    finally:
        server.shutdown()
        server.server_close()

"""A judge model behind any OpenAI-compatible chat-completions endpoint (OpenAI, Azure's OpenAI-compatible
route, a local vLLM / llama.cpp / Ollama server): what scores the open-ended benchmarks (LLaVA-Bench,
MM-Vet) with their published prompts.

`Judge.chat` is one POST of `{"model", "messages", "temperature", "max_tokens"}` to `<url>/chat/completions`
returning the first choice's text. `JudgeLog` keeps every reply in `<benchmark>.judge.jsonl` beside the
predictions, keyed by the request, so an interrupted or repeated scoring run does not ask (and pay) again;
delete the file to have the judge asked afresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlit.errors import VlitError

Message = dict[str, str]
Ask = Callable[[str, list[Message], float, int], str]
"""(sample id, messages, temperature, max_tokens) -> the judge's reply: what a judged metric calls."""

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Judge:
    url: str
    """The API base (`https://api.openai.com/v1`, `http://localhost:8000/v1`) or the full
    `.../chat/completions` address."""
    model: str
    key: str | None = None
    """Sent as `Authorization: Bearer <key>`; None for servers that need none."""
    timeout_s: float = 120.0
    retries: int = 5
    """Further attempts after a rate limit, a server error or a dropped connection (the reference scripts
    retry these forever), waiting `retry_wait_s` doubled each time."""
    retry_wait_s: float = 2.0

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"

    def chat(self, messages: list[Message], temperature: float, max_tokens: int) -> str:
        """The judge's reply to `messages`; an error names the endpoint and what it answered."""
        try:
            import httpx
        except ImportError:
            raise VlitError("a judge model is asked through httpx: pip install 'vlit[eval]'") from None
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        wait = self.retry_wait_s
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = httpx.post(self.endpoint, json=body, headers=headers, timeout=self.timeout_s)
            except httpx.HTTPError as e:
                if last:
                    raise VlitError(f"judge {self.endpoint}: {type(e).__name__}: {e}") from None
            else:
                if response.status_code == 200:
                    return self._content(response)
                if last or response.status_code not in _RETRY_STATUS:
                    hint = " (is the API key set? --judge-key-env)" if response.status_code in (401, 403) else ""
                    raise VlitError(f"judge {self.endpoint}: HTTP {response.status_code}{hint}: "
                                    f"{' '.join(response.text.split())[:200]}")
            time.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")

    def _content(self, response: Any) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise VlitError(f"judge {self.endpoint}: not a chat completion: "
                            f"{' '.join(response.text.split())[:200]}") from None
        if not isinstance(content, str):
            raise VlitError(f"judge {self.endpoint}: the reply's content is not text: {content!r}"[:300])
        return content


class JudgeLog:
    """`judge` with its replies kept in a JSON Lines file (`{"id", "request", "model", "reply"}`, `request`
    the SHA-1 of the model, messages, temperature and max_tokens): a request already answered is not sent
    again."""

    def __init__(self, judge: Judge, path: Path) -> None:
        self.judge = judge
        self.path = path
        self.replies: dict[str, str] = {}
        if not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                # A line cut short by an interruption: keep the complete lines before it, append after them.
                path.write_text("".join(f"{kept}\n" for kept in lines[:n]), encoding="utf-8")
                break
            self.replies[row["request"]] = row["reply"]

    def ask(self, sample_id: str, messages: list[Message], temperature: float, max_tokens: int) -> str:
        request = json.dumps([self.judge.model, messages, temperature, max_tokens], ensure_ascii=False)
        key = hashlib.sha1(request.encode("utf-8")).hexdigest()
        if key not in self.replies:
            reply = self.judge.chat(messages, temperature, max_tokens)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"id": sample_id, "request": key, "model": self.judge.model, "reply": reply},
                                   ensure_ascii=False) + "\n")
            self.replies[key] = reply
        return self.replies[key]

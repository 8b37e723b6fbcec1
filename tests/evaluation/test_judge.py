"""The judge client against a local OpenAI-compatible server: the request it sends, retries on a rate limit,
one-line errors, and the reply log that keeps a rerun from asking again."""

from __future__ import annotations

import json

import pytest

from vlit.errors import VlitError
from vlit.evaluation.judge import Judge, JudgeLog

MESSAGES = [{"role": "system", "content": "be precise"}, {"role": "user", "content": "2 + 2?"}]


def test_a_chat_completion_is_one_post_with_the_reference_parameters(fake_judge):
    fake_judge.reply = lambda body: "4"
    judge = Judge(fake_judge.url, "gpt-4-0314", key="sk-test")
    assert judge.chat(MESSAGES, 0.2, 1024) == "4"
    (request,) = fake_judge.requests
    assert request["path"] == "/v1/chat/completions" and request["authorization"] == "Bearer sk-test"
    assert {k: request[k] for k in ("model", "messages", "temperature", "max_tokens")} == {
        "model": "gpt-4-0314", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 1024}
    # The full address works too, and no key sends no Authorization header.
    Judge(f"{fake_judge.url}/chat/completions/", "m").chat(MESSAGES, 0.0, 3)
    assert fake_judge.requests[1]["path"] == "/v1/chat/completions" and fake_judge.requests[1]["authorization"] is None


def test_a_rate_limit_is_retried_and_a_refusal_is_one_line(fake_judge):
    statuses = iter([429, 503])
    fake_judge.reply = lambda body: next(statuses, "ok")
    assert Judge(fake_judge.url, "m", retry_wait_s=0).chat(MESSAGES, 0.0, 3) == "ok"
    assert len(fake_judge.requests) == 3
    fake_judge.reply = lambda body: 401
    with pytest.raises(VlitError, match=r"judge http://127\.0\.0\.1:\d+/v1/chat/completions: HTTP 401 \(is the API key "
                                        r"set\? --judge-key-env\): .*status 401") as e:
        Judge(fake_judge.url, "m", retry_wait_s=0).chat(MESSAGES, 0.0, 3)
    assert "\n" not in str(e.value)
    assert len(fake_judge.requests) == 4  # a refusal is not retried
    fake_judge.reply = lambda body: 500
    with pytest.raises(VlitError, match="HTTP 500"):
        Judge(fake_judge.url, "m", retries=2, retry_wait_s=0).chat(MESSAGES, 0.0, 3)
    assert len(fake_judge.requests) == 4 + 3


def test_an_unreachable_judge_is_named():
    with pytest.raises(VlitError, match=r"judge http://127\.0\.0\.1:9/v1/chat/completions: Connect"):
        Judge("http://127.0.0.1:9/v1", "m", retries=0).chat(MESSAGES, 0.0, 3)


def test_the_log_answers_a_repeated_request_without_asking(fake_judge, tmp_path):
    fake_judge.reply = lambda body: f"reply to {body['messages'][-1]['content']} at {body['temperature']}"
    path = tmp_path / "bench.judge.jsonl"
    log = JudgeLog(Judge(fake_judge.url, "m"), path)
    assert log.ask("q1", MESSAGES, 0.0, 3) == "reply to 2 + 2? at 0.0"
    assert log.ask("q1", MESSAGES, 0.5, 3) == "reply to 2 + 2? at 0.5"  # another temperature is another request
    assert len(fake_judge.requests) == 2
    # A later run (a new log on the same file) asks nothing it has, even after a line cut short.
    path.write_text(path.read_text() + '{"id": "q2", "requ')
    again = JudgeLog(Judge(fake_judge.url, "m"), path)
    assert again.ask("q1", MESSAGES, 0.0, 3) == "reply to 2 + 2? at 0.0" and len(fake_judge.requests) == 2
    again.ask("q2", [{"role": "user", "content": "3?"}], 0.0, 3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q1", "q2"] and rows[2]["reply"] == "reply to 3? at 0.0"
    # Another judge model is another request.
    JudgeLog(Judge(fake_judge.url, "other"), path).ask("q1", MESSAGES, 0.0, 3)
    assert len(fake_judge.requests) == 4

"""Every request field honoured or refused, through the official OpenAI client: structured output (`parse()`),
ranked `guided_choice` answers equal to `vlit ask --candidates`, log-probabilities that sum to the answer's
log-likelihood, exact usage streamed or not, refused fields named in a 400, and `x-request-id`."""

from __future__ import annotations

import json
import random
import re
from typing import Literal

import openai
import pytest
import torch
from pydantic import BaseModel

from vlit.data.conversation import Conversation, Turn
from vlit.inference.cli import ask_main
from vlit.inference.ranking import encode_prompt, evaluating, score_after_prompt

MODEL = "debug-vlm"
HELLO = [{"role": "user", "content": "Hello there."}]
WORDS = ["red", "box", "sea", "why", "the", "cat", "run", "seven", "under", "bright", "tell", "me", "about", "a"]


class Verdict(BaseModel):
    colour: Literal["red", "green", "blue"]
    certain: bool


def _ask(client, messages, **kw):
    return client.chat.completions.create(model=MODEL, messages=messages, **kw)


def test_parse_returns_a_valid_pydantic_object(api_client, image_message, red_png):
    for messages in (HELLO, [image_message("What colour is it? Answer in JSON.", red_png)]):
        out = api_client.chat.completions.parse(model=MODEL, messages=messages, response_format=Verdict,
                                                max_tokens=64)
        parsed = out.choices[0].message.parsed
        assert isinstance(parsed, Verdict) and out.choices[0].finish_reason == "stop"
        assert Verdict.model_validate_json(out.choices[0].message.content) == parsed


def test_json_object_guided_json_and_regex(api_client):
    out = _ask(api_client, HELLO, max_tokens=64, extra_body={"guided_regex": "(yes|no), [0-9]{3}"})
    assert re.fullmatch("(yes|no), [0-9]{3}", out.choices[0].message.content)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["n"], "additionalProperties": False}
    out = _ask(api_client, HELLO, max_tokens=64, extra_body={"guided_json": schema})
    assert 0 <= json.loads(out.choices[0].message.content)["n"] <= 9
    out = _ask(api_client, HELLO, max_tokens=64, response_format={"type": "json_object"})
    if out.choices[0].finish_reason == "stop":  # a random model may still be inside a string at max_tokens
        assert isinstance(json.loads(out.choices[0].message.content), dict)
    else:
        assert out.choices[0].message.content.startswith("{")


def test_guided_choice_is_one_of_the_choices_and_equals_vlit_ask(api_client, checkpoint, capsys, image_message,
                                                                  red_png, tmp_path):
    from PIL import Image

    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (220, 20, 20)).save(image)
    choices = ["red", "green", "a blue square", "nothing"]
    for question in ("What colour is it?", "Is there a cat?", "Describe the picture."):
        out = _ask(api_client, [image_message(question, red_png)], extra_body={"guided_choice": choices})
        message = out.choices[0].message
        assert message.content in choices
        assert ask_main(["--checkpoint", str(checkpoint), "--image", str(image), "--candidates", ",".join(choices),
                         "--json", question]) == 0
        asked = json.loads(capsys.readouterr().out)
        assert message.content == asked["answer"]
        scores = message.model_extra["scores"]
        assert list(scores) == list(asked["scores"])
        assert scores == pytest.approx(asked["scores"], abs=1e-4)
        assert out.usage.completion_tokens > 0


def test_logprobs_sum_to_the_sequence_score(api_client, reference):
    conversation = Conversation.single("Tell me about the sea.")
    out = _ask(api_client, [{"role": "user", "content": "Tell me about the sea."}], max_tokens=12, logprobs=True,
               top_logprobs=3)
    content = out.choices[0].logprobs.content
    ids = reference.generate_ids([conversation], max_new_tokens=12)[0]
    assert len(content) == out.usage.completion_tokens == len(ids)
    model, processor = reference.model, reference.processor
    with evaluating(model):
        prompt = encode_prompt(model, processor, conversation)
        score, count = score_after_prompt(model, prompt, [ids], processor.tokenizer.pad_token_id)
    assert sum(t.logprob for t in content) == pytest.approx(float(score[0]), abs=1e-3)
    for token in content:  # greedy: the chosen token is the most likely one
        assert len(token.top_logprobs) == 3 and token.logprob == pytest.approx(token.top_logprobs[0].logprob)
        assert bytes(token.bytes).decode("utf-8", "replace") == token.token


def test_streamed_usage_equals_non_streamed_usage_on_50_prompts(api_client):
    rng = random.Random(0)
    for _ in range(50):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        messages = [{"role": "user", "content": text}]
        kw = {"max_tokens": rng.randint(1, 24)}
        if rng.random() < 0.3:
            kw["stop"] = [rng.choice(WORDS)]
        plain = _ask(api_client, messages, **kw)
        chunks = list(_ask(api_client, messages, stream=True, stream_options={"include_usage": True}, **kw))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens <= kw["max_tokens"], text
        assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
        assert streamed == plain.choices[0].message.content and finish == [plain.choices[0].finish_reason]


def test_sampling_fields_are_honoured(api_client, reference):
    conversation = Conversation.single("Tell me about the sea.")
    messages = [{"role": "user", "content": "Tell me about the sea."}]
    for fields in ({"repetition_penalty": 1.6}, {"frequency_penalty": 1.5, "presence_penalty": 0.5}):
        out = _ask(api_client, messages, max_tokens=12, extra_body=fields)
        assert out.choices[0].message.content == reference.chat(conversation, max_new_tokens=12, **fields)
    plain = _ask(api_client, messages, max_tokens=12, logprobs=True).choices[0]
    first = plain.logprobs.content[0]
    token = reference.tokenizer.convert_tokens_to_ids(reference.tokenizer.tokenize(first.token))[0]
    biased = _ask(api_client, messages, max_tokens=6, logprobs=True, logit_bias={str(token): 100})
    assert all(t.token == first.token for t in biased.choices[0].logprobs.content)
    stopped = _ask(api_client, messages, max_tokens=12, extra_body={"stop_token_ids": [token]})
    assert stopped.usage.completion_tokens == 0
    longer = _ask(api_client, [{"role": "user", "content": "Hi"}], max_tokens=12, extra_body={"min_tokens": 10})
    assert longer.usage.completion_tokens >= 10
    # top_k 1 leaves one token to sample: the greedy answer, whatever the temperature.
    one = _ask(api_client, messages, max_tokens=12, temperature=1.8, seed=5, extra_body={"top_k": 1})
    assert one.choices[0].message.content == plain.message.content


REFUSED = [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"max_token": 5}, "max_token"),  # misspelt
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"audio": {"voice": "alloy"}}, "audio"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"guided_grammar": "root ::= \"a\""}, "guided_grammar"),
    ({"best_of": 2}, "best_of"),
    ({"n": 2}, "n"),
    ({"repetition_penalty": -1}, "repetition_penalty"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"store": True}, "store"),
    ({"logit_bias": {"hello": 3}}, "logit_bias.hello"),
    ({"logit_bias": {"99999999": 3}}, "logit_bias"),
    ({"guided_regex": "(unclosed"}, "guided_regex"),
    ({"guided_choice": ["a", "b"], "temperature": 0.7}, "temperature"),
    ({"guided_choice": ["a", "b"], "guided_regex": "a"}, "guided_choice"),
    ({"messages": [{"role": "user", "content": "Hi", "name": "ann"}]}, "messages[0].name"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "42"}]}, "messages[1].tool_calls"),
    ({"messages": [{"role": "tool", "tool_call_id": "1", "content": "42"}]}, "messages[0].role"),
]


@pytest.mark.parametrize(("fields", "param"), REFUSED, ids=[p for _, p in REFUSED])
def test_every_refused_field_gets_a_400_naming_it(api_http, fields, param):
    response = api_http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, **fields})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"].startswith(param.split(".")[0])
    if param.startswith(("tool", "messages")):
        assert "tool" in error["message"] or "name" in param


def test_the_openai_client_raises_bad_request_for_a_refused_field(api_client):
    with pytest.raises(openai.BadRequestError) as info:
        _ask(api_client, HELLO, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    assert "tool-call format" in str(info.value)


def test_harmless_fields_are_accepted(api_client):
    out = _ask(api_client, HELLO, max_tokens=4, user="u-1", metadata={"k": "v"}, store=False,
               parallel_tool_calls=True, tool_choice="none", logprobs=False)
    assert out.choices[0].message.content is not None


def test_every_response_carries_a_request_id(api_http):
    given = api_http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "max_tokens": 2},
                          headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    for response in (api_http.get("/health"), api_http.post("/v1/chat/completions", json={"model": MODEL}),
                     api_http.get("/v1/models", headers={"Authorization": "Bearer wrong"})):
        assert response.headers["x-request-id"].startswith("req_")


def test_a_second_turn_reuses_the_first_turns_cache(api_client, reference):
    first = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
    answer = _ask(api_client, first, max_tokens=16).choices[0].message.content
    messages = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "And then?"}]
    out = _ask(api_client, messages, max_tokens=8)
    assert out.usage.prompt_tokens_details.cached_tokens > out.usage.prompt_tokens // 2
    conversation = Conversation([Turn("user", first[0]["content"]), Turn("assistant", answer),
                                 Turn("user", "And then?")])
    assert out.choices[0].message.content == reference.chat(conversation, max_new_tokens=8)
    assert torch.is_grad_enabled()  # the engine's no_grad stays inside it

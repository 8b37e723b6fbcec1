"""The live server through the official OpenAI client: answers, streaming, images, multi-turn, options."""

from __future__ import annotations

import time

from PIL import Image

from vlit.data.conversation import Conversation, Turn

MODEL = "debug-vlm"


def _ask(client, messages, **kw):
    return client.chat.completions.create(model=MODEL, messages=messages, **kw)


def test_models_and_health(api_client, api_http):
    assert [m.id for m in api_client.models.list().data] == [MODEL]
    assert api_client.models.retrieve(MODEL).id == MODEL
    health = api_http.get("/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL and "batched_requests" in health["stats"]


def test_plain_text_answer_matches_the_pipeline(api_client, reference):
    out = _ask(api_client, [{"role": "user", "content": "Hello there."}], max_tokens=8)
    choice = out.choices[0]
    assert out.object == "chat.completion" and out.model == MODEL and out.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant"
    assert choice.message.content == reference.chat(Conversation.single("Hello there."), max_new_tokens=8)
    assert choice.finish_reason in ("stop", "length")
    usage = out.usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_length_finish_reason_when_max_tokens_runs_out(api_client):
    out = _ask(api_client, [{"role": "user", "content": "Count to a hundred."}], max_tokens=1)
    # One token leaves no room for an end: the answer stopped on its length (or on eos at once, no text).
    assert out.usage.completion_tokens <= 1
    assert out.choices[0].finish_reason == ("length" if out.usage.completion_tokens == 1 else "stop")


def test_streamed_answer_joins_to_the_plain_answer(api_client, red_png, image_message):
    messages = [image_message("Describe the picture.", red_png)]
    plain = _ask(api_client, messages, max_tokens=12, temperature=0)
    chunks = list(_ask(api_client, messages, max_tokens=12, temperature=0, stream=True,
                       stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content and text
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens > 0


def test_stream_wire_format_ends_with_done(api_http):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": True}
    with api_http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]" and '"finish_reason": null' in events[0]


def test_image_part_is_seen_by_the_model(api_client, reference, red_png, image_message, red_image):
    out = _ask(api_client, [image_message("What colour is it?", red_png)], max_tokens=8)
    expected = reference.chat(Conversation.single("What colour is it?", image=red_image), max_new_tokens=8)
    assert out.choices[0].message.content == expected
    text_only = _ask(api_client, [{"role": "user", "content": "What colour is it?"}], max_tokens=8)
    # The image's tokens are counted in the prompt.
    assert out.usage.prompt_tokens > text_only.usage.prompt_tokens


def test_multi_turn_with_system_and_assistant_turns(api_client, reference, red_png, red_image):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "image_url",
                                                                          "image_url": {"url": red_png}}]},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": [{"type": "text", "text": "Are you sure?"}]},
    ]
    out = _ask(api_client, messages, max_tokens=8)
    conversation = Conversation([Turn("system", "You are terse."), Turn("user", "Look:\n<image>"),
                                 Turn("assistant", "A red square."), Turn("user", "Are you sure?")], [red_image])
    assert out.choices[0].message.content == reference.chat(conversation, max_new_tokens=8)


def test_allowed_image_host_is_fetched(api_client, image_host, image_message, reference):
    out = _ask(api_client, [image_message("What is it?", f"{image_host}/small.png")], max_tokens=6)
    green = Image.new("RGB", (32, 24), (10, 200, 30))
    assert out.choices[0].message.content == reference.chat(Conversation.single("What is it?", image=green),
                                                            max_new_tokens=6)


def test_stop_string_cuts_the_answer(api_client):
    messages = [{"role": "user", "content": "Tell me something."}]
    full = _ask(api_client, messages, max_tokens=16).choices[0].message.content
    words = full.split()
    assert len(words) >= 3
    cut = _ask(api_client, messages, max_tokens=16, stop=[words[2]])
    assert cut.choices[0].message.content == full[: full.index(words[2])].strip()
    assert cut.choices[0].finish_reason == "stop"


def test_sampling_with_a_seed_repeats_and_temperature_zero_is_greedy(api_client):
    messages = [{"role": "user", "content": "Say something."}]
    a = _ask(api_client, messages, max_tokens=8, temperature=1.5, top_p=0.9, seed=7).choices[0].message.content
    b = _ask(api_client, messages, max_tokens=8, temperature=1.5, top_p=0.9, seed=7).choices[0].message.content
    assert a == b
    greedy = _ask(api_client, messages, max_tokens=8).choices[0].message.content
    assert _ask(api_client, messages, max_tokens=8, temperature=0, top_p=0.5).choices[0].message.content == greedy


def test_task_field_and_written_task_prompt_alike(api_client):
    messages = [{"role": "user", "content": "the red ball"}]
    by_field = _ask(api_client, messages, max_tokens=6, extra_body={"vlit": {"task": "refer"}})
    written = _ask(api_client, [{"role": "user", "content": "[refer] the red ball"}], max_tokens=6)
    assert by_field.choices[0].message.content == written.choices[0].message.content
    assert by_field.usage.prompt_tokens == written.usage.prompt_tokens


def test_max_completion_tokens_and_unknown_fields(api_client):
    out = _ask(api_client, [{"role": "user", "content": "Hi"}], max_completion_tokens=3, user="someone",
               presence_penalty=0.0)
    assert out.usage.completion_tokens <= 3


def test_a_client_that_leaves_mid_stream_stops_the_generation(api_server, api_http):
    decoder = api_server[1].state.batcher.pipe.model.llm.get_decoder()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Talk."}], "max_tokens": 64, "stream": True}

    def forward_passes(leave_early: bool) -> int:
        steps: list[int] = []
        handle = decoder.register_forward_pre_hook(lambda module, args: steps.append(1))
        streams = api_http.get("/health").json()["stats"]["streams"]
        try:
            with api_http.stream("POST", "/v1/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if leave_early and '"content": "' in line and '"role"' not in line:
                        break  # the first piece of text: leave
            deadline = time.monotonic() + 30
            while api_http.get("/health").json()["stats"]["streams"] == streams and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            handle.remove()
        return len(steps)

    whole = forward_passes(leave_early=False)
    assert whole > 20  # the debug model talks long enough for leaving to show
    assert forward_passes(leave_early=True) < whole / 2

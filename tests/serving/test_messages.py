"""Requests -> conversations and options (no HTTP): image markers, merged turns, tasks, sampling, boxes."""

from __future__ import annotations

import pytest
from PIL import Image

from vlit.data.reading.images import ImageError, ImageTooLarge, decode_image
from vlit.serving.api import answer_boxes
from vlit.serving.errors import APIError
from vlit.serving.images import decode_data_uri
from vlit.serving.messages import Prepared, generation_options, image_urls, prepare
from vlit.serving.schema import ChatRequest
from vlit.serving.settings import ServerSettings

SETTINGS = ServerSettings(max_images=3)


def _request(messages: list[dict], **kw) -> ChatRequest:
    return ChatRequest.model_validate({"model": "vlit", "messages": messages, **kw})


def _img(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def test_image_parts_become_markers_where_they_stand(data_uri):
    red, blue = data_uri(Image.new("RGB", (8, 6), "red")), data_uri(Image.new("RGB", (5, 9), "blue"))
    messages = [{"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [_text("Compare"), _img(red), _text("with"), _img(blue)]},
                {"role": "assistant", "content": [_text("They differ.")]},
                {"role": "user", "content": "Why?"},
                {"role": "user", "content": [_img(red)]}]
    prepared = prepare(_request(messages), SETTINGS)
    turns = [(t.role, t.content) for t in prepared.conversation.turns]
    assert turns == [("system", "Be brief."), ("user", "Compare\n<image>\nwith\n<image>"),
                     ("assistant", "They differ."), ("user", "Why?\n\n<image>")]
    assert [im.size for im in prepared.conversation.images] == [(8, 6), (5, 9), (8, 6)]
    assert prepared.image_size == (8, 6)  # boxes refer to the last image


@pytest.mark.parametrize(("content", "expected"), [
    ("the red ball", "[refer] the red ball"),
    ("[refer] the red ball", "[refer] the red ball"),
    ([_img("IMG"), _text("the red ball")], "<image>\n[refer] the red ball"),
    ([_img("IMG")], "<image>\n[refer]"),
])
def test_task_goes_before_the_question_of_the_last_user_message(content, expected, data_uri):
    url = data_uri(Image.new("RGB", (4, 4)))
    if isinstance(content, list):
        content = [_img(url) if p.get("type") == "image_url" else p for p in content]
    messages = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": content}]
    turns = prepare(_request(messages, vlit={"task": "refer"}), SETTINGS).conversation.turns
    assert turns[0].content == "earlier" and turns[-1].content == expected


def test_sampling_fields_map_to_generation_options():
    def options(**kw):
        return generation_options(_request([{"role": "user", "content": "x"}], **kw), SETTINGS)

    assert not options().do_sample and options().max_new_tokens == SETTINGS.default_max_tokens
    assert not options(temperature=0, top_p=0.3, seed=4).do_sample
    assert options(temperature=0, seed=4).seed is None  # a seed means nothing to greedy decoding
    sampled = options(temperature=0.8, top_p=0.9, seed=4, stop="END", max_tokens=5)
    assert (sampled.do_sample, sampled.temperature, sampled.top_p, sampled.seed) == (True, 0.8, 0.9, 4)
    assert sampled.stop == ("END",) and sampled.max_new_tokens == 5
    assert options(top_p=0.5).do_sample and options(top_p=0.5).temperature == 1.0
    assert options(max_tokens=9, max_completion_tokens=3).max_new_tokens == 3


def test_remote_images_are_decoded_from_bytes_fetched_beforehand(data_uri):
    import base64

    url = "http://127.0.0.1/cat.png"
    png = base64.b64decode(data_uri(Image.new("RGB", (7, 5), "green")).partition(",")[2])
    messages = [{"role": "user", "content": [_img(url), _text("What?")]}, {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": [_text("And?"), _img(url)]}]
    request = _request(messages)
    assert image_urls(request) == [("messages[0].content[0].image_url", url), ("messages[2].content[1].image_url", url)]
    prepared = prepare(request, ServerSettings(allowed_image_hosts=("127.0.0.1",)), {url: png})
    assert [im.size for im in prepared.conversation.images] == [(7, 5), (7, 5)] and not prepared.max_tokens_given
    assert prepare(_request(messages, max_tokens=3), ServerSettings(allowed_image_hosts=("127.0.0.1",)),
                   {url: png}).max_tokens_given


def test_data_uri_decoding(data_uri):
    url = data_uri(Image.new("RGB", (3, 2), (1, 2, 3)))
    assert decode_image(decode_data_uri(url, SETTINGS, "p"), "p").getpixel((0, 0)) == (1, 2, 3)
    header, payload = url.split(",")
    wrapped = header + "," + "\n".join(payload[i:i + 76] for i in range(0, len(payload), 76))
    assert decode_data_uri(wrapped, SETTINGS, "p") == decode_data_uri(url, SETTINGS, "p")
    with pytest.raises(APIError) as info:
        decode_data_uri(url, ServerSettings(max_image_bytes=10), "p")
    assert info.value.status == 413


def test_decode_image_from_bytes_names_the_source(data_uri):
    with pytest.raises(ImageTooLarge, match="^upload: 30x20 = 600 pixels is over the limit of 100"):
        decode_image(decode_data_uri(data_uri(Image.new("RGB", (30, 20))), SETTINGS, "p"), "upload", 100)
    with pytest.raises(ImageError, match="^upload: not an image"):
        decode_image(b"plain text", "upload")
    with pytest.raises(ImageError, match="^upload: empty"):
        decode_image(b"", "upload")


def test_answer_boxes_are_in_pixels_of_the_last_image():
    prepared = Prepared(None, None, (200, 100))  # type: ignore[arg-type]
    boxes = answer_boxes("<p>red ball</p> {<10><20><30><40>} and {<0><0><50><50>}", prepared)
    # Grid cells 0..100 map to their centres in pixels: x by the width (2 px a cell), y by the height (1 px).
    assert boxes == [{"phrase": "red ball", "box": [21.0, 20.5, 61.0, 40.5]},
                     {"phrase": "red ball", "box": [1.0, 0.5, 101.0, 50.5]}]
    assert answer_boxes("no boxes here", prepared) == []
    assert answer_boxes("{<10><20><30><40>}", Prepared(None, None, None)) == []  # type: ignore[arg-type]

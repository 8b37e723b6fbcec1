"""The web demo without a browser: its handlers (task prefix, multi-turn history, streaming, reset, new image,
drawn boxes), the page it builds, and `vlit demo`'s errors.

Most tests answer with `ScriptedPipe`, whose answers the test chooses (the debug model's are random text);
one uses the real debug checkpoint for the plain path.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

from vlit.data.conversation import Conversation
from vlit.data.reading.images import load_image
from vlit.errors import VlitError
from vlit.inference.grounding import draw_grounding, parse_grounding
from vlit.inference.session import ChatState

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install 'vlit[serve]')")
from vlit.serving.demo import CHAT, DemoHandlers, build_demo, chat_messages, describe, launch  # noqa: E402

GROUNDED = "<p>red circle</p>{<10><20><30><40>}"


class ScriptedPipe:
    """Stands in for a Pipeline (`chat` and `stream`): answers with the given texts in turn, streamed a few
    characters at a time, and records every conversation and generation options it was given."""

    processor = SimpleNamespace(image_spec=None)  # no model input frame: boxes are read on the image itself

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.asked: list[tuple[Conversation, dict]] = []

    def stream(self, conversation: Conversation, **generation) -> Iterator[str]:
        self.asked.append((conversation, generation))
        answer = self.answers.pop(0)
        for i in range(0, len(answer), 5):
            yield answer[i:i + 5]

    def chat(self, conversation: Conversation, **generation) -> str:
        return "".join(self.stream(conversation, **generation))


class FailingPipe(ScriptedPipe):
    def stream(self, conversation: Conversation, **generation) -> Iterator[str]:
        yield "half an ans"
        raise VlitError("the prompt is too long")


def circle_image(path: Path, size: tuple[int, int] = (200, 100)) -> Path:
    """A white image with a red circle where `GROUNDED`'s box is (x 10..30%, y 20..40%)."""
    image = Image.new("RGB", size, "white")
    w, h = size
    ImageDraw.Draw(image).ellipse((0.1 * w, 0.2 * h, 0.3 * w, 0.4 * h), fill=(220, 20, 20))
    image.save(path)
    return path


@pytest.fixture
def image_path(tmp_path) -> Path:
    return circle_image(tmp_path / "circle.png")


def send(handlers: DemoHandlers, text: str, task: str, state: ChatState) -> list[tuple]:
    """Every update the send handler yields (message box, state, chat, drawing), each checked for a status
    line that matches its state."""
    updates = list(handlers.send(text, task, state))
    for *_, latest, _, _, status in updates:
        assert status == describe(latest)
    return [update[:4] for update in updates]


def started(handlers: DemoHandlers, image: Path | None) -> ChatState:
    state, chat, drawing, status = handlers.new_image(None if image is None else str(image), ChatState())
    assert chat == [] and drawing is None and status == describe(state)
    return state


def test_chat_sends_the_question_as_typed_and_streams_the_answer(image_path):
    pipe = ScriptedPipe("a red circle on white")
    handlers = DemoHandlers(pipe, {"max_new_tokens": 7})
    updates = send(handlers, "  What is this?  ", CHAT, started(handlers, image_path))
    asked, generation = pipe.asked[0]
    assert asked.turns[0].content == "<image>\nWhat is this?" and asked.images == [image_path]
    assert generation == {"max_new_tokens": 7}
    # The question shows at once with an empty answer, which then grows piece by piece.
    answers = [chat[-1]["content"] for _, _, chat, _ in updates]
    assert answers[0] == "" and answers[-1] == "a red circle on white"
    assert answers == sorted(answers, key=len) and len(set(answers)) > 3
    assert all(box == "" for box, *_ in updates)  # the message box is cleared
    box, state, chat, drawing = updates[-1]
    assert chat == [{"role": "user", "content": "What is this?"},
                    {"role": "assistant", "content": "a red circle on white"}]
    assert state.conversation.turns[-1].content == "a red circle on white"
    assert drawing is None  # no boxes in the answer, nothing to draw


@pytest.mark.parametrize("task", ["grounding", "refer", "identify", "detection", "vqa", "caption"])
def test_a_task_prefixes_the_question_with_its_identifier(task, image_path):
    pipe = ScriptedPipe("ok")
    handlers = DemoHandlers(pipe)
    *_, (_, _, chat, _) = send(handlers, "the red circle", task, started(handlers, image_path))
    assert pipe.asked[0][0].turns[-1].content == f"<image>\n[{task}] the red circle"
    assert chat[0] == {"role": "user", "content": f"[{task}] the red circle"}


def test_later_turns_carry_the_history_and_the_image_once(image_path):
    pipe = ScriptedPipe("first answer", "second answer")
    handlers = DemoHandlers(pipe)
    *_, (_, state, _, _) = send(handlers, "one?", CHAT, started(handlers, image_path))
    *_, (_, state, chat, _) = send(handlers, "two?", "vqa", state)
    second = pipe.asked[1][0]
    assert [(t.role, t.content) for t in second.turns] == [
        ("user", "<image>\none?"), ("assistant", "first answer"), ("user", "[vqa] two?")]
    assert second.images == [image_path]
    assert [m["content"] for m in chat] == ["one?", "first answer", "[vqa] two?", "second answer"]
    assert len(state.conversation.turns) == 4 and describe(state) == "image 200x100 · 2 exchanges"


def test_reset_forgets_the_conversation_but_keeps_the_image(image_path):
    pipe = ScriptedPipe("first answer", "fresh answer")
    handlers = DemoHandlers(pipe)
    *_, (_, state, _, _) = send(handlers, "one?", CHAT, started(handlers, image_path))
    state, chat, drawing, status = handlers.reset(state)
    assert state.conversation is None and state.image == image_path
    assert chat == [] and drawing is None and status == "image 200x100 · 0 exchanges"
    send(handlers, "one?", CHAT, state)
    assert pipe.asked[1][0].turns[0].content == "<image>\none?"
    assert len(pipe.asked[1][0].turns) == 1


def test_a_new_image_starts_a_new_conversation(image_path, tmp_path):
    pipe = ScriptedPipe("about the circle", "about the other one")
    handlers = DemoHandlers(pipe)
    *_, (_, state, _, _) = send(handlers, "what?", CHAT, started(handlers, image_path))
    other = circle_image(tmp_path / "other.png", (64, 64))
    state, chat, drawing, status = handlers.new_image(str(other), state)
    assert state.conversation is None and state.size == (64, 64)
    assert chat == [] and drawing is None and status == "image 64x64 · 0 exchanges"
    send(handlers, "and this?", CHAT, state)
    asked = pipe.asked[1][0]
    assert len(asked.turns) == 1 and asked.images == [other]
    # Removing the image also starts over, now without an image.
    state, _, _, status = handlers.new_image(None, state)
    assert state.image is None and state.picture is None and state.conversation is None
    assert status == "no image (text only) · 0 exchanges"


def test_boxes_in_the_answer_are_drawn_on_the_image(image_path):
    handlers = DemoHandlers(ScriptedPipe(GROUNDED))
    updates = send(handlers, "the red circle", "grounding", started(handlers, image_path))
    assert all(drawing is None for *_, drawing in updates[:-1])  # drawn once the answer is complete
    _, state, chat, drawing = updates[-1]
    picture = load_image(image_path)
    expected = draw_grounding(picture, parse_grounding(GROUNDED, 200, 100))
    assert drawing.size == picture.size and drawing.tobytes() == expected.tobytes()
    assert drawing.tobytes() != picture.tobytes()
    # The box, about (21,20)-(61,40) px, is outlined around the circle, which shows through inside.
    assert picture.getpixel((22, 21)) == (255, 255, 255) and drawing.getpixel((22, 21)) != (255, 255, 255)
    assert drawing.getpixel((40, 30)) == picture.getpixel((40, 30)) == (220, 20, 20)
    # The chat shows the answer's syntax literally (escaped), not as HTML.
    assert chat[-1]["content"] == "&lt;p&gt;red circle&lt;/p&gt;{&lt;10&gt;&lt;20&gt;&lt;30&gt;&lt;40&gt;}"
    assert state.conversation.turns[-1].content == GROUNDED


def test_without_an_image_the_chat_is_text_only_and_draws_nothing():
    pipe = ScriptedPipe(GROUNDED)
    handlers = DemoHandlers(pipe)
    *_, (_, state, _, drawing) = send(handlers, "hello", CHAT, ChatState())
    assert pipe.asked[0][0].images == [] and pipe.asked[0][0].turns[0].content == "hello"
    assert drawing is None and state.conversation is not None


def test_an_unknown_task_is_refused():
    with pytest.raises(VlitError, match="'nonsense' is not one of caption, vqa, refer, identify, detection, grounding"):
        send(DemoHandlers(ScriptedPipe("never")), "q", "nonsense", ChatState())


def test_an_empty_message_asks_nothing(image_path):
    pipe = ScriptedPipe()
    handlers = DemoHandlers(pipe)
    state = started(handlers, image_path)
    [(box, same, chat, drawing)] = send(handlers, "   ", CHAT, state)
    assert pipe.asked == [] and same is state and chat == [] and box == ""
    assert drawing == gr.skip()  # the drawing of the previous answer stays


def test_a_failed_answer_is_shown_as_an_error_and_not_recorded(image_path):
    handlers = DemoHandlers(FailingPipe())
    state = started(handlers, image_path)
    updates = handlers.send("q", CHAT, state)
    with pytest.raises(gr.Error, match="the prompt is too long"):
        for _, latest, _, _, _ in updates:
            assert latest.conversation is None


def test_an_upload_that_is_no_image_is_an_error(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(gr.Error, match="not an image"):
        DemoHandlers(ScriptedPipe()).new_image(str(bad), ChatState())


def test_bad_generation_options_fail_at_start():
    with pytest.raises(VlitError, match="max_new_tokens"):
        DemoHandlers(ScriptedPipe(), {"max_new_tokens": 0})
    with pytest.raises(VlitError, match="beam search cannot stream"):
        DemoHandlers(ScriptedPipe(), {"num_beams": 2})


def test_chat_messages_drop_the_image_marker_and_escape_html():
    conversation = Conversation.single("<b>what</b>?", "a & b", image="x.png")
    assert chat_messages(conversation, "stream") == [
        {"role": "user", "content": "&lt;b&gt;what&lt;/b&gt;?"},
        {"role": "assistant", "content": "a &amp; b"},
        {"role": "assistant", "content": "stream"}]
    assert chat_messages(None) == []


def test_build_demo_lays_out_the_page():
    demo = build_demo(ScriptedPipe(), title="vlit demo: ckpt")
    assert isinstance(demo, gr.Blocks) and demo.title == "vlit demo: ckpt"
    ids = {block.elem_id for block in demo.blocks.values()}
    assert {"vlit-image", "vlit-drawing", "vlit-chat", "vlit-task", "vlit-message", "vlit-send",
            "vlit-reset"} <= ids
    assert demo.analytics_enabled is False


def test_a_taken_port_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(VlitError, match=f"cannot serve on 127.0.0.1:{port}: is the port taken") as caught:
            launch(build_demo(ScriptedPipe()), "127.0.0.1", port, block=False, quiet=True)
    assert "\n" not in str(caught.value)


# ---- the real debug checkpoint -----------------------------------------------------------------------------

def test_the_debug_checkpoint_answers_as_its_pipeline_does(checkpoint, image_path):
    from vlit.inference.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(checkpoint)
    handlers = DemoHandlers(pipe, {"max_new_tokens": 5})
    *_, (_, state, _, _) = send(handlers, "What colour?", CHAT, started(handlers, image_path))
    first = Conversation.single("What colour?", image=image_path)
    expected = pipe.chat(first, max_new_tokens=5)
    assert state.conversation.turns[-1].content == expected
    *_, (_, state, _, _) = send(handlers, "Sure?", "vqa", state)
    second = first.add("assistant", expected).add("user", "[vqa] Sure?")
    assert state.conversation.turns[-1].content == pipe.chat(second, max_new_tokens=5)


# ---- vlit demo ---------------------------------------------------------------------------------------------

def test_demo_rejects_a_folder_that_is_no_checkpoint(tmp_path, capsys):
    from vlit.cli import main

    assert main(["demo", "--checkpoint", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vlit demo: error:") and "not a vlit checkpoint" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--max-new-tokens", "0"], "max_new_tokens: must be >= 1"),
    (["--temperature", "-1"], "temperature: must be > 0"),
    (["--num-beams", "2"], "beam search cannot stream"),
    (["--port", "70000"], "--port: must be in 1..65535"),
])
def test_bad_options_are_one_line_errors_before_the_model_loads(args, message, tmp_path, capsys):
    from vlit.cli import main

    # The folder is no checkpoint: the option's error must come first.
    assert main(["demo", "--checkpoint", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_serving_cli_imports_gradio_only_for_the_demo():
    code = "import sys, vlit.serving.cli; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"

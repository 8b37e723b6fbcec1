"""`vlit demo`: a web page (Gradio Blocks) to chat about an image and see the boxes of the answers.

Upload an image, pick a MiniGPT-v2 task ("chat" sends no identifier), ask in several turns; answers stream
into the chat and the boxes of the latest answer are drawn on a copy of the image. A new image starts a new
conversation, as in `vlit chat`, whose `ChatState` this page shares.

The handlers are plain methods of `DemoHandlers`, apart from the layout, so tests call them without a
browser. Each browser session keeps its own `ChatState` in `gr.State`; the chat window is always drawn from
that state, never read back from the page. Nothing here reaches the internet: analytics are off, there is
no share link and the theme uses system fonts.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.errors import VlitError
from vlit.inference.grounding import draw_grounding
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.inference.session import ChatState
from vlit.inference.tasks import TASKS

CHAT = "chat"
"""The task choice that sends questions without a task identifier."""

SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")
SYSTEM_MONO = ("ui-monospace", "Consolas", "monospace")

Message = dict[str, str]


def chat_messages(conversation: Conversation | None, partial: str | None = None) -> list[Message]:
    """The Chatbot's messages for a conversation (plus an answer still streaming): the image marker dropped,
    text HTML-escaped, because the Chatbot renders HTML and MiniGPT-v2's `<p>phrase</p>` would otherwise
    turn into a paragraph and hide the syntax the boxes come from."""
    turns = [] if conversation is None else conversation.messages
    shown = [(t.role, t.content.replace(IMAGE_TOKEN, "").strip()) for t in turns]
    if partial is not None:
        shown.append(("assistant", partial))
    return [{"role": role, "content": html.escape(text, quote=False)} for role, text in shown]


def describe(state: ChatState) -> str:
    """The status line above the page: the image and how far the conversation is. Every handler updates it,
    which is also how a browser test sees that an event has been handled."""
    image = "no image (text only)" if state.size is None else "image {}x{}".format(*state.size)
    exchanges = 0 if state.conversation is None else len(state.conversation.messages) // 2
    return f"{image} · {exchanges} exchange{'' if exchanges == 1 else 's'}"


class DemoHandlers:
    """What the page's events do. Each returns (or yields) the new values of its output components."""

    def __init__(self, pipe: Pipeline, generation: dict[str, Any] | None = None):
        self.pipe = pipe
        self.generation = dict(generation or {})
        options = GenerationOptions.make(**self.generation)  # a bad option fails at start, not per message
        if options.num_beams > 1:
            raise VlitError("num_beams: the demo streams its answers; beam search cannot stream")

    def new_image(self, path: str | None, state: ChatState) -> tuple[ChatState, list[Message], None, str]:
        """An image was uploaded (or removed): a new conversation, an empty chat and no drawing; returns
        (state, chat, drawing, status)."""
        try:
            state = state.with_image(Path(path) if path else None)
        except VlitError as e:
            raise gr.Error(str(e)) from None
        return state, [], None, describe(state)

    def reset(self, state: ChatState) -> tuple[ChatState, list[Message], None, str]:
        """Forget the conversation; the image stays."""
        state = state.reset()
        return state, [], None, describe(state)

    def send(self, text: str, task: str, state: ChatState) -> Iterator[tuple]:
        """Answer one message, streaming: yields (message box, state, chat, drawing, status). The question
        shows at once; the state takes the exchange only when the answer is complete, so a failed answer
        leaves nothing half-recorded."""
        text = (text or "").strip()
        if not text:
            yield "", state, chat_messages(state.conversation), gr.skip(), describe(state)
            return
        state = state.with_task(None if task == CHAT else task)
        asked = state.ask(text)
        answer = ""
        yield "", state, chat_messages(asked, answer), None, describe(state)
        try:
            for piece in self.pipe.stream(asked, **self.generation):
                answer += piece
                yield "", state, chat_messages(asked, answer), None, describe(state)
        except VlitError as e:
            raise gr.Error(str(e)) from None
        state = state.answered(asked, answer)
        found = state.boxes(answer)
        drawing = draw_grounding(state.picture, found) if found else None
        yield "", state, chat_messages(state.conversation), drawing, describe(state)


def build_demo(pipe: Pipeline, generation: dict[str, Any] | None = None, title: str = "vlit demo") -> gr.Blocks:
    """The page for one pipeline; `generation` holds `GenerationOptions` fields used for every answer."""
    handlers = DemoHandlers(pipe, generation)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"## {html.escape(title)}\nUpload an image, pick a task and ask. Boxes in the answer "
                    "(MiniGPT-v2's `{<x1><y1><x2><y2>}`) are drawn below the image.")
        state = gr.State(ChatState(frame=pipe.processor.image_spec))  # boxes map back from the model's input
        status = gr.Markdown(describe(ChatState()), elem_id="vlit-status")
        with gr.Row():
            with gr.Column(scale=1):
                # The upload's own file, undecoded: vlit decodes it as `vlit ask` and `vlit chat` do.
                image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 label="Image", elem_id="vlit-image")
                drawing = gr.Image(type="pil", format="png", interactive=False, label="Boxes of the last answer",
                                   elem_id="vlit-drawing")
            with gr.Column(scale=2):
                chat = gr.Chatbot(label="Chat", elem_id="vlit-chat", height=420)
                task = gr.Radio([CHAT, *TASKS], value=CHAT, label="Task", elem_id="vlit-task",
                                info="MiniGPT-v2 task identifier put before each question")
                message = gr.Textbox(placeholder="Ask about the image, then Enter", show_label=False,
                                     elem_id="vlit-message")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="vlit-send")
                    reset = gr.Button("Reset", elem_id="vlit-reset")
        image.change(handlers.new_image, [image, state], [state, chat, drawing, status])
        reset.click(handlers.reset, [state], [state, chat, drawing, status])
        # One model answers one message at a time, whoever sends it: the queue's limit of 1 is what keeps
        # concurrent sessions from generating on the same model at once.
        gr.on([send.click, message.submit], handlers.send, [message, task, state],
              [message, state, chat, drawing, status], concurrency_limit=1)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           quiet: bool = False) -> str:
    """Serve the page on host:port and return its URL. With `block` it serves until Ctrl-C; without, it
    returns once the server is up (call `demo.close()` to stop it)."""
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                                theme=theme, ssr_mode=False, mcp_server=False, quiet=quiet,
                                max_file_size="64mb")
    except OSError as e:
        # gradio's message goes on to suggest its own environment variables: only its first sentence helps.
        reason = str(e).split(". ")[0].strip()
        raise VlitError(f"cannot serve on {host}:{port}: is the port taken? ({reason})") from None
    return url

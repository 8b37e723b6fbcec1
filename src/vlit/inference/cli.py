"""`vlit ask` (one answer, ranked candidates or boxes) and `vlit chat` (a terminal chat with streaming)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from vlit.data.conversation import Conversation
from vlit.data.reading.images import load_image
from vlit.errors import VlitError
from vlit.inference.grounding import GroundedBox, parse_grounding, save_grounding
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.inference.session import ChatState
from vlit.inference.tasks import TASKS, with_task

CHAT_HELP = """commands:
  /image PATH   use this image (starts a new conversation)
  /task NAME    prefix questions with a MiniGPT-v2 task identifier
                (refer, grounding, identify, detection, vqa, caption; none to stop)
  /reset        forget the conversation (the image stays)
  /quit         leave (so does end of input)"""


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """--checkpoint, --device, --dtype: what `load_pipeline` reads (ask, chat, serve, demo)."""
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder (save_model)")
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda (default: where it loads, the CPU)")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"))


def add_generation_args(parser: argparse.ArgumentParser) -> None:
    """The decoding options `generation_options` turns into `GenerationOptions` fields."""
    gen = parser.add_argument_group("generation")
    gen.add_argument("--max-new-tokens", type=int, default=256)
    gen.add_argument("--temperature", type=float, default=None, help="sample at this temperature (0: greedy)")
    gen.add_argument("--top-p", type=float, default=None, help="sample from the top-p nucleus")
    gen.add_argument("--num-beams", type=int, default=1)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_args(parser)
    parser.add_argument("--task", choices=TASKS, help="MiniGPT-v2 task identifier to prepend")
    add_generation_args(parser)


def generation_options(args: argparse.Namespace) -> dict:
    """The `GenerationOptions` fields the generation arguments give (sampling by `GenerationOptions.sampling`)."""
    return {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "seed": args.seed,
            "stop": tuple(args.stop), **GenerationOptions.sampling(args.temperature, args.top_p)}


def load_pipeline(args: argparse.Namespace) -> Pipeline:
    return Pipeline.from_pretrained(args.checkpoint, device=args.device, dtype=args.dtype)


def _candidates(text: str) -> list[str]:
    items = [c.strip() for c in text.split(",")]
    for i, c in enumerate(items):
        if not c:
            raise VlitError(f"--candidates: candidate {i + 1} of {len(items)} is empty")
        if c in items[:i]:
            raise VlitError(f"--candidates: {c!r} is given twice")
    return items


def _format_box(g: GroundedBox) -> str:
    coords = ", ".join(f"{v:.1f}" for v in g.box)
    return f"{g.phrase or '(no phrase)'}: [{coords}]"


def ask_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit ask", description="Answer one question about an image.")
    _add_model_args(parser)
    parser.add_argument("question")
    parser.add_argument("--image", type=Path, help="image file the question is about")
    parser.add_argument("--candidates", help="comma-separated answers to rank instead of generating")
    parser.add_argument("--normalize", choices=("sum", "mean"), default="sum",
                        help="rank by summed or per-token log-likelihood")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--draw", type=Path, help="save the image with the answer's boxes as this PNG")
    args = parser.parse_args(argv)
    if args.draw is not None and args.image is None:
        raise VlitError("--draw: needs --image")
    candidates = _candidates(args.candidates) if args.candidates is not None else None
    image = load_image(args.image) if args.image is not None else None  # fails early, naming the file
    pipe = load_pipeline(args)
    conversation = Conversation.single(with_task(args.question, args.task), image=args.image)
    scores = None
    if candidates is not None:
        result = pipe.rank(conversation, candidates, normalize=args.normalize)
        answer, scores = result.best, dict(result.ranked())
    else:
        answer = pipe.chat(conversation, **generation_options(args))
    found = parse_grounding(answer, *image.size, frame=pipe.processor.image_spec) if image is not None else []
    drawing = save_grounding(image, found, args.draw) if args.draw is not None else None
    if args.json:
        print(json.dumps({"answer": answer, "scores": scores, "boxes": [g.to_dict() for g in found],
                          "drawing": None if drawing is None else str(drawing)}))
        return 0
    print(answer)
    for candidate, score in (scores or {}).items():
        print(f"  {score:10.4f}  {candidate}")
    for g in found:
        print(f"box {_format_box(g)}")
    if drawing is not None:
        print(f"drawing: {len(found)} box(es) -> {drawing}")
    return 0


class ChatSession:
    """A terminal chat: `/commands` and streamed answers around a `ChatState` (image, task, conversation)."""

    def __init__(self, pipe: Pipeline, generation: dict, state: ChatState):
        self.pipe = pipe
        self.generation = generation
        self.state = state

    def command(self, line: str) -> bool:
        """Run a `/command`; False means leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name == "/quit":
            return False
        if name == "/help":
            print(CHAT_HELP)
        elif name == "/reset":
            self.state = self.state.reset()
            print("(conversation reset)")
        elif name == "/image":
            self._set_image(arg)
        elif name == "/task":
            if arg not in (*TASKS, "none"):
                print(f"error: /task: {arg!r} is not one of {', '.join(TASKS)}, none")
            else:
                self.state = self.state.with_task(None if arg == "none" else arg)
                print(f"(task: {self.state.task or 'none'})")
        else:
            print(f"error: unknown command {name} (try /help)")
        return True

    def _set_image(self, arg: str) -> None:
        if not arg:
            print("error: /image: give a path")
            return
        path = Path(arg).expanduser()
        try:
            self.state = self.state.with_image(path)
        except VlitError as e:
            print(f"error: {e}")
            return
        width, height = self.state.size
        print(f"(image: {path}, {width}x{height}; new conversation)")

    def say(self, text: str) -> None:
        """Stream the answer to one user message and keep both in the conversation."""
        conversation = self.state.ask(text)
        print("assistant: ", end="", flush=True)
        pieces = []
        try:
            for piece in self.pipe.stream(conversation, **self.generation):
                pieces.append(piece)
                print(piece, end="", flush=True)
        except VlitError as e:
            print(f"\nerror: {e}")
            return
        answer = "".join(pieces)
        print()
        self.state = self.state.answered(conversation, answer)
        for g in self.state.boxes(answer):
            print(f"  box {_format_box(g)}")


def chat_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit chat", description="Chat about an image in the terminal.")
    _add_model_args(parser)
    parser.add_argument("--image", type=Path, help="image to start with (or /image PATH later)")
    args = parser.parse_args(argv)
    generation = generation_options(args)
    if generation["num_beams"] > 1:
        raise VlitError("--num-beams: the chat streams its answers; beam search cannot stream")
    state = ChatState(task=args.task).with_image(args.image)  # a bad image fails before the model loads
    pipe = load_pipeline(args)
    session = ChatSession(pipe, generation, replace(state, frame=pipe.processor.image_spec))
    print(f"vlit chat: {args.checkpoint}. Type a message, or /help.", flush=True)
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if not line:
            continue
        if line.startswith("/"):
            if not session.command(line):
                return 0
        else:
            session.say(line)

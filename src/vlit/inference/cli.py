"""`vlit ask` (one answer, ranked candidates or boxes) and `vlit chat` (a terminal chat with streaming)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlit.data.conversation import Conversation
from vlit.data.images import load_image
from vlit.errors import VlitError
from vlit.inference.grounding import GroundedBox, parse_grounding, save_grounding
from vlit.inference.pipeline import Pipeline
from vlit.inference.tasks import TASKS, with_task

CHAT_HELP = """commands:
  /image PATH   use this image (starts a new conversation)
  /task NAME    prefix questions with a MiniGPT-v2 task identifier
                (refer, grounding, identify, detection, vqa, caption; none to stop)
  /reset        forget the conversation (the image stays)
  /quit         leave (so does end of input)"""


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder (save_model)")
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda (default: where it loads, the CPU)")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--task", choices=TASKS, help="MiniGPT-v2 task identifier to prepend")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--max-new-tokens", type=int, default=256)
    gen.add_argument("--temperature", type=float, default=None, help="sample at this temperature")
    gen.add_argument("--top-p", type=float, default=None, help="sample from the top-p nucleus")
    gen.add_argument("--num-beams", type=int, default=1)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")


def _generation(args: argparse.Namespace) -> dict:
    sampling = args.temperature is not None or args.top_p is not None
    options = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "seed": args.seed,
               "stop": tuple(args.stop), "do_sample": sampling}
    if sampling:
        options |= {"temperature": args.temperature or 1.0, "top_p": args.top_p or 1.0}
    return options


def _pipeline(args: argparse.Namespace) -> Pipeline:
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
    pipe = _pipeline(args)
    conversation = Conversation.single(with_task(args.question, args.task), image=args.image)
    scores = None
    if candidates is not None:
        result = pipe.rank(conversation, candidates, normalize=args.normalize)
        answer, scores = result.best, dict(result.ranked())
    else:
        answer = pipe.chat(conversation, **_generation(args))
    found = parse_grounding(answer, *image.size) if image is not None else []
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
    """The state of a terminal chat: the image, the task identifier and the conversation so far."""

    def __init__(self, pipe: Pipeline, generation: dict, image: Path | None = None, task: str | None = None):
        self.pipe = pipe
        self.generation = generation
        self.image = image
        self.size = load_image(image).size if image is not None else None
        self.task = task
        self.conversation: Conversation | None = None

    def command(self, line: str) -> bool:
        """Run a `/command`; False means leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name == "/quit":
            return False
        if name == "/help":
            print(CHAT_HELP)
        elif name == "/reset":
            self.conversation = None
            print("(conversation reset)")
        elif name == "/image":
            self._set_image(arg)
        elif name == "/task":
            if arg not in (*TASKS, "none"):
                print(f"error: /task: {arg!r} is not one of {', '.join(TASKS)}, none")
            else:
                self.task = None if arg == "none" else arg
                print(f"(task: {self.task or 'none'})")
        else:
            print(f"error: unknown command {name} (try /help)")
        return True

    def _set_image(self, arg: str) -> None:
        if not arg:
            print("error: /image: give a path")
            return
        path = Path(arg).expanduser()
        try:
            size = load_image(path).size
        except VlitError as e:
            print(f"error: {e}")
            return
        self.image, self.size, self.conversation = path, size, None
        print(f"(image: {path}, {size[0]}x{size[1]}; new conversation)")

    def say(self, text: str) -> None:
        """Stream the answer to one user message and keep both in the conversation."""
        question = with_task(text, self.task)
        if self.conversation is None:
            conversation = Conversation.single(question, image=self.image)
        else:
            conversation = self.conversation.add("user", question)
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
        self.conversation = conversation.add("assistant", answer)
        if self.size is not None:
            for g in parse_grounding(answer, *self.size):
                print(f"  box {_format_box(g)}")


def chat_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit chat", description="Chat about an image in the terminal.")
    _add_model_args(parser)
    parser.add_argument("--image", type=Path, help="image to start with (or /image PATH later)")
    args = parser.parse_args(argv)
    generation = _generation(args)
    if generation["num_beams"] > 1:
        raise VlitError("--num-beams: the chat streams its answers; beam search cannot stream")
    if args.image is not None:
        load_image(args.image)  # a bad path fails before the model loads
    session = ChatSession(_pipeline(args), generation, args.image, args.task)
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

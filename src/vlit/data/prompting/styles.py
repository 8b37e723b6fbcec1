"""Three prompt styles over the same task records: one data set, three papers' ways of asking.

- `instructblip`: a template drawn at random per example from `templates/<type>.yaml` (the rng decides);
  boxes in vlit's grid syntax `{<x1><y1><x2><y2>}`.
- `llava15`: fixed response-format prompts (`Answer the question using a single word or phrase.`; options
  as `A. ...` lines and `Answer with the option's letter from the given choices directly.`, answered with the
  letter); boxes as LLaVA-1.5's normalised `[0.12, 0.30, 0.55, 0.90]`; dialogue as multi-turn rows.
- `minigptv2`: a task identifier (`[caption]`, `[vqa]`, `[refer]`, `[identify]`, `[detection]`,
  `[grounding]`) starts the instruction; boxes on the 0..100 grid, grounded phrases `<p>..</p> {..}`, several
  boxes joined by `<delim>`. Question generation has no MiniGPT-v2 identifier and stays untagged, as
  MiniGPT-v2 leaves tasks outside its six untagged.

The user text holds the `<image>` marker once, at the start, followed by a newline (LLaVA's layout); wrapping
it in a model's chat template (`[INST] <Img>..</Img> ..`) is `vlit.data.prompting.chat_templates`' job.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Literal

from vlit.config.data import PromptStyle
from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting import boxes as bx
from vlit.data.prompting.templates import TaskRecord, load_templates, template_fields
from vlit.errors import VlitError

RenderStyle = Literal["instructblip", "llava15", "minigptv2"]

SHORT_ANSWER = "Answer the question using a single word or phrase."
LETTER_ANSWER = "Answer with the option's letter from the given choices directly."
BRIEF_CAPTION = "Describe the image concisely."
"""The first of LLaVA's brief-description instructions."""
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

Pairs = list[tuple[str, str]]
"""(instruction, answer) rounds of one example, image marker not yet added."""


def render(task: TaskRecord, style: RenderStyle, rng: random.Random, image: bool = True) -> list[Turn]:
    """User/assistant turns asking `task` in `style`; the first user turn starts with `<image>\\n` when
    `image`. Only `instructblip` draws from `rng`."""
    match style:
        case "instructblip":
            pairs = _instructblip(task, rng)
        case "llava15":
            pairs = _llava15(task)
        case "minigptv2":
            pairs = _minigptv2(task)
        case _:
            raise VlitError(f"style: cannot render a task in style {style!r}")
    turns = []
    for i, (prompt, answer) in enumerate(pairs):
        turns += [Turn("user", f"{IMAGE_TOKEN}\n{prompt}" if image and i == 0 else prompt),
                  Turn("assistant", answer)]
    return turns


def restyle(conversation: Conversation, style: PromptStyle, rng: random.Random) -> Conversation:
    """The conversation re-rendered from `meta["task"]` in `style` (same images, id and meta; a leading
    system turn is kept). `as_is` returns it unchanged."""
    if style == "as_is":
        return conversation
    if "task" not in conversation.meta:
        raise VlitError(f"row {conversation.id}: style {style!r} needs a task record (meta['task']); "
                        "use style 'as_is' for conversations without one")
    if len(conversation.images) > 1:
        raise VlitError(f"row {conversation.id}: a task record describes one image, the row has "
                        f"{len(conversation.images)}")
    try:
        task = TaskRecord.from_dict(conversation.meta["task"])
        turns = render(task, style, rng, image=bool(conversation.images))
    except VlitError as e:
        raise VlitError(f"row {conversation.id}: {e}") from e
    system = [conversation.turns[0]] if conversation.system is not None else []
    return Conversation(system + turns, list(conversation.images), conversation.id, dict(conversation.meta))


# ---- answers shared by the styles -------------------------------------------------------------------------

def _grid_boxes(task: TaskRecord) -> list[str]:
    w, h = task.image_size
    return [bx.format_grid_box(bx.to_grid(b, w, h)) for b in task.boxes]


def _unit_boxes(task: TaskRecord) -> list[str]:
    w, h = task.image_size
    return [bx.format_unit_box(bx.to_unit(b, w, h)) for b in task.boxes]


def ground_caption(caption: str, phrases: tuple[str, ...], box_texts: list[str],
                   mark: Callable[[str, str], str]) -> str:
    """`caption` with each phrase (found in order, case-insensitively) replaced by `mark(phrase, box)`."""
    out, pos = [], 0
    for phrase, box in zip(phrases, box_texts, strict=True):
        m = re.compile(re.escape(phrase), re.IGNORECASE).search(caption, pos)
        if m is None:
            raise VlitError(f"task.phrases: {phrase!r} does not occur in the caption {caption!r} (in order)")
        out += [caption[pos:m.start()], mark(m.group(0), box)]
        pos = m.end()
    return "".join(out) + caption[pos:]


def _p_tag(phrase: str, box: str) -> str:
    return f"<p>{phrase}</p> {box}"


def _grid_target(task: TaskRecord) -> str:
    """The answer of box-producing tasks in grid syntax (instructblip and minigptv2)."""
    match task.type:
        case "refer":
            return _grid_boxes(task)[0]
        case "detection":
            return bx.DELIM.join(_grid_boxes(task))
        case "grounded_caption":
            return ground_caption(task.answers[0], task.phrases, _grid_boxes(task), _p_tag)
    return task.answer


# ---- instructblip -----------------------------------------------------------------------------------------

def _fields(task: TaskRecord) -> dict[str, str]:
    """Placeholder values this record can fill; a template needing a missing one is not drawn."""
    values = {"question": task.question, "subject": task.subject, "phrase": task.phrase,
              "options": ", ".join(task.options) or None}
    if task.type == "question_generation":
        values["answer"] = task.answer
    if task.type == "dialogue":
        *history, (question, _) = task.dialogue
        values["question"] = question
        values["history"] = "\n".join(f"Q: {q} A: {a}" for q, a in history)
    if task.boxes:
        values["box"] = _grid_boxes(task)[0]
    return {k: v for k, v in values.items() if v}


def _instructblip(task: TaskRecord, rng: random.Random) -> Pairs:
    values = _fields(task)
    usable = [t for t in load_templates()[task.type] if template_fields(t, task.type) <= values.keys()]
    if not usable:
        raise VlitError(f"task: no {task.type} template can be filled from fields {sorted(values)}")
    prompt = rng.choice(usable).format(**values)
    if task.type == "question_generation":
        return [(prompt, task.question)]
    if task.type == "dialogue":
        return [(prompt, task.dialogue[-1][1])]
    return [(prompt, _grid_target(task))]


# ---- llava15 ----------------------------------------------------------------------------------------------

def _llava15(task: TaskRecord) -> Pairs:
    match task.type:
        case "caption":
            return [(BRIEF_CAPTION, task.answer)]
        case "vqa" | "counting" | "spatial" | "yes_no" | "classification":
            return [(f"{task.question}\n{SHORT_ANSWER}", task.answer)]
        case "multiple_choice":
            options = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(task.options))
            return [(f"{task.question}\n{options}\n{LETTER_ANSWER}", LETTERS[task.answer_index])]
        case "question_generation":
            return [(f"Write a question about the image whose answer is \"{task.answer}\".", task.question)]
        case "dialogue":
            return [(f"{q}\n{SHORT_ANSWER}", a) for q, a in task.dialogue]
        case "refer":
            return [("Please provide the bounding box coordinate of the region this sentence describes: "
                     f"{task.phrase}.", _unit_boxes(task)[0])]
        case "identify":
            return [(f"Please provide a short description for this region: {_unit_boxes(task)[0]}.",
                     task.answer)]
        case "detection":
            return [(f"Please provide the bounding box coordinates of all {task.phrase} in the image.",
                     ", ".join(_unit_boxes(task)))]
        case "grounded_caption":
            caption = ground_caption(task.answers[0], task.phrases, _unit_boxes(task), lambda p, b: f"{p} {b}")
            return [(f"{BRIEF_CAPTION} Give the bounding box coordinate of each object you mention.", caption)]
    raise VlitError(f"task.type: no llava15 prompt for {task.type!r}")


# ---- minigptv2 --------------------------------------------------------------------------------------------

def _minigptv2(task: TaskRecord) -> Pairs:
    match task.type:
        case "caption":
            return [("[caption] Briefly describe this image.", task.answer)]
        case "vqa" | "counting" | "spatial" | "yes_no" | "classification":
            return [(f"[vqa] {task.question}", task.answer)]
        case "multiple_choice":
            return [(f"[vqa] {task.question} Choose from: {', '.join(task.options)}.", task.answer)]
        case "question_generation":
            return [(f"Given the image, generate a question whose answer is: {task.answer}. Question:",
                     task.question)]
        case "dialogue":
            return [(f"[vqa] {q}", a) for q, a in task.dialogue]
        case "refer":
            return [(f"[refer] give me the location of {task.phrase}", _grid_target(task))]
        case "identify":
            return [(f"[identify] what is this {_grid_boxes(task)[0]}", task.answer)]
        case "detection":
            return [(f"[detection] {task.phrase}", _grid_target(task))]
        case "grounded_caption":
            return [("[grounding] briefly describe this image", _grid_target(task))]
    raise VlitError(f"task.type: no minigptv2 prompt for {task.type!r}")

"""Three prompt styles over the same task records: one data set, three papers' ways of asking. A style is one
object with both halves of its contract: `render` asks a record, and its answer forms say how an answer
comes back (a multiple-choice pick as the option's letter or its text; boxes written as grid cells or unit
floats, read back with `vlit.data.prompting.boxes.read_boxes`).

- `instructblip`: a template drawn at random per example from `templates/<type>.yaml` (the rng decides);
  boxes in vlit's grid syntax `{<x1><y1><x2><y2>}`; a choice answered with the option's text.
- `llava15`: fixed response-format prompts (`Answer the question using a single word or phrase.`; options
  as `A. ...` lines and `Answer with the option's letter from the given choices directly.`, answered with the
  letter); boxes as LLaVA-1.5's normalised `[0.12, 0.30, 0.55, 0.90]`; dialogue as multi-turn rows.
- `minigptv2`: the task's identifier (`[caption]`, `[vqa]`, `[refer]`, `[identify]`, `[detection]`,
  `[grounding]`, from its spec) starts the instruction; boxes on the 0..100 grid, grounded phrases
  `<p>..</p> {..}`, several boxes joined by `<delim>`. A task without an identifier (question generation)
  stays untagged, as MiniGPT-v2 leaves tasks outside its six untagged.

Three more are the papers' ablations (`vlit reproduce`), each the style above with one thing taken away:
- `llava15_ambiguous`: LLaVA-1.5 without its response-format prompts: short answers and choices asked
  InstructBLIP's ambiguous way, `Q: {question} A:`.
- `minigptv2_untagged`: MiniGPT-v2 without task identifiers.
- `multitask`: InstructBLIP's multitask baseline: no instruction, the raw input (the question, the phrase, the
  box; nothing for a caption) after the dataset's name, `[scenes_vqa] What colour is the circle?`.

Styles branch on a task's prompt form (`TaskSpec.prompt`), never on its name: a new task of an existing form
needs no change here. Boxes are named in the model's frame (`render(..., frame=)`): on the padded or cropped
square the model sees, or on the original image when it is stretched.

The user text holds the `<image>` marker once, at the start, followed by a newline (LLaVA's layout); wrapping
it in a model's chat template (`[INST] <Img>..</Img> ..`) is `vlit.data.prompting.chat_templates`' job.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from vlit.config.model import StyleName
from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.loading.transforms import ImageSpec
from vlit.data.prompting import boxes as bx
from vlit.data.prompting.box_text import GRID, UNIT, BoxText, ground_caption
from vlit.data.prompting.tasks import TaskSpec, task_spec
from vlit.data.prompting.templates import TaskRecord, load_templates, row_tasks, template_fields
from vlit.errors import VlitError

SHORT_ANSWER = "Answer the question using a single word or phrase."
LETTER_ANSWER = "Answer with the option's letter from the given choices directly."
BRIEF_CAPTION = "Describe the image concisely."
"""The first of LLaVA's brief-description instructions."""
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lettered(question: str, options: Sequence[str]) -> str:
    """The question, then one `A. option` line per option (LLaVA's layout)."""
    return "\n".join([question, *(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))])


Pairs = list[tuple[str, str]]
"""(instruction, answer) rounds of one example, image marker not yet added."""


# ---- the style object -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromptStyle:
    """One paper's way of asking a task record and of reading the answer back."""

    name: StyleName
    boxes: BoxText
    """How boxes are written in prompts and targets."""
    choice_answer: Literal["letter", "option"]
    """How a multiple-choice answer is given: the option's letter (LLaVA-1.5) or its text."""

    def render(self, task: TaskRecord, rng: random.Random, image: bool = True,
               frame: ImageSpec | None = None, dataset: str | None = None) -> list[Turn]:
        """User/assistant turns asking `task`; the first user turn starts with `<image>\\n` when `image`.
        Boxes are named in `frame`, the model's image input (None: the original image). `dataset`: the name of
        the record's dataset (only the multitask style asks with it)."""
        box_texts = []
        if task.boxes:
            boxes, (width, height) = bx.boxes_in_frame(task.boxes, task.image_size, frame)
            box_texts = [self.boxes.format(b, width, height) for b in boxes]
        turns = []
        for i, (prompt, answer) in enumerate(self.pairs(task, task_spec(task.type), box_texts, rng, dataset)):
            turns += [Turn("user", f"{IMAGE_TOKEN}\n{prompt}" if image and i == 0 else prompt),
                      Turn("assistant", answer)]
        return turns

    def pairs(self, task: TaskRecord, spec: TaskSpec, box_texts: list[str], rng: random.Random,
              dataset: str | None) -> Pairs:
        raise NotImplementedError

    def answer(self, task: TaskRecord, spec: TaskSpec, box_texts: list[str]) -> str:
        """The target of a single-round example (dialogue: its last round)."""
        match spec.prompt:
            case "choice":
                return LETTERS[task.answer_index] if self.choice_answer == "letter" else task.answer
            case "question_generation":
                return task.question
            case "dialogue":
                return task.dialogue[-1][1]
            case "refer":
                return box_texts[0]
            case "detection":
                return self.boxes.join.join(box_texts)
            case "grounded_caption":
                return ground_caption(task.answers[0], task.phrases, box_texts, self.boxes.mark)
        return task.answer


class InstructBLIPStyle(PromptStyle):
    def pairs(self, task: TaskRecord, spec: TaskSpec, box_texts: list[str], rng: random.Random,
              dataset: str | None) -> Pairs:
        values = _fields(task, spec, box_texts)
        usable = [t for t in load_templates()[task.type] if template_fields(t, task.type) <= values.keys()]
        if not usable:
            raise VlitError(f"task: no {task.type} template can be filled from fields {sorted(values)}")
        return [(rng.choice(usable).format(**values), self.answer(task, spec, box_texts))]


def _fields(task: TaskRecord, spec: TaskSpec, box_texts: list[str]) -> dict[str, str]:
    """Placeholder values this record can fill; a template needing a missing one is not drawn."""
    values = {"question": task.question, "subject": task.subject, "phrase": task.phrase,
              "options": ", ".join(task.options) or None}
    if spec.prompt == "question_generation":
        values["answer"] = task.answer
    if spec.prompt == "dialogue":
        *history, (question, _) = task.dialogue
        values["question"] = question
        values["history"] = "\n".join(f"Q: {q} A: {a}" for q, a in history)
    if box_texts:
        values["box"] = box_texts[0]
    return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class LLaVA15Style(PromptStyle):
    format_prompts: bool = True
    """Say the answer's format (`SHORT_ANSWER`, `LETTER_ANSWER`); False asks InstructBLIP's ambiguous
    `Q: {question} A:` instead, which LLaVA-1.5 found makes a model answer short even when asked for more."""

    def _asked(self, question: str, answer_format: str) -> str:
        return f"{question}\n{answer_format}" if self.format_prompts else f"Q: {question} A:"

    def pairs(self, task: TaskRecord, spec: TaskSpec, box_texts: list[str], rng: random.Random,
              dataset: str | None) -> Pairs:
        target = self.answer(task, spec, box_texts)
        match spec.prompt:
            case "caption":
                return [(BRIEF_CAPTION, target)]
            case "short_answer":
                return [(self._asked(task.question, SHORT_ANSWER), target)]
            case "choice":
                return [(self._asked(lettered(task.question, task.options), LETTER_ANSWER), target)]
            case "question_generation":
                return [(f"Write a question about the image whose answer is \"{task.answer}\".", target)]
            case "dialogue":
                return [(self._asked(q, SHORT_ANSWER), a) for q, a in task.dialogue]
            case "refer":
                return [("Please provide the bounding box coordinate of the region this sentence describes: "
                         f"{task.phrase}.", target)]
            case "identify":
                return [(f"Please provide a short description for this region: {box_texts[0]}.", target)]
            case "detection":
                return [(f"Please provide the bounding box coordinates of all {task.phrase} in the image.", target)]
            case "grounded_caption":
                return [(f"{BRIEF_CAPTION} Give the bounding box coordinate of each object you mention.", target)]
        raise VlitError(f"task.type: no llava15 prompt for {task.type!r} (prompt form {spec.prompt!r})")


@dataclass(frozen=True)
class MiniGPTv2Style(PromptStyle):
    identifiers: bool = True
    """Start each instruction with its task's identifier; False is MiniGPT-v2's ablation without them."""

    def pairs(self, task: TaskRecord, spec: TaskSpec, box_texts: list[str], rng: random.Random,
              dataset: str | None) -> Pairs:
        target = self.answer(task, spec, box_texts)
        match spec.prompt:
            case "caption":
                prompt = "Briefly describe this image."
            case "short_answer":
                prompt = task.question
            case "choice":
                prompt = f"{task.question} Choose from: {', '.join(task.options)}."
            case "question_generation":
                prompt = f"Given the image, generate a question whose answer is: {task.answer}. Question:"
            case "dialogue":
                return [(self._tagged(spec, q), a) for q, a in task.dialogue]
            case "refer":
                prompt = f"give me the location of {task.phrase}"
            case "identify":
                prompt = f"what is this {box_texts[0]}"
            case "detection":
                prompt = task.phrase
            case "grounded_caption":
                prompt = "briefly describe this image"
            case _:
                raise VlitError(f"task.type: no minigptv2 prompt for {task.type!r} (prompt form {spec.prompt!r})")
        return [(self._tagged(spec, prompt), target)]

    def _tagged(self, spec: TaskSpec, prompt: str) -> str:
        return prompt if spec.identifier is None or not self.identifiers else f"[{spec.identifier}] {prompt}"


class MultitaskStyle(PromptStyle):
    """InstructBLIP's multitask-learning baseline: the same records with no instruction at all, only the raw
    input after the dataset's name, so the model can tell datasets apart but learns no instructions."""

    def pairs(self, task: TaskRecord, spec: TaskSpec, box_texts: list[str], rng: random.Random,
              dataset: str | None) -> Pairs:
        if not dataset:
            raise VlitError("style: 'multitask' asks with the dataset's name, and this record has none (a built "
                            "row's `dataset` field)")
        target = self.answer(task, spec, box_texts)
        match spec.prompt:
            case "short_answer":
                raw = task.question
            case "choice":
                raw = f"{task.question} {', '.join(task.options)}"
            case "question_generation":
                raw = task.answer
            case "dialogue":
                *history, (question, _) = task.dialogue
                raw = " ".join([*(f"{q} {a}" for q, a in history), question])
            case "refer" | "detection":
                raw = task.phrase
            case "identify":
                raw = box_texts[0]
            case _:  # a caption, grounded or not: the image is the whole input
                raw = ""
        return [(f"[{dataset}] {raw}".rstrip(), target)]


STYLES: dict[str, PromptStyle] = {
    "instructblip": InstructBLIPStyle("instructblip", GRID, "option"),
    "llava15": LLaVA15Style("llava15", UNIT, "letter"),
    "minigptv2": MiniGPTv2Style("minigptv2", GRID, "option"),
    "llava15_ambiguous": LLaVA15Style("llava15_ambiguous", UNIT, "letter", format_prompts=False),
    "minigptv2_untagged": MiniGPTv2Style("minigptv2_untagged", GRID, "option", identifiers=False),
    "multitask": MultitaskStyle("multitask", GRID, "option"),
}


def get_style(name: str) -> PromptStyle:
    """The style called `name`; `as_is` is a dataset's choice to keep its rows' own turns, not a style."""
    try:
        return STYLES[name]
    except (KeyError, TypeError):
        raise VlitError(f"style: {name!r} is not one of {', '.join(STYLES)}") from None


def render(task: TaskRecord, style: str | PromptStyle, rng: random.Random, image: bool = True,
           frame: ImageSpec | None = None, dataset: str | None = None) -> list[Turn]:
    """`task` asked in `style` (a name or a style); see `PromptStyle.render`. Only `instructblip` draws from
    `rng`."""
    chosen = style if isinstance(style, PromptStyle) else get_style(style)
    return chosen.render(task, rng, image, frame, dataset)


def render_tasks(tasks: Sequence[TaskRecord], style: str | PromptStyle, rng: random.Random, image: bool = True,
                 frame: ImageSpec | None = None, dataset: str | None = None) -> list[Turn]:
    """Several records about one image asked in one multi-turn conversation, in order (LLaVA-1.5 merges the QA
    pairs of an image so): each rendered as `render` does, the `<image>` marker only in the first question."""
    turns: list[Turn] = []
    for i, task in enumerate(tasks):
        turns += render(task, style, rng, image=image and i == 0, frame=frame, dataset=dataset)
    return turns


def restyle(conversation: Conversation, style: str, rng: random.Random,
            frame: ImageSpec | None = None) -> Conversation:
    """The conversation re-rendered from `meta["task"]` (or a merged row's `meta["tasks"]`, see
    `render_tasks`) in `style` (same images, id and meta; a leading system turn is kept), boxes named in
    `frame`. `as_is` returns it unchanged."""
    if style == "as_is":
        return conversation
    if "task" not in conversation.meta and "tasks" not in conversation.meta:
        raise VlitError(f"row {conversation.id}: style {style!r} needs a task record (meta['task'], or a merged "
                        "row's meta['tasks']); use style 'as_is' for conversations without one")
    if len(conversation.images) > 1:
        raise VlitError(f"row {conversation.id}: a task record describes one image, the row has "
                        f"{len(conversation.images)}")
    try:
        tasks = row_tasks(conversation.meta)
        turns = render_tasks(tasks, style, rng, image=bool(conversation.images), frame=frame,
                             dataset=conversation.meta.get("dataset"))
    except VlitError as e:
        raise VlitError(f"row {conversation.id}: {e}") from e
    system = [conversation.turns[0]] if conversation.system is not None else []
    return Conversation(system + turns, list(conversation.images), conversation.id, dict(conversation.meta))

"""Tasks posed about rendered scenes, with answers read off the scene description (never guessed).

Question kinds are drawn in two steps, first a family (e.g. "colour of a unique kind", "size of a shape"),
then a question inside it, so that families with many instances (pairs of shapes) do not crowd out the
others. Spatial words (left, above, largest) appear only in `spatial` tasks: the quickstart holds that whole
category out, and it must not leak through dialogue or question generation.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from itertools import permutations

from vlit.data.prompting.templates import TaskRecord
from vlit.data.sources import Example, supported, with_article
from vlit.data.sources.scenes import COLOURS, KINDS, Scene, Shape, render_scene, sample_scene
from vlit.errors import VlitError

QA = tuple[str, tuple[str, ...]]
"""A question and its acceptable answers."""
Maker = Callable[[Scene, random.Random], TaskRecord | None]
_WORDS = ("zero", "one", "two", "three", "four", "five")


def _pick(rng: random.Random, families: list[list[QA]]) -> QA | None:
    usable = [f for f in families if f]
    return rng.choice(rng.choice(usable)) if usable else None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _named(shape: Shape) -> tuple[str, ...]:
    return (shape.name, f"the {shape.name}")


def _caption(scene: Scene) -> tuple[str, list[str]]:
    phrases = [with_article(f"{s.size} {s.name}") for s in scene.shapes]
    text = f"{_join(phrases)} on a {scene.background} background."
    return text[0].upper() + text[1:], phrases


def vqa_families(scene: Scene) -> list[list[QA]]:
    kinds = Counter(s.kind for s in scene.shapes)
    colours = Counter(s.colour for s in scene.shapes)
    return [
        [(f"What colour is the {s.kind}?", (s.colour,)) for s in scene.shapes if kinds[s.kind] == 1],
        [(f"What shape is the {s.colour} object?", (s.kind,)) for s in scene.shapes if colours[s.colour] == 1],
        [(f"What size is the {s.name}?", (s.size,)) for s in scene.shapes],
    ]


def _count(n: int) -> tuple[str, ...]:
    return (str(n), _WORDS[n]) if n < len(_WORDS) else (str(n),)


def counting_families(scene: Scene) -> list[list[tuple[str, int]]]:
    """(plural phrase, count) pairs; counts of zero are fair questions too."""
    shapes = scene.shapes
    return [
        [("shapes", len(shapes))],
        [(f"{k}s", sum(s.kind == k for s in shapes)) for k in KINDS],
        [(f"{c} shapes", sum(s.colour == c for s in shapes)) for c in COLOURS],
        [(f"{z} shapes", sum(s.size == z for s in shapes)) for z in ("small", "large")],
    ]


def _counting_qa(scene: Scene) -> list[list[QA]]:
    return [[(f"How many {p} are there?", _count(n)) for p, n in fam] for fam in counting_families(scene)]


def yes_no_families(scene: Scene) -> list[list[QA]]:
    present = {(s.colour, s.kind) for s in scene.shapes}
    kinds = {s.kind for s in scene.shapes}
    pairs = [(c, k) for c in COLOURS for k in KINDS]
    return [
        [(f"Is there {with_article(f'{c} {k}')}?", ("yes",)) for c, k in pairs if (c, k) in present],
        [(f"Is there {with_article(f'{c} {k}')}?", ("no",)) for c, k in pairs if (c, k) not in present],
        [(f"Is there {with_article(k)} in the image?", ("yes",)) for k in KINDS if k in kinds],
        [(f"Is there {with_article(k)} in the image?", ("no",)) for k in KINDS if k not in kinds],
    ]


def spatial_families(scene: Scene) -> list[list[QA]]:
    """Relations only where they are clear: centres 10% of the side apart, areas 1.5x apart."""
    shapes, w, h = scene.shapes, scene.width, scene.height
    left, above = [], []
    for a, b in permutations(shapes, 2):
        dx, dy = a.centre[0] - b.centre[0], a.centre[1] - b.centre[1]
        if abs(dx) > 0.1 * w:
            left.append((f"Is the {a.name} to the left of the {b.name}?", ("yes" if dx < 0 else "no",)))
        if abs(dy) > 0.1 * h:
            above.append((f"Is the {a.name} above the {b.name}?", ("yes" if dy < 0 else "no",)))
    extremes = []
    if len(shapes) >= 2:
        by_area = sorted(shapes, key=lambda s: s.area)
        if by_area[-1].area >= 1.5 * by_area[-2].area:
            extremes.append(("Which shape is the largest?", _named(by_area[-1])))
        if by_area[1].area >= 1.5 * by_area[0].area:
            extremes.append(("Which shape is the smallest?", _named(by_area[0])))
        for axis, side, (first, last) in ((0, w, ("left", "right")), (1, h, ("top", "bottom"))):
            ordered = sorted(shapes, key=lambda s: s.centre[axis])
            if ordered[1].centre[axis] - ordered[0].centre[axis] > 0.1 * side:
                extremes.append((f"Which shape is closest to the {first}?", _named(ordered[0])))
            if ordered[-1].centre[axis] - ordered[-2].centre[axis] > 0.1 * side:
                extremes.append((f"Which shape is closest to the {last}?", _named(ordered[-1])))
    return [left, above, extremes]


def _caption_task(scene: Scene, rng: random.Random) -> TaskRecord:
    text, _ = _caption(scene)
    n = len(scene.shapes)
    return TaskRecord("caption", answers=(text, f"{_WORDS[n].capitalize()} shape{'s' * (n > 1)} on a "
                                                f"{scene.background} background."))


def _grounded_caption(scene: Scene, rng: random.Random) -> TaskRecord:
    text, phrases = _caption(scene)
    return TaskRecord("grounded_caption", answers=(text,), phrases=tuple(phrases),
                      boxes=tuple(s.box for s in scene.shapes), image_size=(scene.width, scene.height))


def _question(kind: str, families: Callable[[Scene], list[list[QA]]]) -> Maker:
    """A maker asking one question drawn from `families`, None when the scene has none."""
    def make(scene: Scene, rng: random.Random) -> TaskRecord | None:
        qa = _pick(rng, families(scene))
        return None if qa is None else TaskRecord(kind, answers=qa[1], question=qa[0])
    return make


def _counting(scene: Scene, rng: random.Random) -> TaskRecord:
    phrase, n = _pick(rng, counting_families(scene))
    return TaskRecord("counting", answers=_count(n), question=f"How many {phrase} are there?", phrase=phrase)


def _question_generation(scene: Scene, rng: random.Random) -> TaskRecord:
    question, answers = _pick(rng, vqa_families(scene) + _counting_qa(scene))
    return TaskRecord("question_generation", answers=answers[:1], question=question)


def _dialogue(scene: Scene, rng: random.Random) -> TaskRecord:
    rounds = [_pick(rng, f(scene)) for f in (vqa_families, _counting_qa, yes_no_families)]
    rng.shuffle(rounds)
    rounds = rounds[: rng.choice((2, 3))]
    return TaskRecord("dialogue", dialogue=tuple((q, a[0]) for q, a in rounds))


def _refer(scene: Scene, rng: random.Random) -> TaskRecord:
    shape = rng.choice(scene.shapes)
    return TaskRecord("refer", phrase=f"the {shape.name}", boxes=(shape.box,), image_size=(scene.width, scene.height))


def _identify(scene: Scene, rng: random.Random) -> TaskRecord:
    shape = rng.choice(scene.shapes)
    answers = (with_article(shape.name), shape.name, with_article(f"{shape.size} {shape.name}"))
    return TaskRecord("identify", answers=answers, boxes=(shape.box,), image_size=(scene.width, scene.height))


def _detection(scene: Scene, rng: random.Random) -> TaskRecord:
    families = [sorted({s.kind for s in scene.shapes}), sorted({s.colour for s in scene.shapes})]
    value = rng.choice(rng.choice(families))
    found = [s for s in scene.shapes if value in (s.kind, s.colour)]
    phrase = f"{value}s" if value in KINDS else f"{value} shapes"
    return TaskRecord("detection", phrase=phrase, boxes=tuple(s.box for s in found),
                      image_size=(scene.width, scene.height))


MAKERS: dict[str, Maker] = {
    "caption": _caption_task, "vqa": _question("vqa", vqa_families), "counting": _counting,
    "yes_no": _question("yes_no", yes_no_families), "spatial": _question("spatial", spatial_families),
    "question_generation": _question_generation, "dialogue": _dialogue, "refer": _refer, "identify": _identify,
    "detection": _detection, "grounded_caption": _grounded_caption,
}
"""Task type -> the record it makes of a scene (None: this scene cannot pose it)."""
TASKS = supported(MAKERS, "scenes")


def make_task(kind: str, scene: Scene, rng: random.Random) -> TaskRecord | None:
    """A task of type `kind` about `scene`, or None when this scene cannot pose one."""
    if kind not in MAKERS:
        raise VlitError(f"task: scenes make {', '.join(TASKS)} tasks, not {kind!r}")
    return MAKERS[kind](scene, rng)


def examples(kind: str, count: int, rng: random.Random, max_tries: int = 200) -> list[Example]:
    """`count` examples of task type `kind`, each on a fresh scene (a scene that cannot pose the task, e.g. a
    spatial question about a single shape, is redrawn)."""
    if kind not in TASKS:
        raise VlitError(f"task: scenes make {', '.join(TASKS)} tasks, not {kind!r}")
    out = []
    for _ in range(count):
        for _ in range(max_tries):
            scene = sample_scene(rng)
            task = make_task(kind, scene, rng)
            if task is not None:
                out.append(Example(render_scene(scene), task))
                break
        else:
            raise VlitError(f"task: no scene in {max_tries} draws could pose a {kind} task")
    return out

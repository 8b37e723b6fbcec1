"""LLaVA-Bench (In-the-Wild), as LLaVA's evaluation kit has it (`eval/llava-bench-in-the-wild`, the Hugging Face
dataset `liuhaotian/llava-bench-in-the-wild`): `questions.jsonl` (question_id, image, text, category: conv,
detail or complex), `context.jsonl` (image, caption), `answers_gpt4.jsonl` (GPT-4's reference answers,
question_id, text) and `images/`.

Asked as LLaVA's `model_vqa.py` asks it in every style: the question as written, nothing appended (1024 new
tokens). Scored by a judge model as `llava/eval/eval_gpt_review_bench.py` does: per question, the system line
and a user message of the caption, the question, GPT-4's answer as "Assistant 1" and the model's as "Assistant
2", then the category's rule from `llava/eval/table/rule.json`; temperature 0.2, 1024 tokens. The reply's first
line holds the two scores (`parse_score`: commas as spaces, exactly two numbers, else [-1, -1], which still
count). `summarize_gpt_review.py` then gives, per category and over all, the relative score
mean(model) / mean(GPT-4) x 100, each mean rounded to 3 decimals first.

The reference pairs the three files by line order; vlit pairs answers by question_id and captions by image,
which is the same for the released files and names a row that has no partner.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import Conversation
from vlit.data.reading.fields import find_file
from vlit.data.reading.llava import parse_question
from vlit.errors import VlitError
from vlit.evaluation.badrows import read_each
from vlit.evaluation.samples import EvalSample, expect, field_of, image_path
from vlit.evaluation.suites.base import Suite, Unscored

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.judge import Ask

log = logging.getLogger(__name__)

SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
ROLE = "Assistant"
# rule.json's "llava_bench_conv", "llava_bench_detail" and "llava_bench_complex" (one text for the three), from
# haotian-liu/LLaVA llava/eval/table/rule.json (Apache-2.0); the space before the first line break is theirs.
RULE = ("We would like to request your feedback on the performance of two AI assistants in response to the user "
        "question displayed above. The user asks the question on observing an image. For your reference, the "
        "visual content in the image is represented with a few sentences describing the image. \n"
        "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant "
        "receives an overall score on a scale of 1 to 10, where a higher score indicates better overall "
        "performance.\n"
        "Please first output a single line containing only two values indicating the scores for Assistant 1 and "
        "2, respectively. The two scores are separated by a space.\n"
        "In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any "
        "potential bias and ensuring that the order in which the responses were presented does not affect your "
        "judgment.")
CATEGORIES = ("conv", "detail", "complex")
TEMPERATURE = 0.2
MAX_TOKENS = 1024


# ---- reading ----------------------------------------------------------------------------------------------

def _captions(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def parse(row: Any, where: str) -> None:
        image = field_of(row, "image", str, where)
        caption = field_of(row, "caption", (str, list), where)
        if isinstance(caption, list):
            for i, line in enumerate(caption):
                expect(line, str, f"{where}.caption[{i}]")
        out[image] = caption

    read_each(path, parse)
    return out


def _references(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}

    def parse(row: Any, where: str) -> None:
        out[str(field_of(row, "question_id", (str, int), where))] = field_of(row, "text", str, where)

    read_each(path, parse)
    return out


def read_llava_bench(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    questions = find_file(Path(bench.path), ("questions.jsonl",), "LLaVA-Bench question file")
    root = questions.parent
    image_root = bench.image_root or root / "images"
    context = root / "context.jsonl"
    gpt4 = Path(bench.annotations) if bench.annotations else root / "answers_gpt4.jsonl"
    captions = _captions(context) if context.exists() else None
    references = _references(gpt4) if gpt4.exists() else None
    missing = [p.name for p, found in ((context, captions), (gpt4, references)) if found is None]
    if missing:
        log.warning("%s: no %s: the answers are written but a judge cannot score them", root, " or ".join(missing))

    def parse(row: Any, where: str) -> EvalSample:
        question = parse_question(row, where)
        category = field_of(row, "category", str, where)
        if category not in CATEGORIES:
            raise VlitError(f"{where}.category: {category!r} is not one of {', '.join(CATEGORIES)} (rule.json's "
                            "llava_bench_<category>)")
        meta: dict[str, Any] = {"question_id": row["question_id"], "category": category, "question": row["text"]}
        if captions is not None:
            if row.get("image") not in captions:
                raise VlitError(f"{where}.image: {row.get('image')!r} has no caption in {context}")
            meta["caption"] = captions[row["image"]]
        refs = []
        if references is not None:
            if question.id not in references:
                raise VlitError(f"{where}.question_id: {question.id} has no GPT-4 answer in {gpt4}")
            refs = [references[question.id]]
        images = [image_path(image_root, i) for i in question.images]
        return EvalSample(question.id, Conversation(question.turns, images, question.id), "open", refs, [], meta)

    return read_each(questions, parse)


# ---- the judge's review -----------------------------------------------------------------------------------

def review_prompt(caption: str | list[str], question: str, reference: str, answer: str) -> str:
    """The user message `eval_gpt_review_bench.py` sends. Its context is `'\\n'.join(caption)`: the captions of
    a list on their lines, and a caption given as one string (as the released `context.jsonl` has it) one
    character per line; kept, because that is what the published numbers were judged on."""
    context = "\n".join(caption)
    return (f"[Context]\n{context}\n\n"
            f"[Question]\n{question}\n\n"
            f"[{ROLE} 1]\n{reference}\n\n[End of {ROLE} 1]\n\n"
            f"[{ROLE} 2]\n{answer}\n\n[End of {ROLE} 2]\n\n"
            f"[System]\n{RULE}\n\n")


def parse_review(review: str) -> tuple[float, float]:
    """`parse_score`: the first line, commas read as spaces, split on single spaces; exactly two numbers, else
    (-1, -1)."""
    parts = review.split("\n")[0].replace(",", " ").split(" ")
    if len(parts) != 2:
        return (-1.0, -1.0)
    try:
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        return (-1.0, -1.0)


def summarize(tuples: Sequence[tuple[str, tuple[float, float]]]) -> dict[str, float]:
    """`summarize_gpt_review.py` on (category, (reference score, model score)) pairs: per category and over
    all, both means rounded to 3 decimals, and `relative` = model / reference (x 100 is the printed number)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for category, pair in tuples:
        by.setdefault(category, []).append(pair)
        by.setdefault("all", []).append(pair)
    out: dict[str, float] = {}
    for category, pairs in sorted(by.items()):
        reference = round(sum(p[0] for p in pairs) / len(pairs), 3)
        model = round(sum(p[1] for p in pairs) / len(pairs), 3)
        if reference == 0:
            raise VlitError(f"LLaVA-Bench {category}: the reference answers' mean score is 0")
        prefix = "" if category == "all" else f"{category}/"
        out |= {f"{prefix}relative": model / reference, f"{prefix}model_score": model,
                f"{prefix}reference_score": reference}
    return out


def review_llava_bench(predictions: Sequence[str], samples: Sequence[EvalSample], ask: Ask) -> dict[str, float]:
    """Each answer reviewed against GPT-4's by the judge, then `summarize`d; `unparsed` is the fraction of
    reviews whose first line did not hold two scores (they count as -1, -1, as in the reference)."""
    lacking = next((s for s in samples if "caption" not in s.meta or not s.references), None)
    if lacking is not None:
        raise Unscored("LLaVA-Bench needs context.jsonl and answers_gpt4.jsonl beside questions.jsonl for the "
                       f"judge (question {lacking.id} has no caption or GPT-4 answer)")
    tuples, unparsed = [], 0
    for prediction, sample in zip(predictions, samples, strict=True):
        content = review_prompt(sample.meta["caption"], sample.meta["question"], str(sample.references[0]),
                                prediction)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
        pair = parse_review(ask(sample.id, messages, TEMPERATURE, MAX_TOKENS))
        if pair == (-1.0, -1.0):
            unparsed += 1
            log.warning("LLaVA-Bench question %s: the review's first line holds no two scores; counted as -1 -1 "
                        "(as eval_gpt_review_bench.py does)", sample.id)
        tuples.append((sample.meta["category"], pair))
    return summarize(tuples) | {"unparsed": unparsed / len(samples)}


def write_llava_answers(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """The answers as LLaVA's answers JSONL (`question_id`, `prompt`, `text`, `answer_id`, `model_id`), the
    `--answer-list` file `eval_gpt_review_bench.py` takes, for running the reference script itself."""
    path = folder / "llava_bench.llava-answers.jsonl"
    rows = [{"question_id": s.meta["question_id"], "prompt": s.meta["question"], "text": p,
             "answer_id": f"vlit-{s.id}", "model_id": folder.name, "metadata": {}}
            for s, p in zip(samples, predictions, strict=True)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


LLAVA_BENCH = Suite(read=read_llava_bench, metric="llava_bench", max_new_tokens=MAX_TOKENS,
                    files="LLaVA's eval/llava-bench-in-the-wild folder (questions.jsonl, context.jsonl, "
                          "answers_gpt4.jsonl, images/)",
                    judged=review_llava_bench, submission=write_llava_answers,
                    prompts={"all": "the question as written (LLaVA's model_vqa.py)"},
                    reference="LLaVA `eval_gpt_review_bench.py` + `summarize_gpt_review.py`")

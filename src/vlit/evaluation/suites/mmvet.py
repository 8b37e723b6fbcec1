"""MM-Vet, as LLaVA's evaluation kit has it (`eval/mm-vet`: `llava-mm-vet.jsonl`, question_id N for MM-Vet's
`v1_N`) with the ground truth of MM-Vet's release (`mm-vet.json`: `{"v1_N": {"imagename", "capability",
"question", "answer"}}`, unzipped into the same folder with `images/`). PATH is that folder, the question file,
or `mm-vet.json` alone (its questions are then asked).

Asked as LLaVA's `model_vqa.py` asks it in every style: the question as written (1024 new tokens). Scored by
a judge model as MM-Vet's `mm-vet_evaluator.py` does: its few-shot prompt, then `question | ground truth |
prediction | ` (the ground truth's `<AND>` / `<OR>` spaced), one user message, temperature 0, 3 tokens; the
score is the reply's first space-separated word as a number in 0..1. Otherwise it asks again with "Predict the
correctness of the answer (digit): " appended, at temperatures 0, 0.5, 1.0, 1.5, and gives 0.0 when none of
those replies is a score either (the reference then makes a sixth request whose reply it never reads; vlit does
not send it). Scores are averaged per capability (a question counts for each of its capabilities) and over
all: `total` x 100 is MM-Vet's headline. One run, the evaluator's default (the paper averages 5).

The answers are also written as MM-Vet's results file (`mmvet_results.json`, `{"v1_N": answer}`, what LLaVA's
`convert_mmvet_for_eval.py` writes) for MM-Vet's own evaluator or online grader.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.reading.llava import parse_question
from vlit.errors import VlitError
from vlit.evaluation.badrows import entries, keep_good, parse_rows, read_each
from vlit.evaluation.samples import EvalSample, expect, field_of, image_path, read_json
from vlit.evaluation.suites.base import Suite, Unscored

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.judge import Ask

log = logging.getLogger(__name__)

# The grader's prompt, from yuweihao/MM-Vet mm-vet_evaluator.py (its few-shot table kept verbatim).
PROMPT = """Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. <AND> in the ground truth means it is totally right only when all elements in the ground truth are present in the prediction, and <OR> means it is totally right when any one element in the ground truth is present in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme is using humor to point out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is derived from the unexpected contrast between the names of the countries and their actual physical characteristics. | 1.0
"""  # noqa: E501
RETRY_SUFFIX = "\nPredict the correctness of the answer (digit): "
TEMPERATURES = (0.0, 0.0, 0.5, 1.0, 1.5)
"""The first request's, then each re-ask's (the reference raises the temperature after each re-ask)."""
MAX_TOKENS = 3
_KEY = re.compile(r"^v1_(\d+)$")


# ---- reading ----------------------------------------------------------------------------------------------

def _ground_truth(path: Path) -> dict[str, dict[str, Any]]:
    """`v1_N` -> {question, answer, capability, imagename}, each entry checked (bad ones named)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise VlitError(f"{path}: expected MM-Vet's object of entries keyed v1_N, got {type(data).__name__}")

    def parse(entry: Any, where: str) -> dict[str, Any]:
        capability = field_of(entry, "capability", list, where)
        for i, c in enumerate(capability):
            expect(c, str, f"{where}.capability[{i}]")
        for key in ("question", "answer", "imagename"):
            field_of(entry, key, str, where)
        return entry

    rows = parse_rows(entries(data, path), parse)
    keep_good(rows, path)  # names (or raises) the bad entries
    return {key: row.value for key, row in zip(data, rows, strict=True) if row.error is None}


def _sample(question_id: str, text: str, image: str | None, image_root: Path | str, truth: dict | None,
            meta: dict[str, Any]) -> EvalSample:
    images = [] if image is None else [image_path(image_root, image)]
    content = text if image is None or IMAGE_TOKEN in text else f"{IMAGE_TOKEN}\n{text}"
    if truth is not None:
        meta |= {"question": truth["question"], "capability": list(truth["capability"])}
    return EvalSample(question_id, Conversation([Turn("user", content)], images, question_id), "open",
                      [] if truth is None else [truth["answer"]], [], meta)


def read_mmvet(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = Path(bench.path)
    folder = path if path.is_dir() else path.parent
    questions = path if path.is_file() and path.suffix == ".jsonl" else folder / "llava-mm-vet.jsonl"
    truth_path = Path(bench.annotations) if bench.annotations else (
        path if path.is_file() and path.suffix == ".json" else folder / "mm-vet.json")
    image_root = bench.image_root or folder / "images"
    truth = _ground_truth(truth_path) if truth_path.exists() else None
    if not questions.exists():
        if truth is None:
            raise VlitError(f"{path}: no MM-Vet question file (llava-mm-vet.jsonl) or ground truth (mm-vet.json)")
        out = []
        for key, entry in truth.items():
            match = _KEY.match(key)
            qid = match.group(1) if match else key
            out.append(_sample(qid, entry["question"], entry["imagename"], image_root, entry,
                               {"question_id": int(qid) if match else key, "key": key}))
        return out
    if truth is None:
        log.warning("%s: no mm-vet.json (MM-Vet's ground truth, from its release): the answers are written but "
                    "a judge cannot score them", folder)

    def parse(row: Any, where: str) -> EvalSample:
        question = parse_question(row, where)
        key = f"v1_{question.id}"  # convert_mmvet_for_eval.py's key
        if truth is not None and key not in truth:
            raise VlitError(f"{where}.question_id: {question.id}: no {key} in {truth_path}")
        return _sample(question.id, row["text"], row.get("image"), image_root,
                       None if truth is None else truth[key], {"question_id": row["question_id"], "key": key})

    return read_each(questions, parse)


# ---- the judge's grade ------------------------------------------------------------------------------------

def grade_prompt(question: str, truth: str, prediction: str) -> str:
    """The evaluator's user message for one answer."""
    answer = truth.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return PROMPT + "\n" + " | ".join([question, answer, prediction, ""])


def parse_grade(reply: str) -> float | None:
    """The reply's first space-separated word as a score in 0..1, else None (the evaluator's test)."""
    try:
        score = float(reply.split(" ")[0].strip())
    except ValueError:
        return None
    return None if score > 1.0 or score < 0.0 else score


def grade(sample_id: str, question: str, truth: str, prediction: str, ask: Ask) -> float:
    """One answer's correctness as the evaluator settles it (module docstring)."""
    prompt = grade_prompt(question, truth, prediction)
    for attempt, temperature in enumerate(TEMPERATURES):
        content = prompt if attempt == 0 else prompt + RETRY_SUFFIX
        score = parse_grade(ask(sample_id, [{"role": "user", "content": content}], temperature, MAX_TOKENS))
        if score is not None:
            return score
    log.warning("MM-Vet question %s: no reply of the judge was a score in 0..1; graded 0.0 (as the evaluator "
                "does)", sample_id)
    return 0.0


def grade_mmvet(predictions: Sequence[str], samples: Sequence[EvalSample], ask: Ask) -> dict[str, float]:
    """`total` (the mean correctness; x 100 is MM-Vet's number), `cap/<capability>` (the mean over the questions
    needing that capability) and `integration/<capabilities>` (over the questions needing exactly that set,
    named in sorted order)."""
    lacking = next((s for s in samples if not s.references), None)
    if lacking is not None:
        raise Unscored(f"MM-Vet needs its ground truth (mm-vet.json, from MM-Vet's release) for the judge "
                       f"(question {lacking.id} has none)")
    by: dict[str, list[float]] = {}
    for prediction, sample in zip(predictions, samples, strict=True):
        score = grade(sample.id, sample.meta["question"], str(sample.references[0]), prediction, ask)
        caps = sorted(set(sample.meta["capability"]))
        for key in ("total", *(f"cap/{c}" for c in caps), f"integration/{'_'.join(caps)}"):
            by.setdefault(key, []).append(score)
    return {key: sum(scores) / len(scores) for key, scores in by.items()}


def write_results(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """`{"v1_N": answer}`: MM-Vet's results file (LLaVA's `convert_mmvet_for_eval.py`)."""
    path = folder / "mmvet_results.json"
    results = {s.meta["key"]: p for s, p in zip(samples, predictions, strict=True)}
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


MMVET = Suite(read=read_mmvet, metric="mmvet", max_new_tokens=1024,
              files="LLaVA's eval/mm-vet folder (llava-mm-vet.jsonl, images/) with MM-Vet's mm-vet.json",
              judged=grade_mmvet, submission=write_results,
              prompts={"all": "the question as written (LLaVA's model_vqa.py)"},
              reference="MM-Vet `mm-vet_evaluator.py`")

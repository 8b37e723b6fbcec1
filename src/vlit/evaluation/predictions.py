"""Answers produced elsewhere, scored without a model (`vlit eval --predictions NAME=FILE`): LLaVA's answers
JSONL (`question_id`, `text`, ...), any `{question_id, text}` rows, an upload file of `{question_id, prediction}`
rows (SEED-Bench's), or vlit's own `{id, prediction}` file (with `scores` where the answers were ranked).

Answers pair with questions by question id; where a benchmark's ids repeat (TextVQA keys on the image, MME asks
two questions per image) the k-th answer of an id goes with the k-th question of it, as the reference scripts
pair them by order.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.samples import EvalSample


def read_predictions(path: str | Path, samples: list[EvalSample]) -> list[str]:
    """One answer per sample, in sample order; a question without an answer is an error naming it."""
    answers: dict[str, list[str]] = defaultdict(list)
    for where, row in read_rows(path):
        if not isinstance(row, dict):
            raise VlitError(f"{where}: expected a JSON object")
        if "prediction" in row and "id" in row:
            key, text = row["id"], row["prediction"]
        elif "question_id" in row and "text" in row:
            key, text = row["question_id"], row["text"]
        elif "question_id" in row and "prediction" in row:
            key, text = row["question_id"], row["prediction"]
        else:
            raise VlitError(f"{where}: neither {{question_id, text}} (LLaVA's answers), {{question_id, prediction}} "
                            "nor {id, prediction}")
        if not isinstance(text, str):
            raise VlitError(f"{where}: the answer is not text ({type(text).__name__})")
        answers[str(key)].append(text)
    taken: dict[str, int] = defaultdict(int)
    out = []
    for sample in samples:
        key = str(sample.meta.get("question_id", sample.id))
        if sample.id in answers and key not in answers:
            key = sample.id
        k = taken[key]
        if k >= len(answers.get(key, [])):
            raise VlitError(f"{path}: no answer for question {key}" + (f" (occurrence {k + 1})" if k else ""))
        out.append(answers[key][k])
        taken[key] += 1
    return out


def read_scores(path: str | Path) -> dict[str, dict[str, float]]:
    """Candidate scores by sample id, from the rows of vlit's own predictions file that carry them (ranked
    answers); other files give none."""
    out = {}
    for where, row in read_rows(path):
        if isinstance(row, dict) and "id" in row and "scores" in row:
            scores = row["scores"]
            if not isinstance(scores, dict) or not all(isinstance(v, int | float) for v in scores.values()):
                raise VlitError(f"{where}.scores: expected candidate -> number")
            out[str(row["id"])] = {str(k): float(v) for k, v in scores.items()}
    return out

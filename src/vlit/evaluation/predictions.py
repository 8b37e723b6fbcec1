"""Answers produced elsewhere, scored without a model (`vlit eval --predictions NAME=FILE`): LLaVA's answers
JSONL (`question_id`, `text`, ...), any `{question_id, text}` rows, or vlit's own `{id, prediction}` file.

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
        else:
            raise VlitError(f"{where}: neither {{question_id, text}} (LLaVA's answers) nor {{id, prediction}}")
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

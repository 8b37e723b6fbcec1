"""The two-way classification benchmarks, as MiniGPT-v2's `eval_scripts/eval_vqa.py` and InstructBLIP ask and
score them.

- VSR (zero-shot split, `data/splits/zeroshot/test.jsonl`: `image`, `caption`, `label` 1/0): "is this statement
  true or false?" on the caption; right when the lower-cased answer is exactly `true`/`false` as the label says
  (MiniGPT-v2's rule). Images: the benchmark's image root, else the first `images` folder beside the file or up
  to three folders above it (the VSR repository keeps them in `data/images`).
- HatefulMemes (`dev.jsonl`: `id`, `img`, `label` 1/0, `text`; images relative to the file's folder): "Is it
  hateful?" on the meme's text. `accuracy` as MiniGPT-v2 counts it (the stripped, lower-cased answer must be
  `yes` or `no`); `roc_auc`, the headline, as InstructBLIP reports it: from the ranked candidates' scores (log
  P(yes) - log P(no)), else, for generated answers, from the answers themselves (yes 1, anything else 0;
  `auc_from_scores` says which).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import HATEFUL_LABELS, VSR_LABELS, hateful_memes_prompt, vsr_prompt
from vlit.data.reading.fields import find_file
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.roc import roc_auc
from vlit.evaluation.samples import EvalSample, field_of, image_path
from vlit.evaluation.suites.base import EVAL_STYLES, Suite, shown

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec


def _label(row: Any, where: str, labels: tuple[str, str]) -> str:
    """A 1/0 label as its answer text (`labels`: the positive's, the negative's)."""
    value = field_of(row, "label", int, where)
    if value not in (0, 1):
        raise VlitError(f"{where}.label: {value} is not 0 or 1")
    return labels[0] if value == 1 else labels[1]


def _sample(sample_id: str, text: str, image: str, label: str, labels: tuple[str, str]) -> EvalSample:
    conversation = Conversation([Turn("user", f"{IMAGE_TOKEN}\n{text}")], [image], sample_id)
    return EvalSample(sample_id, conversation, "classification", [label], list(labels), {"question_id": sample_id})


def _check(predictions: Sequence[str], samples: Sequence[EvalSample], name: str) -> None:
    if len(predictions) != len(samples) or not samples:
        raise VlitError(f"{name} metric: {len(predictions)} predictions for {len(samples)} samples")


# ---- VSR --------------------------------------------------------------------------------------------------

def _vsr_images(path: Path, image_root: str | None) -> Path:
    if image_root:
        return Path(image_root)
    for folder in [path.parent, *path.parent.parents][:4]:
        if (folder / "images").is_dir():
            return folder / "images"
    return path.parent / "images"


def read_vsr(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = find_file(Path(bench.path), ("test.jsonl", "zeroshot/test.jsonl", "*/test.jsonl", "*.jsonl"),
                     "VSR split file")
    root = _vsr_images(path, bench.image_root)
    samples = []
    for i, (where, row) in enumerate(read_rows(path)):
        caption = field_of(row, "caption", str, where)
        label = _label(row, where, VSR_LABELS)
        image = image_path(root, field_of(row, "image", str, where))
        # VSR rows have no id (an image has several captions): a row is its position in the file.
        text = vsr_prompt(render, caption, label, random.Random(f"{seed}:{i}"))
        samples.append(_sample(str(i), text, image, label, VSR_LABELS))
    return samples


def vsr_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`accuracy`: `answer.lower() == label` (MiniGPT-v2's `eval_vqa.py`)."""
    _check(predictions, samples, "vsr")
    right = [p.lower() == s.references[0] for p, s in zip(predictions, samples, strict=True)]
    return {"accuracy": sum(right) / len(right)}


# ---- HatefulMemes -----------------------------------------------------------------------------------------

def read_hateful_memes(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = find_file(Path(bench.path), ("dev.jsonl", "dev_seen.jsonl", "dev*.jsonl", "*.jsonl"),
                     "HatefulMemes split file")
    root = Path(bench.image_root) if bench.image_root else path.parent
    samples, seen = [], {}
    for where, row in read_rows(path):
        meme = str(field_of(row, "id", (str, int), where))
        if meme in seen:
            raise VlitError(f"{where}.id: {meme} repeats {seen[meme]}")
        seen[meme] = where
        label = _label(row, where, HATEFUL_LABELS)
        text = hateful_memes_prompt(render, field_of(row, "text", str, where), label,
                                    random.Random(f"{seed}:{meme}"))
        samples.append(_sample(meme, text, image_path(root, field_of(row, "img", str, where)), label,
                               HATEFUL_LABELS))
    return samples


def hateful_answer(text: str) -> int | None:
    """MiniGPT-v2's reading: 1 for "yes", 0 for "no" (stripped, lower-cased), else None (wrong)."""
    said = text.lower().strip()
    return 1 if said == "yes" else 0 if said == "no" else None


def hateful_memes_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`roc_auc` (NaN when the samples hold one class only), `accuracy`, `auc_from_scores` (1.0: every answer
    was ranked and its scores give the AUC; 0.0: the yes/no answers do) and `unparsed`."""
    _check(predictions, samples, "hateful_memes")
    truth = [1 if s.references[0] == HATEFUL_LABELS[0] else 0 for s in samples]
    said = [hateful_answer(p) for p in predictions]
    scores = [s.meta.get("scores") for s in samples]
    ranked = all(isinstance(v, dict) and set(HATEFUL_LABELS) <= set(v) for v in scores)
    if ranked:
        values = [v[HATEFUL_LABELS[0]] - v[HATEFUL_LABELS[1]] for v in scores]
    else:
        values = [1.0 if a == 1 else 0.0 for a in said]
    auc = roc_auc(truth, values) if len(set(truth)) == 2 else math.nan
    return {"roc_auc": auc, "accuracy": sum(a == t for a, t in zip(said, truth, strict=True)) / len(truth),
            "auc_from_scores": float(ranked), "unparsed": sum(a is None for a in said) / len(said)}


VSR = Suite(read=read_vsr, metric="vsr", style_modes={"instructblip": "rank"}, max_new_tokens=16,
            files="VSR's data/splits/zeroshot folder (test.jsonl; images in data/images)",
            prompts={style: shown(vsr_prompt(style, "{caption}", VSR_LABELS[0], random.Random(0)))
                     for style in EVAL_STYLES},
            reference="MiniGPT-v2 `eval_vqa.py` (answer == label)")
HATEFUL_MEMES = Suite(read=read_hateful_memes, metric="hateful_memes", style_modes={"instructblip": "rank"},
                      max_new_tokens=16, files="HatefulMemes' data folder (dev.jsonl, img/)",
                      prompts={style: shown(hateful_memes_prompt(style, "{text}", HATEFUL_LABELS[0], random.Random(0)))
                               for style in EVAL_STYLES},
                      reference="InstructBLIP's ROC-AUC (yes/no ranked); accuracy: MiniGPT-v2 `eval_vqa.py`")

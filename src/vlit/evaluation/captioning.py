"""Captioning scores with the field's reference implementation: coco-caption's PTB tokenizer, BLEU-1..4 and
CIDEr-D (`pycocoevalcap`, the code behind every COCO / NoCaps / Flickr30k number in the papers).

The tokenizer is Stanford CoreNLP's, run with `java`: without Java there is no comparable score, so a
missing `java` raises rather than falling back to a different tokenizer.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from vlit.errors import VlitError

JAVA_PACKAGE = "default-jre-headless"


def _require_java() -> None:
    if shutil.which("java") is None:
        raise VlitError("captioning metrics: `java` not found; pycocoevalcap's PTB tokenizer runs on Java "
                        f"(Debian/Ubuntu: apt-get install {JAVA_PACKAGE})")


def _one_line(text: str) -> str:
    # The tokenizer writes one caption per line and reads lines back in order; a caption holding a line break
    # of any kind would shift every caption after it onto the wrong image.
    return " ".join(text.split())


def caption_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 (coco-caption's "closest" reference length) and CIDEr-D of one caption per image
    against that image's reference captions: `{"bleu1", ..., "bleu4", "cider"}`, as coco-caption returns them
    (BLEU in 0..1, CIDEr-D in 0..10; papers print both times 100).

    CIDEr-D weighs n-grams by their document frequency over the references of all the images scored together,
    so it is a corpus score: one image alone, or n-grams every image shares, get zero weight.
    """
    if len(predictions) != len(references):
        raise VlitError(f"caption scores: {len(predictions)} predictions for {len(references)} images")
    if not predictions:
        raise VlitError("caption scores: no captions to score")
    for i, refs in enumerate(references):
        if not refs:
            raise VlitError(f"caption scores: image {i} has no reference caption")
    _require_java()
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError:
        raise VlitError("captioning metrics need pycocoevalcap: pip install pycocoevalcap") from None
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": _one_line(r)} for r in refs]
                              for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": _one_line(p)}] for i, p in enumerate(predictions)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["cider"] = float(cider)
    return scores

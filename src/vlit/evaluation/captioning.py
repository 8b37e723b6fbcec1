"""Captioning scores with the field's reference implementation: coco-caption's PTB tokenizer, BLEU-1..4,
CIDEr-D and, where it can run, SPICE (`pycocoevalcap`, the code behind every COCO / NoCaps / Flickr30k number
in the papers).

The tokenizer is Stanford CoreNLP's, run with `java`: without Java there is no comparable score, so a
missing `java` raises rather than falling back to a different tokenizer. SPICE needs more than Java: the
Stanford CoreNLP 3.6.0 jars, which pycocoevalcap downloads on first use. Where they are missing (no network
here) SPICE is not computed, said in a warning, and its key is absent: never a number that is not SPICE.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vlit.errors import VlitError

log = logging.getLogger(__name__)

JAVA_PACKAGE = "default-jre-headless"
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
"""What pycocoevalcap's `get_stanford_models` would download into `pycocoevalcap/spice/lib/`."""

Tokenized = dict[int, list[str]]


def _require_java() -> None:
    if shutil.which("java") is None:
        raise VlitError("captioning metrics: `java` not found; pycocoevalcap's PTB tokenizer runs on Java "
                        f"(Debian/Ubuntu: apt-get install {JAVA_PACKAGE})")


def _coco_caption() -> SimpleNamespace:
    """pycocoevalcap's tokenizer and scorers (imported on first use: they are an optional dependency)."""
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.spice import spice
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError:
        raise VlitError("captioning metrics need pycocoevalcap: pip install 'vlit[eval]'") from None
    return SimpleNamespace(Bleu=Bleu, Cider=Cider, PTBTokenizer=PTBTokenizer, spice=spice)


def spice_unavailable() -> str | None:
    """Why SPICE cannot run on this machine, or None when it can. Checked before `Spice()` is built: its
    constructor would try to download Stanford CoreNLP."""
    if shutil.which("java") is None:
        return "`java` not found"
    lib = Path(_coco_caption().spice.__file__).parent / "lib"
    missing = [name for name in SPICE_JARS if not (lib / name).is_file()]
    if missing:
        return (f"{lib}: {', '.join(missing)} missing (pycocoevalcap's get_stanford_models downloads them from "
                "nlp.stanford.edu on first use)")
    return None


def _one_line(text: str) -> str:
    # The tokenizer writes one caption per line and reads lines back in order; a caption holding a line break
    # of any kind would shift every caption after it onto the wrong image. (coco-caption replaces only
    # "\n"; the PTB tokenizer splits on whitespace, so collapsing all of it yields the same tokens.)
    return " ".join(text.split())


def tokenize(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[Tokenized, Tokenized]:
    """(references, predictions) keyed by image index, PTB-tokenized, lower-cased and stripped of punctuation
    as `COCOEvalCap.evaluate` does (references and predictions in two separate tokenizer runs, as there)."""
    if len(predictions) != len(references):
        raise VlitError(f"caption scores: {len(predictions)} predictions for {len(references)} images")
    if not predictions:
        raise VlitError("caption scores: no captions to score")
    for i, refs in enumerate(references):
        if not refs:
            raise VlitError(f"caption scores: image {i} has no reference caption")
    _require_java()
    tokenizer = _coco_caption().PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": _one_line(r)} for r in refs] for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": _one_line(p)}] for i, p in enumerate(predictions)})
    return gts, res


def _corpus_scores(gts: Tokenized, res: Tokenized, ids: Sequence[int]) -> dict[str, float]:
    gts_part, res_part = {i: gts[i] for i in ids}, {i: res[i] for i in ids}
    coco = _coco_caption()
    bleu, _ = coco.Bleu(4).compute_score(gts_part, res_part, verbose=0)
    cider, _ = coco.Cider().compute_score(gts_part, res_part)
    scores = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["cider"] = float(cider)
    return scores


def _spice_per_image(gts: Tokenized, res: Tokenized) -> list[float] | None:
    """SPICE's per-image F-score ("All"), in image order; None (with a warning) where SPICE cannot run."""
    reason = spice_unavailable()
    if reason is None:
        try:
            _, per_image = _coco_caption().spice.Spice().compute_score(gts, res)
        except (subprocess.CalledProcessError, OSError) as e:
            reason = f"the SPICE jar failed ({e})"
        else:
            # Spice scores images in sorted id order; ids here are 0..n-1, so that is image order.
            return [float(s["All"]["f"]) for s in per_image]
    log.warning("SPICE not computed: %s", reason)
    return None


def caption_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
                   subsets: Mapping[str, Sequence[int]] | None = None, spice: bool = False) -> dict[str, float]:
    """Corpus BLEU-1..4 (coco-caption's "closest" reference length) and CIDEr-D of one caption per image
    against that image's reference captions: `{"bleu1", ..., "bleu4", "cider"}`, as coco-caption returns them
    (BLEU in 0..1, CIDEr-D in 0..10; papers print both times 100).

    CIDEr-D weighs n-grams by their document frequency over the references of all the images scored together,
    so it is a corpus score: one image alone, or n-grams every image shares, get zero weight. Each of
    `subsets` (name -> image indices; NoCaps' domains) is scored as a corpus of its own, keys
    `<name>/<metric>`, as `COCOEvalCap` does when its `image_id` parameter names a subset.

    `spice`: also `spice` (and `<name>/spice`), the mean of SPICE's per-image F-score, where SPICE runs here;
    otherwise the keys are absent and a warning says why.
    """
    gts, res = tokenize(predictions, references)
    subsets = dict(subsets or {})
    scores = _corpus_scores(gts, res, range(len(predictions)))
    for name, ids in subsets.items():
        scores |= {f"{name}/{k}": v for k, v in _corpus_scores(gts, res, ids).items()}
    per_image = _spice_per_image(gts, res) if spice else None
    if per_image is not None:
        scores["spice"] = float(np.mean(per_image))
        scores |= {f"{name}/spice": float(np.mean([per_image[i] for i in ids])) for name, ids in subsets.items()}
    return scores

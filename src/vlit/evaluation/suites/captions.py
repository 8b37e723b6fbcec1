"""Flickr30K and NoCaps captioning (InstructBLIP's held-out captioning benchmarks), scored by coco-caption.

- `flickr30k`: Karpathy's split file `dataset_flickr30k.json` (`{"images": [{"filename", "split", "sentences":
  [{"raw"}]}], "dataset": "flickr30k"}`), its 1,000 `test` images, references the `raw` sentences.
- `nocaps`: the validation captions `nocaps_val_4500_captions.json` (COCO captions shape; each image has
  `domain`: in-domain, near-domain or out-domain). The test split has no public captions (EvalAI only).

Asked per style as each paper's evaluation asks for a caption (`vlit.data.prompting.benchmarks.CAPTION_PROMPTS`),
not as the training styles' random draws: a benchmark's prompt does not change per image.

Scored as coco-caption (`COCOEvalCap`: PTB tokenizer, BLEU-1..4, CIDEr-D; `vlit.evaluation.captioning`). NoCaps
also per domain, each domain's images scored as a corpus of their own (as its per-domain evaluation files are),
and SPICE where it can run here; NoCaps val predictions are also written as EvalAI's submission
(`[{"image_id", "caption"}]`), which computes SPICE by domain. Headline: CIDEr (overall).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import CAPTION_PROMPTS
from vlit.data.reading.fields import find_file
from vlit.errors import VlitError
from vlit.evaluation.captioning import caption_scores
from vlit.evaluation.samples import EvalSample, field_of, image_path, read_json
from vlit.evaluation.suites.base import EVAL_STYLES, Suite, shown

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec

DOMAINS = ("in-domain", "near-domain", "out-domain")


def caption_sample(sample_id: str, image: str, references: list[str], render: StyleName,
                   meta: dict[str, Any]) -> EvalSample:
    prompt = CAPTION_PROMPTS[render]
    conversation = Conversation([Turn("user", f"{IMAGE_TOKEN}\n{prompt}")], [image], sample_id)
    return EvalSample(sample_id, conversation, "caption", references, [], meta)


def _object(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise VlitError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


# ---- Flickr30K --------------------------------------------------------------------------------------------

def karpathy_samples(path: Path, split: str, image_root: str | None, render: StyleName) -> list[EvalSample]:
    """The `split` images of a Karpathy split file; id the file name without extension (the Flickr id)."""
    data = _object(read_json(path), path)
    samples, splits = [], set()
    for i, image in enumerate(field_of(data, "images", list, str(path))):
        where = f"{path}: images[{i}]"
        splits.add(field_of(image, "split", str, where))
        if image["split"] != split:
            continue
        filename = field_of(image, "filename", str, where)
        sentences = field_of(image, "sentences", list, where)
        refs = [field_of(s, "raw", str, f"{where}.sentences[{j}]") for j, s in enumerate(sentences)]
        if not refs:
            raise VlitError(f"{where}.sentences: empty")
        # COCO's Karpathy file puts images under `filepath` (val2014/...); Flickr30K's has none.
        file = f"{image['filepath']}/{filename}" if isinstance(image.get("filepath"), str) else filename
        sample_id = Path(filename).stem
        samples.append(caption_sample(sample_id, image_path(image_root, file), refs, render,
                                      {"question_id": sample_id, "imgid": image.get("imgid")}))
    if not samples:
        raise VlitError(f"{path}: no image of split {split!r} (splits in the file: {', '.join(sorted(splits))})")
    return samples


def read_flickr30k(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = find_file(Path(bench.path), ("dataset_flickr30k.json", "dataset_flickr30k*.json"),
                     "Karpathy split file")
    dataset = _object(read_json(path), path).get("dataset")
    if dataset not in (None, "flickr30k"):
        raise VlitError(f"{path}: dataset: {dataset!r}, not flickr30k")
    return karpathy_samples(path, "test", bench.image_root, render)


# ---- NoCaps -----------------------------------------------------------------------------------------------

def nocaps_samples(path: Path, image_root: str | None, render: StyleName) -> list[EvalSample]:
    """One sample per image (id its `id`, as EvalAI's submission keys it), references its captions, meta
    `domain`. Images either all carry a domain or none does (then there is no per-domain score)."""
    data = _object(read_json(path), path)
    captions: dict[int, list[str]] = defaultdict(list)
    for i, ann in enumerate(field_of(data, "annotations", list, str(path))):
        where = f"{path}: annotations[{i}]"
        captions[field_of(ann, "image_id", int, where)].append(field_of(ann, "caption", str, where))
    samples, with_domain, seen = [], None, {}
    for i, image in enumerate(field_of(data, "images", list, str(path))):
        where = f"{path}: images[{i}]"
        image_id = field_of(image, "id", int, where)
        if image_id in seen:
            raise VlitError(f"{where}.id: {image_id} repeats images[{seen[image_id]}]")
        seen[image_id] = i
        meta: dict[str, Any] = {"image_id": image_id}
        if with_domain is None:
            with_domain = "domain" in image
        if with_domain:
            domain = field_of(image, "domain", str, where)
            if domain not in DOMAINS:
                raise VlitError(f"{where}.domain: {domain!r} is not one of {', '.join(DOMAINS)}")
            meta["domain"] = domain
        elif "domain" in image:
            raise VlitError(f"{where}.domain: images[0] has no domain, this one has: all or none")
        refs = captions.pop(image_id, None)
        if not refs:
            raise VlitError(f"{where}: image {image_id} has no caption in annotations")
        file = image_path(image_root, field_of(image, "file_name", str, where))
        samples.append(caption_sample(str(image_id), file, refs, render, meta))
    if captions:  # what no image took
        raise VlitError(f"{path}: annotations: caption(s) of image_id {min(captions)}, which is not in images")
    if not samples:
        raise VlitError(f"{path}: images: empty")
    return samples


def read_nocaps(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = find_file(Path(bench.path), ("nocaps_val_4500_captions.json", "nocaps_val_4500_captions*.json",
                                        "nocaps_val*captions*.json"), "NoCaps validation captions")
    return nocaps_samples(path, bench.image_root, render)


def nocaps_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """coco-caption's scores overall (`cider`, `bleu1`..`bleu4`, `spice` where SPICE runs) and per domain
    (`in-domain/cider`, ...), each domain a corpus of its own."""
    if len(predictions) != len(samples):
        raise VlitError(f"nocaps metric: {len(predictions)} predictions for {len(samples)} samples")
    domains: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        if "domain" in sample.meta:
            domains.setdefault(sample.meta["domain"], []).append(i)
    subsets = {d: domains[d] for d in DOMAINS if d in domains}
    return caption_scores(predictions, [[str(r) for r in s.references] for s in samples], subsets, spice=True)


def nocaps_submission(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """EvalAI's NoCaps submission: `[{"image_id": int, "caption": str}]`."""
    path = folder / "nocaps_val_evalai.json"
    rows = [{"image_id": s.meta["image_id"], "caption": p} for s, p in zip(samples, predictions, strict=True)]
    path.write_text(json.dumps(rows, ensure_ascii=False) + "\n")
    return path


PROMPTS = {style: shown(CAPTION_PROMPTS[style]) for style in EVAL_STYLES}
REFERENCE = "coco-caption CIDEr-D (pycocoevalcap)"

FLICKR30K = Suite(read=read_flickr30k, metric="caption", max_new_tokens=64,
                  files="Karpathy's dataset_flickr30k.json (its test split)", prompts=PROMPTS, reference=REFERENCE)
NOCAPS = Suite(read=read_nocaps, metric="nocaps", max_new_tokens=64, submission=nocaps_submission,
               files="NoCaps' nocaps_val_4500_captions.json", prompts=PROMPTS,
               reference=f"{REFERENCE}, also per domain")

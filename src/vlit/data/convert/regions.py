"""Region-level releases: RefCOCO, RefCOCO+ and RefCOCOg (refer's folders), each expression made into both
directions LLaVA-1.5 and MiniGPT-v2 train: comprehension (REC, `refer`: the box from the expression) and
generation (REG, `identify`: the expression from the box). Boxes stay in the image's pixels in the record;
the prompt style writes them (LLaVA-1.5: `[x1, y1, x2, y2]` in 0..1; MiniGPT-v2: `{<x1><y1><x2><y2>}` on the
0..100 grid)."""

from __future__ import annotations

from pathlib import Path

from vlit.data.convert.items import Item, Read
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import BadRow, guarded
from vlit.data.reading.refer import Ref, read_refer


def read_refcoco(path: Path) -> Read:
    """A refer folder's train refs (`refs(unc).p` or `refs(umd).p` + `instances.json`, or the refs file):
    per expression a `refer` item then an `identify` item, ids `<ref_id>_<sent_id>_refer` / `_identify`."""
    for ref in read_refer(path, split="train"):
        made = ref if isinstance(ref, BadRow) else guarded(ref.where, lambda ref=ref: _items(ref))
        if isinstance(made, BadRow):
            yield made
        else:
            yield from made


def _items(ref: Ref) -> list[Item]:
    items = []
    for sent_id, text in ref.sentences:
        key = f"{ref.ref_id}_{sent_id}"
        items += [Item(f"{key}_refer", ref.image, TaskRecord("refer", phrase=text, boxes=(ref.box,),
                                                             image_size=ref.size)),
                  Item(f"{key}_identify", ref.image, TaskRecord("identify", answers=(text,), boxes=(ref.box,),
                                                                image_size=ref.size))]
    return items

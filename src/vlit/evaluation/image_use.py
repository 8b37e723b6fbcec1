"""Does the model use the image? The image-shuffle check: the loss of the reference answers with each row's own
image, and with the images moved one row along the batch (every row then sees another row's image, the text
unchanged). A model that reads its image loses much more with the wrong one; a model whose answers come from the
text alone (the prompt, the answer format, the class prior) loses the same.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from vlit.data.conversation import Conversation
from vlit.errors import VlitError
from vlit.inference.pipeline import Pipeline


@dataclass(frozen=True)
class ShuffleCheck:
    """Mean per-row answer loss (nats per answer token) with the images in place and shuffled."""

    in_place: float
    shuffled: float
    rows: int

    @property
    def ratio(self) -> float:
        return self.shuffled / self.in_place if self.in_place > 0 else math.inf

    def __str__(self) -> str:
        return (f"loss {self.in_place:.3f} in place vs {self.shuffled:.3f} shuffled ({self.ratio:.1f}x, "
                f"{self.rows} rows)")


@torch.no_grad()
def image_shuffle_check(pipe: Pipeline, conversations: list[Conversation], batch_size: int = 16,
                        label: str = "image shuffle") -> ShuffleCheck:
    """The check on `conversations` (each one image and its answers); batches of at least 2 rows, the last
    folded into the one before when it would be alone."""
    if len(conversations) < 2:
        raise VlitError("image shuffle check: needs at least 2 conversations with an image each")
    for c in conversations:
        if len(c.images) != 1:
            raise VlitError(f"image shuffle check: conversation {c.id} has {len(c.images)} images; needs one")
    starts = list(range(0, len(conversations), batch_size))
    if len(conversations) - starts[-1] < 2 and len(starts) > 1:
        starts.pop()
    bounds = list(zip(starts, starts[1:] + [len(conversations)], strict=True))
    totals = {"in_place": 0.0, "shuffled": 0.0}
    model, processor = pipe.model, pipe.processor
    model.eval()
    for lo, hi in tqdm(bounds, desc=label, dynamic_ncols=True):
        chunk = conversations[lo:hi]
        examples = [processor.encode(c) for c in chunk]
        batch = processor.collate(examples, with_pixels=False).to(model.device)
        features = pipe.features.features(batch.images)
        for key, feats in (("in_place", features), ("shuffled", features.roll(1, dims=0))):
            inputs = dataclasses.replace(batch, image_features=feats).model_inputs()
            # Each row's mean first: a row's loss does not depend on how long the others' answers are.
            totals[key] += float(model(**inputs, loss_per="sample").loss) * len(chunk)
    n = len(conversations)
    return ShuffleCheck(totals["in_place"] / n, totals["shuffled"] / n, n)

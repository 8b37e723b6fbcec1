"""Batched generation on CUDA: 64 conversations in one batch vs 16 of them one at a time, bf16, a trained model.

    python benchmarks/gpu/generation.py CHECKPOINT   (on the lent GPU machine; see benchmarks/gpu/run.sh)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from PIL import Image

from vlit.data.conversation import Conversation
from vlit.inference.pipeline import Pipeline


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    pipe = Pipeline.from_pretrained(Path(sys.argv[1]), device="cuda", dtype="bfloat16")
    paths = sorted(Path("gpu/data").rglob("*.png"))[:64]
    convs = [Conversation.single("What is in this picture?", image=Image.open(p).convert("RGB")) for p in paths]
    fixed = {"max_new_tokens": 32, "min_new_tokens": 32}  # the same work batched and alone
    pipe.generate(convs[:4], **fixed)  # warm-up
    batched, t_batch = timed(lambda: pipe.generate(convs, **fixed))
    alone, t_alone = timed(lambda: [pipe.generate([c], **fixed)[0] for c in convs[:16]])
    tokens = 32 * len(convs)
    per_alone = t_alone * len(convs) / 16
    same = sum(a == b for a, b in zip(batched[:16], alone, strict=True))
    print(f"CUDA generation, {len(convs)} conversations x 32 tokens, bf16: batched {tokens / t_batch:.0f} tokens/s, "
          f"one at a time {tokens / per_alone:.0f} tokens/s, ratio {per_alone / t_batch:.1f}x; "
          f"the same answers on {same}/16")


if __name__ == "__main__":
    main()

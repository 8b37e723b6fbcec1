"""Inference speed: three ratios, each measured in this run against its own baseline.

1. Batched generation: 8 conversations in one left-padded batch vs one at a time, in tokens/s (target 3x).
2. Ranking 10 candidates reusing the shared prompt's KV cache vs scoring each candidate as a full sequence
   (target 2x); the scores of both are checked to agree. Then 16 conversations' candidates ranked as one batch
   (their prompts left-padded together) vs one conversation at a time, as an evaluation ranks a benchmark.
3. Feature reuse: time to the first answer token of a second turn (image features cached) vs the first turn
   (features computed), and vs the same second turn with the cache cleared.

The model is LLaVA-1.5 on the packaged parts (EfficientNet-Lite0 -> untrained MLP -> SmolLM2-135M, no LoRA),
big enough for the ratios to mean something on a CPU. Then the encoder-decoder rows (InstructBLIP with a T5, as
FlanT5): batched generation, and ranking with the encoder run once and reused for every candidate vs each
candidate in full (encoder and decoder); the T5 is random at FlanT5-small's size (8+8 layers, width 512), the
Q-Former's 32 queries before the prompt as InstructBLIP's. Every answer has a fixed length (min_new_tokens =
max_new_tokens) so the batched and one-at-a-time runs do the same work. `--quick` uses the tiny debug model.

    python benchmarks/inference.py [--quick] [--repeats N] [--only all|decoder|t5|ranking] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from vlit.config import Config, load_yaml
from vlit.data.conversation import Conversation
from vlit.inference.pipeline import Pipeline
from vlit.inference.ranking import rank, rank_many, score_full
from vlit.models.build import build_model

QUESTIONS = ["What is in this picture?", "Describe the image.", "What colour dominates?",
             "Is there a person in the image? Answer yes or no.", "Count the objects you can see.",
             "Where could this photo have been taken?", "What is the main object?", "Write a short caption."]
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
          "Ankle boot"]


def images(n: int) -> list[Image.Image]:
    """Real photos that ship with scikit-image, repeated if more are asked for."""
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.camera(), data.coins(),
              data.moon(), data.hubble_deep_field()]
    return [Image.fromarray(np.asarray(photos[i % len(photos)])).convert("RGB") for i in range(n)]


Step = Callable[[], object]


def best_times(runs: dict[str, tuple[Step, Step]], repeats: int) -> dict[str, float]:
    """Fastest time of each `name: (setup, run)` over `repeats` rounds after a warm-up round. The runs take
    turns within each round, so drift in the machine's load touches them all alike; the fastest run is the
    one least disturbed by everything else on the machine. Setup is not timed."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(repeats + 1):
        for name, (setup, run) in runs.items():
            setup()
            start = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def _nothing() -> None:
    return None


def batched_generation(pipe: Pipeline, tokens: int, repeats: int) -> None:
    conversations = [Conversation.single(q, image=im) for q, im in zip(QUESTIONS, images(8), strict=True)]
    pipe.features.features([c.images[0] for c in conversations])  # both modes time the LLM, not the encoder
    fixed = {"max_new_tokens": tokens, "min_new_tokens": tokens}
    single = [pipe.generate_ids([c], **fixed)[0] for c in conversations]
    assert pipe.generate_ids(conversations, **fixed) == single  # the same work, token for token
    t = best_times({"one": (_nothing, lambda: [pipe.generate_ids([c], **fixed) for c in conversations]),
                    "batch": (_nothing, lambda: pipe.generate_ids(conversations, **fixed))}, repeats)
    one, batch = t["one"], t["batch"]
    total = tokens * len(conversations)
    print(f"batched generation, {len(conversations)} conversations x {tokens} tokens:")
    print(f"  one at a time {total / one:8.1f} tokens/s   batched {total / batch:8.1f} tokens/s   "
          f"ratio {one / batch:5.2f}x (target 3x)")


def shared_prompt_ranking(pipe: Pipeline, repeats: int) -> None:
    (image,) = images(1)
    conversation = Conversation.single("What kind of clothing is this? Answer with a category.", image=image)
    features = pipe.features.features([image])
    model, processor = pipe.model, pipe.processor
    shared = lambda: rank(model, processor, conversation, LABELS, image_features=features)
    full = lambda: [score_full(model, processor, conversation, c, image_features=features) for c in LABELS]
    diff = max(abs(a - b) for a, b in zip(shared().scores, full(), strict=True))
    t = best_times({"full": (_nothing, full), "shared": (_nothing, shared)}, repeats)
    t_full, t_shared = t["full"], t["shared"]
    print(f"ranking {len(LABELS)} candidates (max score difference {diff:.1e}):")
    print(f"  each in full {t_full * 1000:8.1f} ms   shared prompt {t_shared * 1000:8.1f} ms   "
          f"ratio {t_full / t_shared:5.2f}x (target 2x)")


def many_prompt_ranking(pipe: Pipeline, repeats: int) -> None:
    photos = images(16)
    conversations = [Conversation.single(q, image=im) for q, im in zip(QUESTIONS * 2, photos, strict=True)]
    features = pipe.features.features(photos)
    model, processor = pipe.model, pipe.processor
    alone = lambda: [rank(model, processor, c, LABELS, image_features=features[i: i + 1])
                     for i, c in enumerate(conversations)]
    batched = lambda: rank_many(model, processor, conversations, [LABELS] * len(conversations),
                                image_features=features, batch_size=64)
    diff = max(abs(a - b) for x, y in zip(alone(), batched(), strict=True) for a, b in zip(x.scores, y.scores,
                                                                                            strict=True))
    t = best_times({"alone": (_nothing, alone), "batched": (_nothing, batched)}, repeats)
    print(f"ranking {len(LABELS)} candidates for each of {len(conversations)} conversations (max score difference "
          f"{diff:.1e}):")
    print(f"  one conversation at a time {t['alone'] * 1000:8.1f} ms   batched {t['batched'] * 1000:8.1f} ms   "
          f"ratio {t['alone'] / t['batched']:5.2f}x")


def second_turn(pipe: Pipeline, repeats: int) -> None:
    (image,) = images(1)
    first = Conversation.single("What is in this picture?", image=image)
    answer = pipe.chat(first, max_new_tokens=8, min_new_tokens=8)
    second = first.add("assistant", answer).add("user", "What colour is it?")
    one_token = {"max_new_tokens": 1}
    warm = lambda: pipe.features.features([image])
    t = best_times({"first": (pipe.features.clear, lambda: pipe.chat(first, **one_token)),
                    "cold": (pipe.features.clear, lambda: pipe.chat(second, **one_token)),
                    "second": (warm, lambda: pipe.chat(second, **one_token))}, 3 * repeats)
    t_first, t_cold, t_second = t["first"], t["cold"], t["second"]
    print("multi-turn, time to the first answer token:")
    print(f"  first turn {t_first * 1000:8.1f} ms   second turn, features reused {t_second * 1000:8.1f} ms   "
          f"ratio {t_first / t_second:5.2f}x")
    print(f"  second turn without reuse {t_cold * 1000:8.1f} ms   reuse speed-up {t_cold / t_second:5.2f}x")


def t5_pipeline(quick: bool) -> Pipeline:
    """`debug-t5`'s model; without `--quick` its T5 at FlanT5-small's size and InstructBLIP's 32 queries."""
    cfg = load_yaml(Config, "debug-t5").model
    if not quick:
        small = {**cfg.llm.random_config, "d_model": 512, "d_ff": 1024, "d_kv": 64, "num_heads": 6,
                 "num_layers": 8, "num_decoder_layers": 8}
        cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, random_config=small),
                                  connector=dataclasses.replace(cfg.connector, num_queries=32))
    model, processor = build_model(dataclasses.replace(cfg, lora=None))
    return Pipeline(model.eval(), processor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny debug model, few tokens")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", choices=["all", "decoder", "t5", "ranking"], default="all",
                        help="the decoder-only rows, the encoder-decoder rows, both, or the two ranking rows")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="the LLM's dtype (the recipe's bfloat16 puts ~0.3 nats of rounding between the "
                             "two ways of scoring, so the agreement check is made in float32 by default)")
    args = parser.parse_args()
    cfg = load_yaml(Config, "debug" if args.quick else "llava15").model
    cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, dtype=args.dtype))
    model, processor = build_model(dataclasses.replace(cfg, lora=None))
    pipe = Pipeline(model, processor)
    repeats = args.repeats or (2 if args.quick else 3)
    print(f"model: {'debug' if args.quick else 'llava15 (packaged parts)'}, "
          f"{model.num_image_tokens} image tokens, LLM in {args.dtype}, torch threads {torch.get_num_threads()}; "
          f"each time is the fastest of {repeats} runs (multi-turn: {3 * repeats}) after a warm-up")
    with torch.inference_mode():
        if args.only == "ranking":
            shared_prompt_ranking(pipe, repeats)
            many_prompt_ranking(pipe, repeats)
            return
        if args.only != "t5":
            batched_generation(pipe, 4 if args.quick else 16, repeats)
            shared_prompt_ranking(pipe, repeats)
            many_prompt_ranking(pipe, repeats)
            second_turn(pipe, repeats)
        if args.only == "decoder":
            return
        t5 = t5_pipeline(args.quick)
        print(f"\nencoder-decoder: {'debug-t5' if args.quick else 'InstructBLIP with a FlanT5-small-sized T5'}, "
              f"{t5.model.num_image_tokens} image tokens")
        batched_generation(t5, 4 if args.quick else 16, repeats)
        shared_prompt_ranking(t5, repeats)


if __name__ == "__main__":
    main()

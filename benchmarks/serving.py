"""API serving throughput: N concurrent requests (shared batches) vs the same N one at a time, in requests/s.

The server runs in this process on 127.0.0.1 with the debug model (or `--recipe llava15`: the packaged parts,
or `--checkpoint DIR`). Three ways to send the same N greedy requests, each measured in this run:

1. sequential: one request at a time, to a server with `--max-batch-size 1` (no request waits for company);
2. concurrent, batching off: N requests at once, to that same server;
3. concurrent, batched: N requests at once, the server batching them (target: 3x the sequential rate).

(2) shows what concurrency alone gives (HTTP and image decoding overlap the model), so the gap from (2) to (3)
is batching's. Requests are half text-only, half with an image, with prompts of different lengths; the
answers of (3) are checked to equal those of (1). Each rate is the best of `--rounds` rounds after a warm-up.

    python benchmarks/serving.py [--requests 16] [--max-tokens 32] [--recipe llava15 | --checkpoint DIR]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import torch
from PIL import Image

from vlit.config import Config, load_yaml
from vlit.inference.pipeline import Pipeline
from vlit.models.build import build_model
from vlit.serving.api import create_app
from vlit.serving.background import serve_in_background
from vlit.serving.settings import ServerSettings

TOPICS = ["the sea", "a mountain village in winter", "bread", "the history of clocks and the people who made them",
          "cats", "a long train journey across a continent at night", "rain", "the first day at a new school"]


def _data_uri(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def requests_(n: int, max_tokens: int) -> list[dict]:
    bodies = []
    for i in range(n):
        text = f"Tell me about {TOPICS[i % len(TOPICS)]}."
        content = text if i % 2 == 0 else [{"type": "image_url", "image_url": {"url": _data_uri(i)}},
                                           {"type": "text", "text": text}]
        bodies.append({"model": "bench", "messages": [{"role": "user", "content": content}],
                       "max_tokens": max_tokens, "temperature": 0})
    return bodies


def _send(client: httpx.Client, body: dict) -> str:
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]


def run(pipe: Pipeline, settings: ServerSettings, bodies: list[dict], concurrent: bool) -> tuple[float, list, dict]:
    """Seconds for all requests, the answers, and the server's batch counters."""
    # One client with a connection per request: creating a client per request costs more CPU than the tiny
    # debug model's answer, and would be timed.
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    with serve_in_background(create_app(pipe, settings)) as url, \
            httpx.Client(base_url=url, timeout=600, limits=limits) as client:
        _send(client, bodies[0])  # warm-up: stop-string tables, first-call allocations
        start = time.perf_counter()
        if concurrent:
            with ThreadPoolExecutor(len(bodies)) as pool:
                answers = list(pool.map(lambda b: _send(client, b), bodies))
        else:
            answers = [_send(client, b) for b in bodies]
        seconds = time.perf_counter() - start
        stats = client.get("/health").json()["stats"]
    return seconds, answers, stats


def load(args: argparse.Namespace) -> tuple[Pipeline, str]:
    if args.checkpoint:
        return Pipeline.from_pretrained(args.checkpoint), str(args.checkpoint)
    cfg = load_yaml(Config, args.recipe).model
    return Pipeline(*build_model(dataclasses.replace(cfg, lora=None))), f"the {args.recipe} recipe's model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipe", default="debug", help="build this recipe's model (debug, llava15, ...)")
    parser.add_argument("--checkpoint", help="serve this checkpoint folder instead")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe, name = load(args)
    bodies = requests_(args.requests, args.max_tokens)
    common = {"model_name": "bench", "max_tokens_limit": max(args.max_tokens, 256), "max_queue": 4 * args.requests,
              "batch_wait_ms": args.batch_wait_ms}
    batched = ServerSettings(max_batch_size=args.max_batch_size, **common)
    unbatched = ServerSettings(max_batch_size=1, **common)
    modes = {"sequential": (unbatched, False), "concurrent, batching off": (unbatched, True),
             "concurrent, batched": (batched, True)}
    best: dict[str, float] = {}
    answers: dict[str, list] = {}
    stats: dict[str, dict] = {}
    for _ in range(args.rounds):  # modes take turns, so drift in the machine's load touches all alike
        for mode, (settings, concurrent) in modes.items():
            seconds, answers[mode], stats[mode] = run(pipe, settings, bodies, concurrent)
            best[mode] = min(best.get(mode, float("inf")), seconds)
    n = args.requests
    print(f"serving: {name}, {n} requests x up to {args.max_tokens} new tokens (greedy), max batch "
          f"{args.max_batch_size}, batch wait {args.batch_wait_ms:g} ms, torch threads {torch.get_num_threads()}; "
          f"best of {args.rounds} rounds")
    for mode in modes:
        s = stats[mode]
        print(f"  {mode:<26} {n / best[mode]:8.2f} requests/s   ({best[mode]:6.2f} s; last round: "
              f"{s['batches'] - 1} forward batches, largest {s['largest_batch']})")
    same = answers["concurrent, batched"] == answers["sequential"]
    print(f"  batched answers identical to sequential: {'yes' if same else 'NO'}")
    print(f"  ratio batched / sequential: {best['sequential'] / best['concurrent, batched']:5.2f}x (target 3x); "
          f"batched / concurrent without batching: "
          f"{best['concurrent, batching off'] / best['concurrent, batched']:5.2f}x")


if __name__ == "__main__":
    main()

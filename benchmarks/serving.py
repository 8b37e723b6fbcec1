"""API serving: throughput and latency of continuous batching vs static batching vs one request at a time.

The server runs in this process on 127.0.0.1 with the debug model (or `--recipe llava15`: the packaged parts,
or `--checkpoint DIR`). For 16 and 64 concurrent clients (`--clients`), each client sends `--per-client`
greedy requests back to back, with mixed prompts (short and long, half with an image) and mixed answer
lengths (`max_tokens` from 8 to 64). Three servers answer the same requests, each measured in this run (the
fastest of `--rounds` rounds, the modes taking turns):

1. one at a time: `--max-batch-size 1`;
2. static batching (the policy before continuous batching): a batch of requests with equal options starts when
   the previous batch has finished, after waiting up to 20 ms to fill;
3. continuous batching (vlit's default): a request joins the running batch at the next decoding step.

Both batching servers run on the same decoding engine, so their ratio is the scheduling policy's. Printed: requests/s,
generated tokens/s and p50/p99 latency per mode, the ratios against static batching (target: continuous >= 1.5x),
p99 at 16 clients against a lone request's (target: within 3x), whether every mode's answers equal the
one-at-a-time answers, and what prefix caching saves on a conversation's second turn. On a shared or small
machine pass `--threads 1`: torch's threads spin against other processes (a step took 10x longer with 2).

`--before DIR` measures a fourth: the static batcher of the code before continuous batching (a source tree,
e.g. `git worktree add DIR 3e6df00`), run as a child process on the same requests.

    python benchmarks/serving.py [--clients 16 64] [--per-client 2] [--threads 1] [--before DIR]
                                 [--recipe llava15 | --checkpoint DIR]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import torch
from PIL import Image

from vlit.config import Config, load_yaml
from vlit.data.conversation import Conversation
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.models.build import build_model
from vlit.serving.api import create_app
from vlit.serving.background import serve_in_background
from vlit.serving.settings import ServerSettings

TOPICS = ["the sea", "a mountain village in winter", "bread", "the history of clocks and the people who made them",
          "cats", "a long train journey across a continent at night", "rain", "the first day at a new school"]
ANSWER_LENGTHS = (8, 16, 32, 64)


def _data_uri(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def bodies(n: int, seed: int = 0) -> list[dict]:
    """`n` greedy requests of mixed prompt and answer lengths, half with an image."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = f"Tell me about {TOPICS[i % len(TOPICS)]}." + " Please be thorough and clear." * rng.choice((0, 2, 8))
        content = text if i % 2 == 0 else [{"type": "image_url", "image_url": {"url": _data_uri(i % 8)}},
                                           {"type": "text", "text": text}]
        out.append({"model": "bench", "messages": [{"role": "user", "content": content}],
                    "max_tokens": rng.choice(ANSWER_LENGTHS), "temperature": 0})
    return out


def _send(client: httpx.Client, body: dict) -> tuple[str, int, float]:
    """(answer, generated tokens, seconds)."""
    start = time.perf_counter()
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    seconds = time.perf_counter() - start
    out = response.json()
    return out["choices"][0]["message"]["content"], out["usage"]["completion_tokens"], seconds


@dataclasses.dataclass
class Run:
    seconds: float
    answers: list[str]
    tokens: int
    latencies: list[float]

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q))


def run(pipe: Pipeline, settings: ServerSettings, work: list[dict], clients: int) -> Run:
    """`clients` threads, each sending its share of `work` back to back; all requests timed."""
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)
    shares = [work[i::clients] for i in range(clients)]
    with serve_in_background(create_app(pipe, settings)) as url, \
            httpx.Client(base_url=url, timeout=1200, limits=limits) as client:
        _send(client, {**work[1], "max_tokens": 4})  # warm-up: first-call allocations
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda share: [_send(client, b) for b in share], shares))
        seconds = time.perf_counter() - start
    answers: list[str] = [""] * len(work)
    for i, share in enumerate(results):
        for j, (answer, _, _) in enumerate(share):
            answers[i + j * clients] = answer
    flat = [r for share in results for r in share]
    return Run(seconds, answers, sum(t for _, t, _ in flat), [s for _, _, s in flat])


def second_turn(pipe: Pipeline, rounds: int) -> tuple[float, float, int, int]:
    """Seconds to prefill a conversation's second turn (an image, a long first question, the answer, a short
    follow-up) from the first turn's KV cache vs from nothing, best of `rounds`; the prompt's tokens and how many
    of them came from the cache. Measured on the engine: over HTTP the tiny debug model's answer costs less than
    the request around it."""
    from vlit.inference.engine import Engine, Sequence

    first = Conversation.single("Tell me about the sea." + " Please be thorough and clear." * 40,
                                image=Image.fromarray(np.random.default_rng(7).integers(0, 256, (96, 128, 3),
                                                                                       dtype=np.uint8)))
    options = GenerationOptions(max_new_tokens=64)
    times: dict[bool, float] = {}
    cached = 0
    for keep in (True, False):
        for _ in range(rounds):
            engine = Engine(pipe, 1, 8 if keep else 0)
            answer = Sequence(pipe.encode(first), options)
            engine.join(answer)
            while len(engine):
                engine.step()
            second = Sequence(pipe.encode(first.add("assistant", answer.text).add("user", "And then?")), options)
            start = time.perf_counter()
            engine.join(second)
            engine.step()  # the first token: prefill done
            times[keep] = min(times.get(keep, float("inf")), time.perf_counter() - start)
            cached = max(cached, second.cached_tokens)
    return times[True], times[False], len(second.example), cached


def before(args: argparse.Namespace, clients: int) -> Run:
    """Static batching as the code in `--before` (a vlit source tree from before continuous batching) serves it:
    this script run again on that code, in a child process, for the same requests."""
    command = [sys.executable, __file__, "--worker", str(clients), "--per-client", str(args.per_client),
               "--recipe", args.recipe, *(["--checkpoint", args.checkpoint] if args.checkpoint else []),
               *(["--threads", str(args.threads)] if args.threads else [])]
    env = {**os.environ, "PYTHONPATH": str(os.path.join(args.before, "src"))}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return Run(**json.loads(out.stdout.strip().splitlines()[-1]))


def load(args: argparse.Namespace) -> tuple[Pipeline, str]:
    if args.checkpoint:
        return Pipeline.from_pretrained(args.checkpoint), str(args.checkpoint)
    cfg = load_yaml(Config, args.recipe).model
    return Pipeline(*build_model(dataclasses.replace(cfg, lora=None))), f"the {args.recipe} recipe's model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--per-client", type=int, default=2, help="requests each client sends back to back")
    parser.add_argument("--rounds", type=int, default=2, help="each mode's fastest round is reported")
    parser.add_argument("--recipe", default="debug", help="build this recipe's model (debug, llava15, ...)")
    parser.add_argument("--checkpoint", help="serve this checkpoint folder instead")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--before", help="a vlit source tree from before continuous batching (e.g. `git worktree "
                                         "add /tmp/before 3e6df00`): its static batching is measured too")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # `before`'s child: static batching
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe, name = load(args)
    base = {"model_name": "bench", "max_tokens_limit": 256, "max_queue": 4 * max(args.clients) * args.per_client}
    if args.worker:  # the code before: no static_batching setting, its batcher was static
        settings = ServerSettings(**base, max_batch_size=args.worker, batch_wait_ms=20)
        print(json.dumps(dataclasses.asdict(run(pipe, settings, bodies(args.worker * args.per_client), args.worker))))
        return
    print(f"serving: {name}; greedy requests, max_tokens from {ANSWER_LENGTHS}, half with an image; "
          f"{args.per_client} requests per client; torch threads {torch.get_num_threads()}; each mode's fastest "
          f"of {args.rounds} rounds")
    lone: Run | None = None
    for clients in args.clients:
        work = bodies(clients * args.per_client)
        modes = {"one at a time": ServerSettings(**base, max_batch_size=1),
                 "static batching": ServerSettings(**base, max_batch_size=clients, static_batching=True,
                                                   batch_wait_ms=20),
                 "continuous batching": ServerSettings(**base, max_batch_size=clients)}
        if lone is None:
            lone = run(pipe, modes["continuous batching"], work, 1)
            print(f"  a lone request (one client, idle server): p50 {lone.percentile(50):.3f} s, "
                  f"p99 {lone.percentile(99):.3f} s")
        runs: dict[str, Run] = {}
        for _ in range(args.rounds):  # modes take turns, so drift in the machine's load touches all alike
            measured = {mode: run(pipe, settings, work, clients) for mode, settings in modes.items()}
            if args.before:
                measured["static, code before"] = before(args, clients)
            runs = {m: r if m not in runs or r.seconds < runs[m].seconds else runs[m] for m, r in measured.items()}
        print(f"{clients} concurrent clients, {len(work)} requests:")
        for mode, r in runs.items():
            print(f"  {mode:<20} {len(work) / r.seconds:7.2f} requests/s {r.tokens / r.seconds:8.1f} tokens/s   "
                  f"latency p50 {r.percentile(50):6.3f} s  p99 {r.percentile(99):6.3f} s")
        static, continuous = runs["static batching"], runs["continuous batching"]
        same = all(r.answers == runs["one at a time"].answers for r in runs.values())
        print(f"  throughput continuous / static: {static.seconds / continuous.seconds:5.2f}x (target 1.5x); "
              f"continuous / one at a time: {runs['one at a time'].seconds / continuous.seconds:5.2f}x")
        if args.before:
            print(f"  throughput continuous / the code before: "
                  f"{runs['static, code before'].seconds / continuous.seconds:5.2f}x")
        print(f"  p99 latency continuous / static: {continuous.percentile(99) / static.percentile(99):5.2f}x; "
              f"p99 continuous / a lone request's p99: {continuous.percentile(99) / lone.percentile(99):5.2f}x "
              f"(target at 16 clients: within 3x)")
        print(f"  every mode's answers equal the one-at-a-time answers: {'yes' if same else 'NO'}")
    kept, fresh, length, cached = second_turn(pipe, 5)
    print(f"a conversation's second turn ({length} prompt tokens, {cached} of them cached), prefill and first "
          f"token: {1000 * kept:.1f} ms from the first turn's KV cache, {1000 * fresh:.1f} ms without: "
          f"{kept / fresh:.2f}x")


if __name__ == "__main__":
    main()

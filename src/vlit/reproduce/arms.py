"""One arm with one seed: train its recipe (resuming an interrupted run), then score it sample by sample on
what the claims ask, into `<out>/arms/<recipe>/seed-<seed>/scores.json`. A finished arm-seed is never trained
or scored again; a claim asking for a score it lacks gets only that score added.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vlit.config import Config, load_yaml
from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.evaluation.benchmarks import BenchmarkConfig, quickstart_benchmarks
from vlit.evaluation.metrics import sample_scores
from vlit.evaluation.runner import predict_benchmark
from vlit.reproduce.claims import HELD_IN

OPEN_QUESTION = "What do you see in this picture?"
"""The long request of claim response-format: a natural question, in neither arm's training prompts."""
LENGTH_KEYS = {"words:open": ("scenes_caption", OPEN_QUESTION), "words:short": ("scenes_vqa", None)}
"""Answer-length scores: key -> (the test split whose images and questions are asked, the question that
replaces the split's own; None: the split's questions as the arm's style asks them)."""

Scores = dict[str, dict[str, float]]
"""score key -> sample id -> score."""


@dataclass(frozen=True)
class Budget:
    """What a run spends. The default fits the full run (6 claims, 3 seeds) in 90 minutes on 2 CPU cores;
    `QUICK` runs the same code path in a few minutes."""

    steps: int | None = None
    """Every stage this many steps (None: the recipe's)."""
    eval_samples: int = 16
    """Test samples scored per split (the first ones of each split: the same samples for every arm and seed)."""
    curve_samples: int = 6
    """Samples per held-in split at each checkpoint of a curve."""
    length_samples: int = 12
    """Requests per answer-length score."""
    scale: float = 1.0
    """Size of the quickstart build (its row-count multiplier)."""
    max_new_tokens: int | None = None
    """Cap on every answer's tokens (None: each split's own, 16 for short answers, 64 for an open question). An
    untrained model talks to the cap; the quick run caps it low."""
    resamples: int = 2000


DEFAULT = Budget()
QUICK = Budget(steps=2, eval_samples=2, curve_samples=2, length_samples=2, scale=0.05, max_new_tokens=4,
               resamples=200)


def arm_folder(out: Path, recipe: str, seed: int) -> Path:
    return out / "arms" / Path(recipe).name / f"seed-{seed}"


def arm_config(recipe: str, seed: int, data: Path, budget: Budget) -> Config:
    """The recipe on the built data with `seed` (its weights' init and its data order), shortened to `budget`."""
    overrides = [f"data.root={data}", "data.build=null", f"train.seed={seed}", f"model.seed={seed}"]
    if budget.steps is not None:
        base = load_yaml(Config, recipe)
        overrides += [f"stages.{i}.steps={budget.steps}" for i in range(len(base.stages))]
        overrides += ["train.log_every=1"]
        if base.train.save_every:  # the curve still gets a point per step
            overrides += ["train.save_every=1", f"train.keep_last={budget.steps * len(base.stages) + 1}"]
    return load_yaml(Config, recipe, overrides)


def train_arm(cfg: Config, folder: Path) -> float:
    """Train unless done (resuming from the last checkpoint); the seconds the (last) training took."""
    from vlit.training.loop import Trainer

    done = folder / "trained.json"
    if done.exists():
        return json.loads(done.read_text())["seconds"]
    start = time.perf_counter()
    Trainer(cfg, folder).run(resume=(folder / "checkpoints").exists())
    seconds = time.perf_counter() - start
    done.write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
    return seconds


def score_arm(folder: Path, keys: set[str], data: Path, budget: Budget, curves: int | None) -> dict:
    """The arm-seed's `scores.json` ({"scores": Scores, "curves": {split: {step: mean}}, "seconds": ..}), with
    every key of `keys` (and, when `curves` is a step, the held-in curves over the checkpoints after that step)
    scored now if missing. The
    checkpoints are deleted then: a Q-Former's with its optimizer moments is 430 MB, and nothing else reads
    them once the training is done."""
    from vlit.inference.pipeline import Pipeline

    path = folder / "scores.json"
    state = json.loads(path.read_text()) if path.exists() else {"scores": {}, "curves": {}, "seconds": {}}
    missing = sorted(keys - set(state["scores"]))
    want_curves = curves is not None and not state["curves"]
    if missing or want_curves:
        start = time.perf_counter()
        benches = {b.name: b for b in quickstart_benchmarks(data, max_samples=budget.eval_samples)}
        if budget.max_new_tokens is not None:
            benches = {k: dataclasses.replace(b, max_new_tokens=min(b.max_new_tokens, budget.max_new_tokens))
                       for k, b in benches.items()}
        if missing:
            pipe = Pipeline.from_pretrained(folder / "model")
            for key in missing:
                state["scores"][key] = (_lengths(pipe, key, benches, budget, folder) if key in LENGTH_KEYS
                                        else _scores(pipe, "model", benches[key], folder / "eval"))
        if want_curves:
            state["curves"] = _curves(folder, benches, budget, curves)
        state["seconds"]["eval"] = round(state["seconds"].get("eval", 0) + time.perf_counter() - start, 1)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(path)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    return state


def _scores(pipe, label: str, bench: BenchmarkConfig, folder: Path) -> dict[str, float]:
    samples, predictions = predict_benchmark(pipe, label, bench, folder)
    return dict(zip((s.id for s in samples), sample_scores(predictions, samples), strict=True))


def _lengths(pipe, key: str, benches: dict[str, BenchmarkConfig], budget: Budget, folder: Path) -> dict[str, float]:
    """Words per answer to the requests of `LENGTH_KEYS[key]`; the answers go to `eval/<key>.jsonl`."""
    from vlit.evaluation.benchmarks import load_samples

    split, question = LENGTH_KEYS[key]
    bench = dataclasses.replace(benches[split], max_samples=budget.length_samples)
    samples = load_samples(bench, pipe.model.config.prompt_style, frame=pipe.processor.image_spec)
    convs = [s.conversation if question is None else
             Conversation([Turn("user", f"{IMAGE_TOKEN}\n{question}")], s.conversation.images, s.id)
             for s in samples]
    answers = []
    for i in range(0, len(convs), 8):
        answers += pipe.generate(convs[i: i + 8], max_new_tokens=min(64, budget.max_new_tokens or 64))
    (folder / "eval").mkdir(parents=True, exist_ok=True)
    with (folder / "eval" / f"{key.replace(':', '-')}.jsonl").open("w") as f:
        for conv, answer in zip(convs, answers, strict=True):
            f.write(json.dumps({"id": conv.id, "prompt": conv.turns[-1].content, "answer": answer}) + "\n")
    return {conv.id: float(len(answer.split())) for conv, answer in zip(convs, answers, strict=True)}


def _curves(folder: Path, benches: dict[str, BenchmarkConfig], budget: Budget,
            after: int) -> dict[str, dict[str, float]]:
    """Held-in split -> global step -> mean score on the first `curve_samples` samples, at every checkpoint
    after step `after`."""
    from vlit.inference.pipeline import Pipeline
    from vlit.training.checkpoint import PREFIX

    checkpoints = sorted((int(p.name.removeprefix(PREFIX)), p) for p in (folder / "checkpoints").glob(f"{PREFIX}*")
                         if (p / "model").is_dir() and int(p.name.removeprefix(PREFIX)) > after)
    curves: dict[str, dict[str, float]] = {name: {} for name in HELD_IN}
    for step, checkpoint in checkpoints:
        pipe = Pipeline.from_pretrained(checkpoint / "model")
        for name in HELD_IN:
            bench = dataclasses.replace(benches[name], max_samples=budget.curve_samples)
            values = _scores(pipe, checkpoint.name, bench, folder / "curves")
            curves[name][str(step)] = sum(values.values()) / len(values)
    return curves

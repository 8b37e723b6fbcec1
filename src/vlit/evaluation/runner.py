"""Run benchmarks on checkpoints: batched inference with progress, predictions appended as JSONL (so an
interrupted run continues where it stopped), metrics as JSON, and the comparison table."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from vlit.config.data import PromptStyle as DatasetStyle
from vlit.data.prompting.styles import LETTERS, PromptStyle, get_style
from vlit.evaluation.benchmarks import BenchmarkConfig, load_samples
from vlit.evaluation.metrics import metric_for, metric_spec
from vlit.evaluation.samples import EvalSample
from vlit.inference.pipeline import Pipeline

log = logging.getLogger(__name__)

@dataclass
class Result:
    checkpoint: str
    benchmark: str
    split: str
    task: str
    metrics: dict[str, float]
    count: int

    @property
    def primary(self) -> float | None:
        """The headline number; None where nothing could be scored (a test split whose answers only its
        evaluation server holds: the suite wrote the file to upload instead)."""
        return self.metrics.get(metric_spec(self.task).headline)


def _read_done(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut short by an interruption: everything before it is good
        done[str(row["id"])] = row["prediction"]
    return done


def _answer(pipe: Pipeline, bench: BenchmarkConfig, batch: list[EvalSample], style: PromptStyle) -> list[str]:
    convs = [s.conversation for s in batch]
    if bench.mode == "rank" and batch[0].task in ("multiple_choice", "classification") and batch[0].candidates:
        answers = []
        for sample in batch:
            if sample.task == "multiple_choice" and style.choice_answer == "letter":
                # The style asks for the option's letter: restrict the answer to the option letters.
                letters = tuple(LETTERS[: len(sample.candidates)])
                answers.append(pipe.rank_letters(sample.conversation, letters).best)
            else:
                best = pipe.rank(sample.conversation, list(sample.candidates)).best
                answers.append(LETTERS[sample.candidates.index(best)] if sample.task == "multiple_choice" else best)
        return answers
    return pipe.generate(convs, max_new_tokens=bench.max_new_tokens)


def run_benchmark(pipe: Pipeline, label: str, bench: BenchmarkConfig, out: Path, batch_size: int = 8,
                  style: DatasetStyle | None = None) -> list[Result]:
    """Predict (resuming any earlier partial run) and score one benchmark; returns a result per task.

    The questions are asked in `style` (`--style`), else the benchmark's own, else (`auto`) the style the
    model expects (`ModelConfig.prompt_style`). Answers are read back by that style; with `as_is` (a file's
    own prompts) by the model's."""
    style = style or (pipe.model.config.prompt_style if bench.style == "auto" else bench.style)
    frame = pipe.processor.image_spec
    samples = load_samples(bench, style, frame=frame)
    reader = get_style(pipe.model.config.prompt_style if style == "as_is" else style)
    for sample in samples:
        if sample.task == "refer" and frame.resize != "stretch":
            sample.meta["frame"] = frame  # the model names boxes on its padded or cropped square
    folder = out / label
    folder.mkdir(parents=True, exist_ok=True)
    pred_path = folder / f"{bench.name}.predictions.jsonl"
    done = _read_done(pred_path)
    todo = [s for s in samples if s.id not in done]
    if done:
        # Rewrite the complete lines only, dropping a line an interruption cut short.
        pred_path.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in done.items()))
    with pred_path.open("a") as f, tqdm(total=len(samples), initial=len(samples) - len(todo),
                                        desc=f"{label}: {bench.name}", dynamic_ncols=True) as bar:
        for i in range(0, len(todo), batch_size):
            batch = todo[i: i + batch_size]
            for sample, answer in zip(batch, _answer(pipe, bench, batch, reader), strict=True):
                done[sample.id] = answer
                f.write(json.dumps({"id": sample.id, "prediction": answer}, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    return score(label, bench, samples, [done[s.id] for s in samples], folder)


def score(label: str, bench: BenchmarkConfig, samples: list[EvalSample], predictions: list[str],
          folder: Path) -> list[Result]:
    """Score predictions (in sample order) and write `<benchmark>.metrics.json`: one result per task, or for
    one of the papers' benchmarks one result by its reference script's metric."""
    suite = bench.suite
    groups = {suite.metric: list(range(len(samples)))} if suite else {}
    for i, sample in enumerate(samples if not suite else []):
        groups.setdefault(sample.task, []).append(i)
    results = []
    for metric, indices in groups.items():
        subset = [samples[i] for i in indices]
        metrics = metric_for(metric)([predictions[i] for i in indices], subset)
        results.append(Result(label, bench.name, bench.split, metric, metrics, len(subset)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{bench.name}.metrics.json").write_text(json.dumps(
        {r.task: {"count": r.count, "split": r.split, **r.metrics} for r in results}, indent=2) + "\n")
    if suite and suite.submission:
        suite.submission(samples, predictions, folder)
    return results


def score_predictions(label: str, bench: BenchmarkConfig, path: Path, out: Path) -> list[Result]:
    """Score answers produced elsewhere (`read_predictions`): no model runs. Questions are read in the style
    LLaVA's files are written in (as is), which is also how the answers were asked."""
    from vlit.evaluation.predictions import read_predictions

    style = bench.style if bench.style != "auto" else "llava15"
    samples = load_samples(bench, style)
    return score(label, bench, samples, read_predictions(path, samples), out / label)


def evaluate(checkpoints: dict[str, Path | Pipeline], benchmarks: list[BenchmarkConfig], out: Path,
             batch_size: int = 8, style: DatasetStyle | None = None) -> list[Result]:
    """Every benchmark on every checkpoint (label -> folder or a loaded Pipeline)."""
    results = []
    for label, source in checkpoints.items():
        pipe = source if isinstance(source, Pipeline) else Pipeline.from_pretrained(source)
        for bench in benchmarks:
            results += run_benchmark(pipe, label, bench, out, batch_size, style)
    return results

"""Run benchmarks on checkpoints: batched inference with progress, predictions appended as JSONL (so an
interrupted run continues where it stopped), metrics as JSON, and the comparison table."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from vlit.config.data import PromptStyle as DatasetStyle
from vlit.data.prompting.styles import LETTERS, PromptStyle, get_style
from vlit.evaluation.benchmarks import BenchmarkConfig, load_samples
from vlit.evaluation.intervals import mean_interval
from vlit.evaluation.judge import Judge, JudgeLog
from vlit.evaluation.metrics import metric_for, metric_spec
from vlit.evaluation.samples import EvalSample, Samples
from vlit.evaluation.suites.base import Unscored
from vlit.inference.pipeline import Pipeline
from vlit.inference.ranking import RankResult

log = logging.getLogger(__name__)

@dataclass
class Result:
    checkpoint: str
    benchmark: str
    split: str
    task: str
    metrics: dict[str, float]
    count: int
    published: dict[str, float] = field(default_factory=dict)
    """The benchmark's published numbers by model (`Suite.published`), for the report's rows beside this one."""
    skipped_rows: int = 0
    """Bad rows of the benchmark's files, named and skipped (`vlit.evaluation.badrows`)."""
    unscored: str | None = None
    """Why the predictions were written but not scored (an open-ended set without a judge)."""
    judge: str | None = None
    """The judge model that scored it, for open-ended sets."""
    interval: tuple[float, float] | None = None
    """95% interval of `primary` (same units), for a headline that is a mean over samples (`MetricSpec.per_sample`)."""

    @property
    def primary(self) -> float | None:
        """The headline metric as computed (a fraction for most); None when unscored: an open set without a
        judge, or a test split whose answers only its evaluation server holds (the suite wrote the file to
        upload instead)."""
        return None if self.unscored else self.metrics.get(metric_spec(self.task).headline)

    @property
    def shown(self) -> float | None:
        """The headline as the papers print it (x 100; MME's sum as is)."""
        return None if self.primary is None else self.primary * metric_spec(self.task).scale


Answer = tuple[str, dict[str, float] | None]
"""A prediction and, when it was ranked, every candidate's score (log-likelihood) by candidate."""


def _read_done(path: Path) -> dict[str, Answer]:
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut short by an interruption: everything before it is good
        done[str(row["id"])] = (row["prediction"], row.get("scores"))
    return done


def _line(sample_id: str, answer: Answer) -> str:
    prediction, scores = answer
    row = {"id": sample_id, "prediction": prediction} | ({"scores": scores} if scores is not None else {})
    return json.dumps(row, ensure_ascii=False) + "\n"


def _answer(pipe: Pipeline, mode: str, bench: BenchmarkConfig, batch: list[EvalSample],
            style: PromptStyle) -> list[Answer]:
    convs = [s.conversation for s in batch]
    if mode == "rank" and batch[0].task in ("multiple_choice", "classification") and batch[0].candidates:
        # A benchmark's samples share a task and a style: all by letter, or all by their candidate answers.
        if batch[0].task == "multiple_choice" and style.choice_answer == "letter":
            # The style asks for the option's letter: restrict the answer to the option letters.
            groups: dict[int, list[int]] = {}
            for i, sample in enumerate(batch):
                groups.setdefault(len(sample.candidates), []).append(i)
            results: dict[int, RankResult] = {}
            for count, rows in groups.items():
                ranked = pipe.rank_letters_many([batch[i].conversation for i in rows], tuple(LETTERS[:count]))
                results |= dict(zip(rows, ranked, strict=True))
            bests = [results[i].best for i in range(len(batch))]
            ranked_all = [results[i] for i in range(len(batch))]
        else:
            ranked_all = pipe.rank_many(convs, [list(s.candidates) for s in batch])
            bests = [LETTERS[s.candidates.index(r.best)] if s.task == "multiple_choice" else r.best
                     for s, r in zip(batch, ranked_all, strict=True)]
        # Scores are kept: a ranked benchmark's metric may read them (HatefulMemes' ROC-AUC).
        return [(best, dict(zip(r.candidates, r.scores, strict=True)))
                for best, r in zip(bests, ranked_all, strict=True)]
    return [(text, None) for text in pipe.generate(convs, max_new_tokens=bench.max_new_tokens)]


def attach_scores(samples: list[EvalSample], scores: dict[str, dict[str, float] | None]) -> None:
    """Candidate scores of ranked answers into `meta["scores"]` of their samples (by sample id), where metrics
    that need more than the chosen answer read them."""
    for sample in samples:
        if scores.get(sample.id) is not None:
            sample.meta["scores"] = scores[sample.id]


def run_benchmark(pipe: Pipeline, label: str, bench: BenchmarkConfig, out: Path, batch_size: int = 8,
                  style: DatasetStyle | None = None, judge: Judge | None = None) -> list[Result]:
    """Predict (resuming any earlier partial run) and score one benchmark; returns a result per task.

    The questions are asked in `style` (`--style`), else the benchmark's own, else (`auto`) the style the
    model expects (`ModelConfig.prompt_style`). Answers are read back by that style; with `as_is` (a file's
    own prompts) by the model's."""
    samples, predictions = predict_benchmark(pipe, label, bench, out, batch_size, style)
    return score(label, bench, samples, predictions, out / label, judge)


def predict_benchmark(pipe: Pipeline, label: str, bench: BenchmarkConfig, out: Path, batch_size: int = 8,
                      style: DatasetStyle | None = None) -> tuple[Samples, list[str]]:
    """The benchmark's samples and the model's answers in sample order, asked as `run_benchmark` says; answers
    are appended to `out/label/<benchmark>.predictions.jsonl`, and those already there are reused."""
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
        pred_path.write_text("".join(_line(k, v) for k, v in done.items()))
    mode = bench.answer_mode(style)
    with pred_path.open("a") as f, tqdm(total=len(samples), initial=len(samples) - len(todo),
                                        desc=f"{label}: {bench.name}", dynamic_ncols=True) as bar:
        for i in range(0, len(todo), batch_size):
            batch = todo[i: i + batch_size]
            for sample, answer in zip(batch, _answer(pipe, mode, bench, batch, reader), strict=True):
                done[sample.id] = answer
                f.write(_line(sample.id, answer))
            f.flush()
            bar.update(len(batch))
    attach_scores(samples, {s.id: done[s.id][1] for s in samples})
    return samples, [done[s.id][0] for s in samples]


def score(label: str, bench: BenchmarkConfig, samples: list[EvalSample], predictions: list[str],
          folder: Path, judge: Judge | None = None) -> list[Result]:
    """Score predictions (in sample order) and write `<benchmark>.metrics.json`: one result per task, or for
    one of the papers' benchmarks one result by its reference script's metric; an open-ended benchmark by the
    `judge` (unscored without one). `skipped_rows` counts the bad rows named while reading (`Samples`)."""
    suite = bench.suite
    extra = {"published": dict(suite.published) if suite else {},
             "skipped_rows": len(samples.skipped) if isinstance(samples, Samples) else 0}
    if suite and suite.judged:
        results = [_judged(label, bench, samples, predictions, folder, judge, extra)]
    else:
        groups = {suite.metric: list(range(len(samples)))} if suite else {}
        for i, sample in enumerate(samples if not suite else []):
            groups.setdefault(sample.task, []).append(i)
        results = []
        for metric, indices in groups.items():
            subset = [samples[i] for i in indices]
            if metric_spec(metric).score is None:
                results.append(Result(label, bench.name, bench.split, metric, {}, len(subset), **extra,
                                      unscored="free answers: no metric scores them"))
                continue
            answers = [predictions[i] for i in indices]
            metrics = metric_for(metric)(answers, subset)
            per_sample = metric_spec(metric).sample_scores(answers, subset)
            results.append(Result(label, bench.name, bench.split, metric, metrics, len(subset), **extra,
                                  interval=mean_interval(per_sample) if per_sample else None))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{bench.name}.metrics.json").write_text(json.dumps({r.task: _entry(r) for r in results}, indent=2)
                                                       + "\n")
    if suite and suite.submission:
        suite.submission(samples, predictions, folder)
    return results


def _judged(label: str, bench: BenchmarkConfig, samples: list[EvalSample], predictions: list[str], folder: Path,
            judge: Judge | None, extra: dict) -> Result:
    suite = bench.suite
    result = Result(label, bench.name, bench.split, suite.metric, {}, len(samples), **extra)
    if judge is None:
        result.unscored = "no judge model (vlit eval --judge-url URL --judge-model NAME)"
    else:
        try:
            ask = JudgeLog(judge, folder / f"{bench.name}.judge.jsonl").ask
            result.metrics = suite.judged(predictions, samples, ask)
            result.judge = judge.model
        except Unscored as e:
            result.unscored = str(e)
    if result.unscored:
        log.warning("%s: predictions written, unscored: %s", bench.name, result.unscored)
    return result


def _entry(r: Result) -> dict:
    """A result's entry of `<benchmark>.metrics.json`."""
    entry: dict = {"count": r.count, "split": r.split, "skipped_rows": r.skipped_rows}
    if r.unscored:
        entry["unscored"] = r.unscored
    if r.judge:
        entry["judge"] = r.judge
    if r.interval:
        entry["interval_95"] = list(r.interval)
    return entry | r.metrics


def score_predictions(label: str, bench: BenchmarkConfig, path: Path, out: Path,
                      judge: Judge | None = None) -> list[Result]:
    """Score answers produced elsewhere (`read_predictions`): no model runs. Questions are read in the style
    LLaVA's files are written in (as is), which is also how the answers were asked."""
    from vlit.evaluation.predictions import read_predictions, read_scores

    style = bench.style if bench.style != "auto" else "llava15"
    samples = load_samples(bench, style)
    predictions = read_predictions(path, samples)
    attach_scores(samples, read_scores(path))
    return score(label, bench, samples, predictions, out / label, judge)


def evaluate(checkpoints: dict[str, Path | Pipeline], benchmarks: list[BenchmarkConfig], out: Path,
             batch_size: int = 8, style: DatasetStyle | None = None, judge: Judge | None = None) -> list[Result]:
    """Every benchmark on every checkpoint (label -> folder or a loaded Pipeline)."""
    results = []
    for label, source in checkpoints.items():
        pipe = source if isinstance(source, Pipeline) else Pipeline.from_pretrained(source)
        for bench in benchmarks:
            results += run_benchmark(pipe, label, bench, out, batch_size, style, judge)
    return results

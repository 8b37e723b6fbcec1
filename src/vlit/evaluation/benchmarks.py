"""A benchmark is data: which file in which public format, its image root, the prompt style, how answers are
produced (generated, or ranked among candidates) and whether it is held in or held out.

`resolve_benchmarks` turns what a user types after `--benchmarks` into these configs: a YAML file of them,
a built quickstart folder (every dataset of its manifest), or a single vlit dataset / LLaVA question file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import yaml

from vlit.config import ConfigError, from_dict
from vlit.config.data import PromptStyle
from vlit.config.loader import load_text
from vlit.config.model import PaperStyle, StyleName
from vlit.data.loading.transforms import ImageSpec
from vlit.data.prompting.tasks import SCORABLE_TYPES, task_spec
from vlit.data.reading.fields import read_json
from vlit.data.reading.files import read_text
from vlit.data.reading.rows import iter_raw_rows
from vlit.errors import VlitError
from vlit.evaluation.badrows import collecting_bad_rows
from vlit.evaluation.samples import EvalSample, EvalTask, Samples

Format = str
"""A generic format of `READERS` (vlit, llava_questions, refexp, coco_captions) or the name of one of the
papers' benchmarks (`vlit.evaluation.suites.SUITES`: pope, mme, gqa, vqav2, scienceqa, mmbench, ...)."""


@dataclass
class BenchmarkConfig:
    """One benchmark. `style: auto` asks each checkpoint in the prompt style it was trained with."""

    name: str
    format: Format
    path: str
    annotations: str | None = None
    """VQAv2 annotations file, or a LLaVA answers file for `llava_questions`."""
    image_root: str | None = None
    style: PromptStyle | Literal["auto"] = "auto"
    mode: Literal["generate", "rank", "auto"] = "auto"
    """`rank`: InstructBLIP's constrained answers for multiple choice and classification (candidates are
    scored by likelihood); other tasks always generate. `auto`: as the papers answer one of their benchmarks in
    the style asked (`Suite.mode_for`), else generate."""
    task: EvalTask | None = None
    """The task of a `llava_questions` file (default vqa)."""
    split: Literal["held_in", "held_out"] = "held_out"
    max_samples: int | None = None
    max_new_tokens: int = 32
    types: list[str] = field(default_factory=list)
    """vlit datasets: only rows of these task types (default: every type a metric scores, `SCORABLE_TYPES`)."""

    def __post_init__(self) -> None:
        from vlit.evaluation.suites import SUITES

        if self.format not in READERS and self.format not in SUITES:
            raise ConfigError(f"format: {self.format!r} is not a benchmark vlit reads (benchmarks: "
                              f"{', '.join(SUITES)}; formats: {', '.join(READERS)})")

    def answer_mode(self, style: str) -> Literal["generate", "rank"]:
        """How answers are produced when the benchmark is asked in `style` (see `mode`)."""
        if self.mode != "auto":
            return self.mode
        return self.suite.mode_for(style) if self.suite else "generate"

    @property
    def suite(self):
        """The papers' benchmark this is (`SUITES`), or None for a generic format."""
        from vlit.evaluation.suites import suite_of

        return suite_of(self.format)


Reader = Callable[["BenchmarkConfig", PromptStyle, StyleName, int, "ImageSpec | None"], list[EvalSample]]
"""(benchmark, style, the style to render in, seed, frame) -> samples: one per format in `READERS`."""


def _vlit(bench: BenchmarkConfig, style: PromptStyle, render: StyleName, seed: int,
          frame: ImageSpec | None) -> list[EvalSample]:
    from vlit.evaluation.loaders import load_vlit_dataset

    return load_vlit_dataset(bench.path, bench.image_root, style, bench.types or SCORABLE_TYPES, seed, frame)


def _llava_questions(bench: BenchmarkConfig, style: PromptStyle, render: StyleName, seed: int,
                     frame: ImageSpec | None) -> list[EvalSample]:
    from vlit.evaluation.loaders import load_llava_questions

    # LLaVA's question files hold the whole prompt already: asked as written, whatever the style.
    return load_llava_questions(bench.path, bench.image_root, bench.annotations, bench.task or "vqa")




def _refexp(bench: BenchmarkConfig, style: PromptStyle, render: StyleName, seed: int,
            frame: ImageSpec | None) -> list[EvalSample]:
    from vlit.evaluation.coco import load_refexp

    return load_refexp(bench.path, bench.image_root, style=render)


def _coco_captions(bench: BenchmarkConfig, style: PromptStyle, render: StyleName, seed: int,
                   frame: ImageSpec | None) -> list[EvalSample]:
    from vlit.evaluation.coco import load_coco_captions

    return load_coco_captions(bench.path, bench.image_root, render)


READERS: dict[str, Reader] = {"vlit": _vlit, "llava_questions": _llava_questions,
                              "refexp": _refexp, "coco_captions": _coco_captions}
"""Each benchmark format (`Format`) and the reader of its files: a new format is one reader and one entry."""


def load_samples(bench: BenchmarkConfig, style: PromptStyle, seed: int = 0,
                 frame: ImageSpec | None = None) -> Samples:
    """The benchmark's samples in `style` (already resolved from `auto`); boxes in questions are named in
    `frame`, the model's image input (None: on the original image). A bad row of the benchmark's files is
    named in a warning and skipped (`Samples.skipped`), where its reader parses rows through
    `vlit.evaluation.badrows`; a file that cannot be read at all still raises."""
    render: StyleName = "llava15" if style == "as_is" else style
    if bench.suite is not None and render not in get_args(PaperStyle):
        raise VlitError(f"{bench.name}: the papers' benchmarks are asked in {', '.join(get_args(PaperStyle))}, "
                        f"not {render!r} (an ablation's style); choose one with --style")
    reader = READERS.get(bench.format) or bench.suite.read
    with collecting_bad_rows() as bad:
        samples = reader(bench, style, render, seed, frame)
    if bench.max_samples is not None:
        samples = samples[: bench.max_samples]
    return Samples(samples, bad.found)


def quickstart_benchmarks(root: Path, max_samples: int | None = None,
                          names: list[str] | None = None) -> list[BenchmarkConfig]:
    """Every scorable test split of a quickstart build, with the manifest's held-in / held-out split."""
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise VlitError(f"{root}: no manifest.json (build it with `vlit data build quickstart --out {root}`)")
    manifest = read_json(manifest_path)  # refuses a FIFO or device, names bad JSON
    out = []
    for entry in manifest["datasets"]:
        if entry["task"] not in SCORABLE_TYPES or "test" not in entry["files"]:
            continue
        if names is not None and entry["name"] not in names:
            continue
        out.append(BenchmarkConfig(name=entry["name"], format="vlit", path=str(root / entry["files"]["test"]),
                                   split=entry["held"], max_samples=max_samples,
                                   max_new_tokens=task_spec(entry["task"]).answer_tokens))
    return out


def resolve_benchmarks(items: list[str], max_samples: int | None = None) -> list[BenchmarkConfig]:
    """`--benchmarks` arguments -> configs: `NAME=PATH` for one of the papers' benchmarks (`pope=eval/pope`), a
    YAML list of benchmarks, a quickstart build folder, or one dataset file (vlit JSON, or LLaVA question
    JSONL)."""
    from vlit.evaluation.suites import SUITES

    out: list[BenchmarkConfig] = []
    for item in items:
        path = Path(item)
        name, sep, target = item.partition("=")
        if sep and not path.exists():
            if name not in SUITES:
                raise VlitError(f"{item}: {name!r} is not a benchmark vlit knows ({', '.join(SUITES)})")
            suite = SUITES[name]
            if not Path(target).exists():
                raise VlitError(f"{item}: {target}: no such file or folder ({name} reads {suite.files})")
            out.append(BenchmarkConfig(name=name, format=name, path=target, max_new_tokens=suite.max_new_tokens,
                                       max_samples=max_samples))
        elif path.is_dir():
            out += quickstart_benchmarks(path, max_samples)
        elif path.suffix in (".yaml", ".yml"):
            out += _from_yaml(path, max_samples)
        elif path.suffix in (".json", ".jsonl"):
            fmt = "llava_questions" if _looks_like_questions(path) else "vlit"
            out.append(BenchmarkConfig(name=path.stem if path.stem != "test" else path.parent.name, format=fmt,
                                       path=str(path), max_samples=max_samples))
        else:
            raise VlitError(f"{item}: not NAME=PATH, a benchmark YAML, a quickstart folder or a dataset file")
    names = [b.name for b in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise VlitError(f"benchmarks: name {dupes[0]!r} appears more than once")
    return out


def _from_yaml(path: Path, max_samples: int | None) -> list[BenchmarkConfig]:
    try:
        data = load_text(read_text(path))
    except (OSError, yaml.YAMLError) as e:
        raise VlitError(f"{path}: cannot read benchmark list ({str(e).splitlines()[0]})") from None
    items = data.get("benchmarks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise VlitError(f"{path}: expected a list of benchmarks (or a `benchmarks:` key holding one)")
    out = []
    for i, item in enumerate(items):
        try:
            bench = from_dict(BenchmarkConfig, item, f"benchmarks[{i}]")
        except ConfigError as e:
            raise VlitError(f"{path}: {e}") from None
        for attr in ("path", "annotations", "image_root"):
            value = getattr(bench, attr)
            if value is not None and not Path(value).is_absolute():
                setattr(bench, attr, str(path.parent / value))  # relative to the YAML file
        if max_samples is not None and bench.max_samples is None:
            bench.max_samples = max_samples
        out.append(bench)
    return out


def _looks_like_questions(path: Path) -> bool:
    """Whether the file's first row is a LLaVA evaluation question (`question_id` and `text`)."""
    try:
        first = next(iter_raw_rows(path), None)
    except VlitError:
        return False
    row = None if first is None else first.value
    return isinstance(row, dict) and "question_id" in row and "text" in row

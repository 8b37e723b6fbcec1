"""`vlit data validate | stats | build | convert`: check a dataset file, describe it, build vlit's own data, or
convert the public training sets the papers use."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vlit.errors import VlitError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlit data", description="Validate, describe, build and convert datasets.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{validate,stats,build,convert}")

    validate = commands.add_parser("validate", help="check every row of a LLaVA JSON/JSONL file")
    validate.add_argument("file", type=Path)
    validate.add_argument("--images", type=Path, default=None, metavar="ROOT",
                          help="folder the rows' image paths are relative to (default: the file's folder)")
    validate.add_argument("--no-open", action="store_true",
                          help="only check that image files exist instead of decoding them")
    validate.set_defaults(run=_validate)

    stats = commands.add_parser("stats", help="rows, turns, images and token counts of a dataset file")
    stats.add_argument("file", type=Path)
    stats.add_argument("--tokenizer", default=None, metavar="NAME_OR_PATH",
                       help="tokenizer to count tokens with (default: the packaged SmolLM2's)")
    stats.set_defaults(run=_stats)

    build = commands.add_parser("build", help="build one of vlit's datasets")
    build.add_argument("name", choices=["quickstart"])
    build.add_argument("--out", type=Path, required=True, metavar="DIR")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--scale", type=float, default=1.0, help="multiplies the number of rows")
    build.set_defaults(run=_build)

    convert = commands.add_parser(
        "convert", help="the papers' training sets (COCO, VQAv2, GQA, RefCOCO, ...) as LLaVA JSON in a style",
        description="Convert public training sets from the files their releases ship into LLaVA JSON rows with "
                    "task records, asked in one paper's prompt style. Sets the style's paper holds out are refused.")
    convert.add_argument("sets", nargs="+", metavar="NAME=PATH",
                         help=f"a set and its release file or folder; NAME one of {', '.join(_set_names())}")
    convert.add_argument("--style", required=True, choices=["instructblip", "llava15", "minigptv2"])
    convert.add_argument("--out", type=Path, required=True, metavar="FILE_OR_DIR",
                         help="a .json/.jsonl file for all rows, or a folder for one NAME.json per set")
    convert.add_argument("--seed", type=int, default=0, help="seeds the templates drawn and --sample")
    convert.add_argument("--merge-qa", action="store_true",
                         help="llava15: one multi-turn row per image for its questions (RefCOCO: < 10 turns)")
    convert.add_argument("--images", action="append", default=[], metavar="NAME=FOLDER",
                         help="folder put in front of NAME's image paths (e.g. coco/train2014)")
    convert.add_argument("--sample", action="append", default=[], metavar="NAME=N",
                         help="keep a seeded random N of NAME's rows (LLaVA-1.5 takes 80K of OCR-VQA)")
    convert.set_defaults(run=_convert)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from vlit.data.reading.validate import validate_file

    report = validate_file(args.file, args.images, open_images=not args.no_open)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 0 if report.ok else 1


def _tokenizer(name: str | None) -> Any:
    # The model stack (torch, transformers) is imported only here: `validate` must stay fast to start.
    from vlit.assets import load_tokenizer
    from vlit.config import LLMConfig

    return load_tokenizer(LLMConfig() if name is None else LLMConfig(tokenizer=name))


def _stats(args: argparse.Namespace) -> int:
    from vlit.data.reading.llava import read_conversations
    from vlit.data.reading.validate import compute_stats

    conversations = read_conversations(args.file)
    print(compute_stats(conversations, _tokenizer(args.tokenizer)).summary())
    return 0


def _build(args: argparse.Namespace) -> int:
    if args.scale <= 0:
        raise VlitError(f"--scale: must be > 0, got {args.scale}")
    from vlit.data.sources.build import build_quickstart

    manifest = build_quickstart(args.out, seed=args.seed, scale=args.scale)
    print(f"built {args.name} in {args.out} (manifest: {args.out / 'manifest.json'})")
    print(f"  {'dataset':<28} {'task':<20} {'split':<9} {'train':>6} {'test':>6}")
    for d in manifest["datasets"]:
        counts = d["counts"]
        print(f"  {d['name']:<28} {d['task']:<20} {d['held'].replace('_', '-'):<9} {counts.get('train', 0):>6} "
              f"{counts.get('test', 0):>6}")
    return 0


def _set_names() -> list[str]:
    from vlit.data.convert.sources import SOURCES

    return list(SOURCES)


def _pairs(values: list[str], option: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise VlitError(f"{option}: expected NAME={what}, got {value!r}")
        pairs.append((name, rest))
    return pairs


def _count(value: str, option: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise VlitError(f"{option}: expected a number of rows, got {value!r}") from None


def _convert(args: argparse.Namespace) -> int:
    from vlit.data.convert.pipeline import convert

    sets = [(name, Path(path)) for name, path in _pairs(args.sets, "NAME=PATH", "PATH")]
    images = dict(_pairs(args.images, "--images", "FOLDER"))
    sample = {name: _count(n, "--sample") for name, n in _pairs(args.sample, "--sample", "N")}
    done = convert(sets, args.style, args.out, args.seed, args.merge_qa, images, sample, progress=True)
    for converted, path in done:
        skipped = f"; {len(converted.bad)} bad row(s) skipped" if converted.bad else ""
        print(f"{converted.name}: {len(converted.rows)} rows from {converted.read} examples{skipped} -> {path}")
        for line in converted.bad[:_SHOWN]:
            print(f"  {line}")
        if len(converted.bad) > _SHOWN:
            print(f"  ... and {len(converted.bad) - _SHOWN} more")
    return 0


_SHOWN = 20
"""Bad rows listed per set; the count says how many more there are."""


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)

"""What the quickstart shows a person: example answers beside the truth, the image-shuffle check, the
MiniGPT-v2-style model's boxes drawn on test scenes, and where every output is."""

from __future__ import annotations

import json
from pathlib import Path

from vlit.evaluation.image_use import ShuffleCheck

REFER_DRAWN = 6
"""Test scenes drawn with the refer answer and the target box."""


def _predictions(path: Path) -> dict[str, str]:
    return {row["id"]: row["prediction"] for row in map(json.loads, path.read_text().splitlines())}


def image_use(checks: dict[str, ShuffleCheck]) -> None:
    print("Does each model use its image? Answer loss on held-in test rows with each row's own image vs the "
          "images shuffled across the batch:")
    for name, check in checks.items():
        print(f"  {name:<14} {check}")


def examples(folder: Path, data: Path, labels: list[str], count: int) -> None:
    from vlit.evaluation.benchmarks import load_samples, quickstart_benchmarks
    from vlit.evaluation.extract import extract_box, extract_choice

    print("\nExample answers (trained models), ground truth beside them:")
    for bench in quickstart_benchmarks(data):
        shown = [label for label in labels if (folder / label / f"{bench.name}.predictions.jsonl").exists()]
        if not shown:
            continue
        samples = load_samples(bench, "llava15")[:count]
        print(f"\n  {bench.name} ({bench.split.replace('_', '-')})")
        for label in shown:
            preds = _predictions(folder / label / f"{bench.name}.predictions.jsonl")
            for s in samples:
                question = s.conversation.turns[-1].content.replace("<image>", "").strip().splitlines()[0]
                answer = preds.get(s.id, "")
                truth = s.references[0] if s.references else ""
                if isinstance(truth, str):
                    answer_shown, truth_shown = repr(answer[:60]), repr(truth)
                    # InstructBLIP-style prompts answer with the option itself, LLaVA-style with its letter.
                    index = extract_choice(truth, s.candidates) if s.task == "multiple_choice" else None
                    if index is not None:
                        truth_shown += f" ({s.candidates[index]})"
                else:  # a box: the answer as the metric reads it, in pixels beside the target's pixels
                    box = extract_box(answer, s.meta["image_size"])
                    answer_shown = f"{answer[:60]!r} -> {_pixels(box) if box else 'no box'}"
                    truth_shown = _pixels(truth)
                print(f"    [{label}] Q: {question[:70]}\n      answer: {answer_shown}   truth: {truth_shown}")


def _pixels(box) -> str:
    return f"({', '.join(f'{v:.0f}' for v in box)}) px"


def refer_boxes(folder: Path, data: Path, label: str, style: str) -> Path | None:
    """The first test scenes of `scenes_refer` with the model's box and the target drawn, side by side in one
    PNG (`<folder>/<label>/scenes_refer.boxes.png`); None when the model was not scored on it."""
    from PIL import Image

    from vlit.data.reading.images import load_image
    from vlit.evaluation.benchmarks import load_samples, quickstart_benchmarks
    from vlit.evaluation.extract import extract_box
    from vlit.evaluation.metrics import iou
    from vlit.inference.grounding import GroundedBox, draw_grounding

    path = folder / label / "scenes_refer.predictions.jsonl"
    if not path.exists():
        return None
    preds = _predictions(path)
    bench = next(b for b in quickstart_benchmarks(data, names=["scenes_refer"]))
    tiles = []
    for sample in [s for s in load_samples(bench, style) if s.id in preds][:REFER_DRAWN]:
        image = load_image(sample.conversation.images[0])  # RGB, with vlit's pixel limit
        target = sample.references[0]
        phrase = str(sample.meta.get("phrase") or "target")
        found = [GroundedBox(f"target - {phrase}", target)]
        box = extract_box(preds[sample.id], sample.meta["image_size"])
        if box is not None:
            found.append(GroundedBox(f"answer - IoU {iou(box, target):.2f}", box))
        tile = draw_grounding(image, found)
        if box is None:
            tile = _caption(tile, f"no box in {preds[sample.id][:40]!r}")
        tiles.append(tile.resize((320, round(320 * tile.height / tile.width))))
    if not tiles:
        return None
    columns = min(3, len(tiles))
    rows = -(-len(tiles) // columns)
    height = max(t.height for t in tiles)
    sheet = Image.new("RGB", (columns * 320, rows * height), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * 320, (i // columns) * height))
    out = folder / label / "scenes_refer.boxes.png"
    sheet.save(out, format="PNG")
    return out


def _caption(image, text: str):
    from PIL import ImageDraw

    canvas = image.copy()
    ImageDraw.Draw(canvas).text((4, canvas.height - 14), text, fill=(0, 0, 0))
    return canvas


def summary(results, out: Path, labels: list[str], table: Path, boxes: Path | None, seconds: float) -> None:
    from vlit.quickstart.job import ranked_name

    print("\nHeld-in Fashion-MNIST accuracy (chance 10%):")
    for r in results:
        if r.benchmark in ("fmnist_classification", ranked_name("fmnist_classification")):
            how = "ranked" if r.benchmark.endswith("-ranked") else "generated"
            low, high = r.interval or (r.primary, r.primary)
            print(f"  {r.checkpoint + ', ' + how:<50} {r.primary:6.1%}  (95% interval {low:.1%}-{high:.1%})")
    print(f"\nDone in {seconds / 60:.1f} min. Outputs:")
    print(f"  data:        {out / 'data'} (manifest.json, images, LLaVA JSON per dataset and split)")
    for name in labels:
        print(f"  {name + ':':<13}{out / name / 'model'} (checkpoint), {out / name / 'loss.png'}, "
              f"{out / name / 'metrics.jsonl'}")
    print(f"  evaluation:  {table} (table), {out / 'eval'}/<model>/ (predictions, metrics), "
          f"{out / 'eval' / 'image_shuffle.json'}")
    if boxes is not None:
        print(f"  boxes:       {boxes} (refer answers and targets drawn)")
    print(f"  timing:      {out / 'timing.json'}")
    print(f"  try it:      vlit ask --checkpoint {out / 'llava15' / 'model'} --image IMAGE \"What is this?\"")

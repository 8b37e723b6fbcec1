"""`vlit info CONFIG` and `vlit export`: look inside a model, and hand it to transformers."""

from __future__ import annotations

import argparse
from pathlib import Path

from vlit.config import Config, load_yaml
from vlit.data.conversation import Conversation, Turn

SAMPLE = Conversation(
    [Turn("user", "<image>\nWhat is the animal doing?"), Turn("assistant", "It is sleeping on a sofa."),
     Turn("user", "What colour is it?"), Turn("assistant", "Grey with dark stripes.")],
    images=["example.jpg"],
)


def info_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit info", description="Parameters, visual tokens and prompt of a "
                                     "model config or checkpoint.")
    parser.add_argument("config", help="a recipe YAML (configs/*.yaml) or a checkpoint folder")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides (recipes only)")
    args = parser.parse_args(argv)
    from vlit.models.build import build_model
    from vlit.models.parts import count_parameters

    if Path(args.config).is_dir():
        from vlit.models.saving import load_model

        model, processor = load_model(args.config)
    else:
        model, processor = build_model(load_yaml(Config, args.config, args.overrides).model)
    cfg = model.config
    print(f"{'part':<10} {'total':>14} {'trainable':>14}  source")
    sources = {"vision": f"{cfg.vision.source} {cfg.vision.name}", "llm": f"{cfg.llm.source} {cfg.llm.name}",
               "connector": cfg.connector.kind,
               "lora": f"r={cfg.lora.r} on {','.join(cfg.lora.target_modules)}" if cfg.lora else "none"}
    counts = count_parameters(model)
    for part, (total, trainable) in counts.items():
        print(f"{part:<10} {total:>14,} {trainable:>14,}  {sources[part]}")
    total = sum(t for t, _ in counts.values())
    trainable = sum(t for _, t in counts.values())
    print(f"{'all':<10} {total:>14,} {trainable:>14,}")
    spec = processor.image_spec
    print(f"\nimage input: {spec.size}x{spec.size} px ({spec.resize}); vision features: {model.vision.num_patches} x "
          f"{model.vision.hidden_size}")
    print(f"visual tokens per image (LLM input): {model.num_image_tokens} "
          f"({cfg.connector.kind} connector)")
    print(f"chat template: {cfg.template}\n\nsample conversation as the LLM sees it (each <image> becomes "
          f"{model.num_image_tokens} placeholder tokens):\n")
    print(processor.render(SAMPLE))
    example = processor.encode(SAMPLE)
    learned = sum(label != -100 for label in example.labels)
    print(f"\n{len(example)} tokens, {learned} of them learned (assistant turns)")
    return 0


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit export", description="Export a checkpoint to a Hugging Face folder "
                                     "that transformers loads: LlavaForConditionalGeneration for an `mlp` connector, "
                                     "InstructBlipForConditionalGeneration (or Blip2ForConditionalGeneration, not "
                                     "instruction-aware) for a `qformer` one; with its processor and chat template.")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    from vlit.models.export import export_model
    from vlit.models.saving import load_model

    model, processor = load_model(args.checkpoint)
    folder, model_class = export_model(model, processor, args.out)
    print(f"exported {model_class} folder: {folder}\nload it with transformers: "
          f"{model_class}.from_pretrained({str(folder)!r}) and AutoProcessor.from_pretrained({str(folder)!r})")
    return 0


def import_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vlit import", description="Turn a published checkpoint into a vlit checkpoint folder that every "
        "command takes. Formats (detected from the files): LLaVA-1.5 in transformers' layout (llava-hf/...) or "
        "its original one (liuhaotian/...), a LLaVA stage-1 mm_projector.bin, InstructBLIP and BLIP-2 in "
        "transformers' layout (Salesforce/...), MiniGPT-v2's minigptv2_checkpoint.pth (with --eva and --llm).")
    parser.add_argument("source", help="hub id, folder or weights file")
    parser.add_argument("--out", required=True, type=Path, help="the vlit checkpoint folder to write")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                        help="the LLM's dtype when loaded (default: the checkpoint's; float16 read as bfloat16)")
    parser.add_argument("--vision", help="LLaVA: the CLIP tower, when the checkpoint's mm_vision_tower is not it")
    parser.add_argument("--llm", help="MiniGPT-v2: the LLaMA-2-chat folder; a LLaVA projector: its LLM")
    parser.add_argument("--eva", help="MiniGPT-v2: BLIP-2's EVA ViT-g (eva_vit_g.pth or a BLIP-2 folder)")
    parser.add_argument("--copy", action="store_true", help="copy the referenced tower and LLM folders into "
                        "OUT/base instead of referencing them")
    args = parser.parse_args(argv)
    from vlit.models.published.importing import import_checkpoint

    imported = import_checkpoint(args.source, args.out, copy=args.copy, dtype=args.dtype, vision=args.vision,
                                 llm=args.llm, eva=args.eva)
    cfg = imported.config
    print(f"detected: {imported.format}")
    print(f"vision: {cfg.vision.source} {cfg.vision.name}; connector: {cfg.connector.kind}; "
          f"llm: {cfg.llm.source} {cfg.llm.name} ({cfg.llm.dtype}); template {cfg.template}, "
          f"prompt style {cfg.prompt_style}")
    stored = sum(v.numel() for v in imported.weights.values())
    print(f"stored: {', '.join(imported.parts)} ({stored:,} parameters); the rest is referenced"
          + (" (copied into OUT/base)" if args.copy else ""))
    for note in imported.notes:
        print(f"note: {note}")
    print(f"wrote {args.out}: vlit info {args.out} | vlit ask {args.out} IMAGE 'question' | vlit eval ...")
    return 0

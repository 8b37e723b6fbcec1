"""Published checkpoints in and out: LLaVA-1.5 (transformers' and the original layout, a stage-1 projector),
InstructBLIP and BLIP-2 (transformers' layout), MiniGPT-v2 (its released `.pth` with BLIP-2's EVA ViT-g and a
LLaMA-2-chat folder). Each family has one module that knows its layout; `importing` detects which one a
source is and writes an ordinary vlit checkpoint folder."""

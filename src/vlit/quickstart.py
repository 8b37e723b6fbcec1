"""`vlit quickstart`: the main job on the embedded default parts, with nothing downloaded.

Builds the LLaVA-1.5 recipe on the packaged parts (EfficientNet-Lite0 -> MLP -> SmolLM2-135M) and asks it
about a real photo that ships with scikit-image. The connector is untrained at this point, so the answer is
the LLM talking past an image it cannot read yet: that is the baseline training has to beat.
"""

from __future__ import annotations

import argparse
import time

from PIL import Image
from skimage import data as skdata

from vlit.config import Config, load_yaml
from vlit.data.conversation import Conversation


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="llava15", help="recipe name or YAML file (default: llava15)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args(argv)
    from vlit.models.build import build_model
    from vlit.models.parts import count_parameters

    start = time.perf_counter()
    cfg = load_yaml(Config, args.config)
    model, processor = build_model(cfg.model)
    counts = count_parameters(model)
    print(f"built {args.config}: " + ", ".join(f"{p} {t:,}" for p, (t, _) in counts.items())
          + f" parameters; {model.num_image_tokens} visual tokens per image ({time.perf_counter() - start:.1f} s)")
    image = Image.fromarray(skdata.chelsea())
    conv = Conversation.single("What animal is in this picture?", image=image)
    batch = processor([conv], add_generation_prompt=True)
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         pixel_values=batch["pixel_values"], max_new_tokens=args.max_new_tokens, do_sample=False)
    answer = processor.tokenizer.decode(out[0], skip_special_tokens=True).strip()
    print("image: scikit-image 'chelsea' (a tabby cat)")
    print("question: What animal is in this picture?")
    print(f"answer (connector untrained, so the LLM cannot read the image yet): {answer}")
    return 0

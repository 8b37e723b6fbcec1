#!/usr/bin/env bash
# Prepares, on this machine, what a lent GPU machine cannot fetch (it has no network and no packaged parts):
# the SmolLM2 tokenizer the debug model uses and the quickstart data at scale 0.05, in gpu/ (git-ignored).
# Then, from the device tool: run(command="bash benchmarks/gpu/run.sh", carry=["gpu"]).
set -euo pipefail
mkdir -p gpu/tok
python - <<'PY'
import shutil
from pathlib import Path
from vlit.assets import smollm2_folder
for f in Path(smollm2_folder()).iterdir():
    if f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json", "chat_template.jinja"):
        shutil.copy(f, "gpu/tok")
PY
[ -f gpu/data/manifest.json ] || vlit data build quickstart --out gpu/data --scale 0.05
du -sh gpu

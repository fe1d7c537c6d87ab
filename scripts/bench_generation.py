"""Benchmark: batched CPU generation with SmolLM2-135M-Instruct (transformers backend), batch 8 vs batch 1.

Both settings generate the same prompts in the same run, and every item gets exactly --max-new-tokens tokens
(end-of-sequence is ignored), so the comparison is not skewed by a batch waiting for its longest answer;
throughput is items/s.

    python scripts/bench_generation.py --model-dir results/models/smollm2 [--items 16] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import time

from dvmap.backends.transformers_backend import TransformersBackend
from dvmap.models import model_spec


def conversations(n: int) -> list[list[dict]]:
    countries = ["Germany", "Japan", "Brazil", "India", "Egypt", "Canada", "China", "Russian Federation"]
    return [[{"role": "user", "content": f"Describe values in {countries[i % len(countries)]} in one sentence "
                                         f"(variant {i})."}] for i in range(n)]


def throughput(model_dir: str, batch_size: int, items: int, max_new_tokens: int) -> float:
    spec = model_spec("bench", {"source": {"kind": "hf", "path": model_dir},
                                "generation": {"max_new_tokens": max_new_tokens, "batch_size": batch_size}})
    backend = TransformersBackend(model_dir, spec, device="cpu")
    backend.model.generation_config.min_new_tokens = max_new_tokens  # equal work per item at every batch size
    prompts = conversations(items)
    backend.generate(prompts[:batch_size])  # warm-up
    start = time.perf_counter()
    for begin in range(0, items, batch_size):
        backend.generate(prompts[begin:begin + batch_size])
    return items / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="results/models/smollm2")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    single = throughput(args.model_dir, 1, args.items, args.max_new_tokens)
    batched = throughput(args.model_dir, 8, args.items, args.max_new_tokens)
    print(f"batch 1: {single:.2f} items/s")
    print(f"batch 8: {batched:.2f} items/s")
    print(f"ratio  : {batched / single:.1f}x")


if __name__ == "__main__":
    main()

"""Benchmark: batched CPU generation with SmolLM2-135M-Instruct (transformers backend), batch 8 vs batch 1.

Both settings generate the same prompts in the same run, and every item gets exactly --max-new-tokens tokens
(end-of-sequence is ignored), so the comparison is not skewed by a batch waiting for its longest answer;
throughput is items/s. The two settings alternate for --rounds rounds (so a noisy neighbour on a shared machine
slows both alike) and the median round of each is reported.

    python scripts/bench_generation.py --model-dir results/models/smollm2 [--items 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from dvmap.inference.backends.transformers_backend import TransformersBackend
from dvmap.inference.models import model_spec


def conversations(n: int) -> list[list[dict]]:
    countries = ["Germany", "Japan", "Brazil", "India", "Egypt", "Canada", "China", "Russian Federation"]
    return [[{"role": "user", "content": f"Describe values in {countries[i % len(countries)]} in one sentence "
                                         f"(variant {i})."}] for i in range(n)]


def backend(model_dir: str, batch_size: int, max_new_tokens: int) -> TransformersBackend:
    spec = model_spec("bench", {"source": {"kind": "hf", "path": model_dir},
                                "generation": {"max_new_tokens": max_new_tokens, "batch_size": batch_size}})
    loaded = TransformersBackend(model_dir, spec, device="cpu")
    loaded.model.generation_config.min_new_tokens = max_new_tokens  # equal work per item at every batch size
    return loaded


def items_per_second(loaded: TransformersBackend, prompts: list[list[dict]]) -> float:
    size = loaded.spec.generation.batch_size
    start = time.perf_counter()
    for begin in range(0, len(prompts), size):
        loaded.generate(prompts[begin:begin + size])
    return len(prompts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="results/models/smollm2")
    parser.add_argument("--items", type=int, default=8, help="items per setting and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    backends = {size: backend(args.model_dir, size, args.max_new_tokens) for size in (1, 8)}
    prompts = conversations(args.items)
    for loaded in backends.values():
        loaded.generate(prompts[:loaded.spec.generation.batch_size])  # warm-up
    rounds: dict[int, list[float]] = {1: [], 8: []}
    for number in range(1, args.rounds + 1):
        for size, loaded in backends.items():
            rounds[size].append(items_per_second(loaded, prompts))
        print(f"round {number}: batch 1 {rounds[1][-1]:.2f} items/s, batch 8 {rounds[8][-1]:.2f} items/s "
              f"({rounds[8][-1] / rounds[1][-1]:.1f}x)", flush=True)
    single, batched = statistics.median(rounds[1]), statistics.median(rounds[8])
    print(f"batch 1: {single:.2f} items/s (median of {args.rounds})")
    print(f"batch 8: {batched:.2f} items/s (median of {args.rounds})")
    print(f"ratio  : {batched / single:.1f}x")


if __name__ == "__main__":
    main()

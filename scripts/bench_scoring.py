"""Benchmark: score mode vs batch-8 generation with SmolLM2-135M-Instruct on CPU, on the same benchmark items.

Both run through the transformers backend on the same items' direct-style prompts, in the same run: generation as
``dvmap predict`` does it (greedy, batch 8, up to --max-new-tokens, stopping at end-of-sequence) and score mode
(every option as the reply ``<answer>OPTION</answer>``, batch 8: the prompts' common prefix encoded once per batch,
each prompt's rest once with all its options), the items in score mode's order (by prompt text). The two
alternate for --rounds rounds and the median round of each is reported, in items/s. It also prints, on the items
whose greedy reply is exactly one of the options (bare, after "- ", or in answer tags), how often the argmax of the
options' summed log-probabilities in that same form is that option.

    python scripts/bench_scoring.py --model-dir results/models/smollm2 \\
        --items-file results/benchmark/cross_demographic.parquet [--items 64] [--rounds 3] [--unit profile]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dvmap.answers import ANSWER_REPLY
from dvmap.corpus.items import SAMPLE_UNITS, sample_items
from dvmap.corpus.prompts import prompt_corpus
from dvmap.inference.backends.transformers_backend import TransformersBackend
from dvmap.inference.models import model_spec
from dvmap.inference.predict import shared_prefix_order
from dvmap.io import read_parquet


#: The forms in which SmolLM2 writes a bare answer (it seldom uses the answer tags it is asked for).
FORMS = ("{}", "- {}", ANSWER_REPLY)


def timed(work, n: int) -> tuple[float, list]:
    start = time.perf_counter()
    out = work()
    return n / (time.perf_counter() - start), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="results/models/smollm2")
    parser.add_argument("--items-file", default="results/benchmark/cross_demographic.parquet")
    parser.add_argument("--items", type=int, default=64, help="items per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=24, help="generation budget (config.yaml's default)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--unit", choices=SAMPLE_UNITS, default="item",
                        help="a seeded sample of items, or whole profiles (every item of seeded profiles, as when "
                             "a whole benchmark split is scored) up to --items")
    args = parser.parse_args()

    table = read_parquet(args.items_file)
    items = sample_items(table, args.items, 0, args.unit)
    prompts = prompt_corpus(items, "direct")["prompt"].tolist()
    order = shared_prefix_order(prompts)   # score mode's order, in both modes
    items, prompts = items.iloc[order].reset_index(drop=True), [prompts[i] for i in order]
    print(f"{len(items)} items of {items['profile_id'].nunique()} profiles")
    options = [list(o) for o in items["options"]]
    replies = [[ANSWER_REPLY.format(o) for o in opts] for opts in options]
    spec = model_spec("bench", {"source": {"kind": "hf", "path": args.model_dir},
                                "generation": {"max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}})
    backend = TransformersBackend(args.model_dir, spec, device="cpu")
    size = args.batch_size
    batches = range(0, len(prompts), size)

    def generate():
        return [o for b in batches for o in backend.generate(prompts[b:b + size])]

    def score():
        return [s for b in batches for s in backend.score(prompts[b:b + size], replies[b:b + size])]

    backend.generate(prompts[:size])  # warm-up
    backend.score(prompts[:size], replies[:size])
    rates: dict[str, list[float]] = {"generate": [], "score": []}
    for number in range(1, args.rounds + 1):
        rate, generated = timed(generate, len(prompts))
        rates["generate"].append(rate)
        rate, scored = timed(score, len(prompts))
        rates["score"].append(rate)
        print(f"round {number}: generation {rates['generate'][-1]:.2f} items/s, score mode "
              f"{rates['score'][-1]:.2f} items/s ({rates['score'][-1] / rates['generate'][-1]:.1f}x)", flush=True)
    gen, sco = statistics.median(rates["generate"]), statistics.median(rates["score"])
    print(f"generation, batch {size}: {gen:.2f} items/s (median of {args.rounds}, {len(prompts)} items)")
    print(f"score mode, batch {size}: {sco:.2f} items/s")
    print(f"ratio: {sco / gen:.1f}x")
    exact = []  # (prompt, the options in the form of the greedy reply, the option it named)
    for prompt, reply, opts in zip(prompts, generated, options):
        for form in FORMS:
            named = [i for i, o in enumerate(opts) if (reply[0] or "").strip() == form.format(o)]
            if named:
                exact.append((prompt, [form.format(o) for o in opts], named[0]))
                break
    scored = backend.score([p for p, _, _ in exact], [r for _, r, _ in exact]) if exact else []
    agree = sum(int(np.argmax([v for v, _ in s])) == named for s, (_, _, named) in zip(scored, exact))
    print(f"greedy reply exactly an option (forms {', '.join(FORMS)}): {len(exact)} of {len(prompts)} items; "
          f"the score-mode argmax of the same form agrees on {agree} ({agree / max(len(exact), 1):.0%})")


if __name__ == "__main__":
    main()

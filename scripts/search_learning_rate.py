"""The learning recipe's learning-rate search: a short GRPO run per learning rate, compared on the learning curve.

Each run is `dvmap train` with the recipe's training settings (config.yaml + config/recipes/cpu_learning.yaml, or
the files given) except ``max_steps`` (--steps), the learning rate, and the curve (--curve-every, --curve-items):
the same train corpus, dev sample, model and seed. Needs the recipe's prompt corpora and converted model, e.g.
after ``make learn`` or ``snakemake ... -d runs/learn results/prompts/tau~0.0/direct/train.parquet
results/models/smollm2``. Prints per learning rate the dev sample's score-mode accuracy and expected accuracy at
each curve point, the mean reward of the last steps and the wall time, and writes them to --output.

    python scripts/search_learning_rate.py --workdir runs/learn --rates 3e-6 1e-5 3e-5 --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent


def recipe_training(files: list[Path]) -> dict:
    """The training section of the layered config files."""
    from snakemake.utils import update_config

    config: dict = {}
    for path in files:
        update_config(config, yaml.safe_load(path.read_text()))
    return config["training"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO / "runs" / "learn")
    parser.add_argument("--configfiles", type=Path, nargs="+",
                        default=[REPO / "config.yaml", REPO / "config" / "recipes" / "cpu_learning.yaml"])
    parser.add_argument("--rates", type=float, nargs="+", default=[3e-6, 1e-5, 3e-5])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--curve-every", type=int, default=10)
    parser.add_argument("--curve-items", type=int, default=100)
    parser.add_argument("--output", type=Path, default=None, help="TSV (default: WORKDIR/lr_search.tsv)")
    args = parser.parse_args()

    training = recipe_training(args.configfiles)
    tau, style, reward = training["thresholds"][0], training["styles"][0], training["rewards"][0]
    prompts = args.workdir / "results" / "prompts" / f"tau~{tau}" / style
    model = args.workdir / "results" / "models" / training["models"][0]
    rows = []
    for rate in args.rates:
        folder = args.workdir / "lr_search" / f"lr~{rate:g}"
        settings = {**training, "curves": {**training.get("curves", {}), "every": args.curve_every,
                                           "items": args.curve_items},
                    "grpo": {**training["grpo"], "max_steps": args.steps, "learning_rate": rate,
                             "save_steps": args.steps}}
        for key in ("models", "thresholds", "styles", "rewards", "seeds", "gpus", "accelerate"):
            settings.pop(key, None)
        command = [sys.executable, "-m", "dvmap", "train", str(prompts / "train.parquet"), "--dev",
                   str(prompts / "dev.parquet"), "--model-path", str(model), "--reward", reward, "--training",
                   json.dumps(settings), "--log", str(folder / "train_log.tsv"), "-o", str(folder / "model")]
        start = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        seconds = time.perf_counter() - start
        log = pd.read_csv(folder / "train_log.tsv", sep="\t")
        rewards = log["reward_mean"].dropna()
        for _, point in log.dropna(subset=["dev_score_accuracy"]).iterrows():
            rows.append({"learning_rate": rate, "step": int(point["step"]),
                         "dev_score_accuracy": point["dev_score_accuracy"],
                         "dev_expected_accuracy": point["dev_expected_accuracy"],
                         "reward_last_10": rewards.tail(10).mean(), "kl_last": log["kl"].dropna().iloc[-1],
                         "wall_s": round(seconds, 1)})
    table = pd.DataFrame(rows)
    output = args.output or args.workdir / "lr_search.tsv"
    table.to_csv(output, sep="\t", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

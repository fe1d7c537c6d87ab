"""Running the Snakemake DAG from tests: a small config derived from config.yaml, a snakemake subprocess, digests."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import REPO

BIN = str(Path(sys.executable).parent)
SMALL = {
    "synth": {"respondents_per_country": 60, "n_countries": 5, "seed": 3},
    "archetypes": {"thresholds": [0.0, "majority"], "min_group_size": 1},
    "splits": {"seed": 5, "fractions": {"train": 0.6, "dev": 0.1, "test": 0.1, "cross_demographic": 0.2},
               "heldout_countries": ["Mexico"], "heldout_questions": ["Q47", "Q165"]},
    "prompts": {"styles": ["direct", "country_only"]},
    "evaluation": {"baselines": ["uniform", "national_label", "knn"], "seeds": [0, 1], "bootstrap": 50},
    "inference": {"models": []},
    "training": {"models": []},
}


def tiny_training(tiny_model_dir, **training) -> dict:
    """Config sections for a small run that trains the tiny model (one GRPO step, threshold 0, style direct) and
    skips zero-shot inference; ``training`` adds to or overrides the training section."""
    return dict(
        models={"tiny": {"source": {"kind": "hf", "path": str(tiny_model_dir)},
                         "generation": {"max_new_tokens": 4, "batch_size": 4}}},
        inference={"models": [], "max_items_per_split": 4, "chunk_size": 4},
        training={"models": ["tiny"], "thresholds": [0.0], "styles": ["direct"], "rewards": ["binary"],
                  "seeds": [0], "max_train_items": 4, "eval_items": 2,
                  "grpo": {"max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 2,
                           "max_completion_length": 4}, **training},
    )


def venv_env(**extra: str) -> dict[str, str]:
    """The environment with this interpreter's bin folder first on PATH (dvmap, accelerate, snakemake)."""
    return {**os.environ, **extra, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}


def config_for(tmp: Path, **changes) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, values in {**SMALL, **changes}.items():
        base = SMALL.get(section, {}) if section in changes else config.get(section, {})
        config[section] = {**config.get(section, {}), **base, **values}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = venv_env()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def digests(root: Path) -> dict[str, str]:
    """md5 of every data artifact (parquet, tsv, sav) under results/."""
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*")) if p.suffix in (".parquet", ".tsv", ".sav")}


def dry_run_jobs(workdir: Path, *args: str) -> list[tuple[str, dict[str, str]]]:
    """The jobs a rerun would execute, as (rule, wildcards), from `snakemake --dry-run`."""
    out = snakemake(workdir, "--dry-run", *args).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if match:
            found = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
            wildcards = dict(kv.split("=", 1) for kv in found.group(1).split(", ")) if found else {}
            jobs.append((match.group(1), wildcards))
    return jobs

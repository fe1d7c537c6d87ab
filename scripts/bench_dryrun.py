"""Benchmark: how long Snakemake takes to resolve the DAG (a dry run) and to do a no-op rerun.

Measured in the same run, from the repository root:
  - dry run of the default config from scratch (nothing built),
  - dry run of the full ablation sweep (config/recipes/ablation_grid.yaml: 144 training runs and their predictions),
  - a no-op rerun of the default config in a folder where it was already built (the default `results/`; run
    `make run` first), which must execute no job.

    python scripts/bench_dryrun.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(REPO / "config.yaml"), *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"snakemake failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout + done.stderr


def best(repeat: int, workdir: Path, *args: str) -> tuple[float, str]:
    runs = [snakemake(workdir, *args) for _ in range(repeat)]
    return min(t for t, _ in runs), runs[-1][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        default, out = best(args.repeat, fresh, "--dry-run", "--quiet", "rules")
        print(f"dry run, default config, nothing built: {default:5.2f} s  ({_jobs(out)} jobs)")
        grid, out = best(args.repeat, fresh, "--dry-run", "--quiet", "rules", "--configfile", str(REPO / "config.yaml"),
                         str(REPO / "config/recipes/ablation_grid.yaml"))
        print(f"dry run, full ablation sweep:           {grid:5.2f} s  ({_jobs(out)} jobs)")
    if (REPO / "results/summary.tsv").exists():
        noop, out = best(args.repeat, REPO, "--cores", "1", "--profile", str(REPO / "profiles/local"))
        state = "no job ran" if "Nothing to be done" in out else "JOBS RAN (results were stale)"
        print(f"no-op rerun of the built default:       {noop:5.2f} s  ({state})")
    else:
        print("no-op rerun: skipped, build the default first (make run)")


def _jobs(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("total"):
            return line.split()[-1]
    return "0"


if __name__ == "__main__":
    main()

"""Benchmark: the wvs_scale recipe (the DAG at WVS-7's size, no LLM): every rule's wall time and peak RSS.

Runs Snakemake on config.yaml + config/recipes/wvs_scale.yaml (66 countries, 97,220 synthetic respondents; data,
4 thresholds, splits, corpora, prompts, the 5 baselines, evaluation, flips, summary, plots) in a work folder, then
`--report`, and reads the file Snakemake's ``benchmark:`` directive wrote for every job (benchmarks/RULE/…tsv: wall
seconds and peak RSS of the job's process tree, in MB). Prints per rule the jobs, their summed and longest wall time
and the largest peak RSS, the whole run's wall time, and whether the targets hold (the run within
``--target-minutes``, no job above ``--target-gb``).

``--previous`` adds, on the run's own artifacts, the previous implementations kept in scripts/ beside the current
ones, each in a fresh process: the item bootstrap (bench_bootstrap.py) and the cluster bootstrap on the same
subsample of the largest prediction file (``--previous-items`` items, whole profiles; the item bootstrap cannot
hold the whole file), and the previous kNN (bench_baselines.py) and the current one on a subsample of the evaluation
items of seen questions.

    python scripts/bench_scale.py [--workdir DIR] [--cores 2] [--reuse] [--previous] [--previous-items 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
RECIPE = REPO / "config" / "recipes" / "wvs_scale.yaml"


def snakemake(workdir: Path, cores: int, *extra: str) -> float:
    """Run Snakemake on the recipe in ``workdir``; its wall time in seconds (the log goes to workdir/snakemake.log)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(REPO / "config.yaml"), str(RECIPE), "--cores", str(cores), *extra]
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    start = time.perf_counter()
    with open(workdir / "snakemake.log", "a") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise SystemExit(f"snakemake {' '.join(extra)} failed: see {workdir / 'snakemake.log'}")
    return time.perf_counter() - start


def job_figures(workdir: Path) -> pd.DataFrame:
    """One row per job: rule (the first folder under benchmarks/, or the file's stem), job, wall s, peak RSS MB."""
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        relative = path.relative_to(workdir / "benchmarks")
        table = pd.read_csv(path, sep="\t")
        rule = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        rows.append({"rule": rule, "job": str(relative.with_suffix("")), "wall_s": float(table["s"].iloc[0]),
                     "max_rss_mb": float(pd.to_numeric(table["max_rss"], errors="coerce").fillna(0).iloc[0])})
    if not rows:
        raise SystemExit(f"{workdir / 'benchmarks'}: no benchmark file (was the recipe run here?)")
    return pd.DataFrame(rows)


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    table = jobs.groupby("rule", sort=False).agg(jobs=("job", "size"), total_s=("wall_s", "sum"),
                                                 longest_s=("wall_s", "max"), peak_rss_mb=("max_rss_mb", "max"))
    return table.sort_values("total_s", ascending=False)


# --------------------------------------------------------------------------------------------------------------
# The previous implementations on the run's artifacts, each in a fresh process
# --------------------------------------------------------------------------------------------------------------

def child_bootstrap(path: Path, mode: str, n_items: int, n_boot: int) -> dict:
    """Evaluation of a subsample of whole profiles of ``path`` (about ``n_items`` items): ``legacy`` = the previous
    item bootstrap, else the current one with that bootstrap unit (summary, breakdown, no reference)."""
    sys.path.insert(0, str(SCRIPTS))
    from bench_bootstrap import legacy_evaluate
    from dvmap.evaluation.evaluate import evaluate_predictions
    from dvmap.evaluation.metrics import profile_keys
    from dvmap.io import read_parquet

    frame = read_parquet(path)
    profiles = pd.unique(profile_keys(frame))
    keep = np.random.default_rng(0).permutation(profiles)[: max(1, round(len(profiles) * n_items / len(frame)))]
    frame = frame[np.isin(profile_keys(frame), keep)].reset_index(drop=True)
    gc.collect()
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak (VmHWM) restarts from the current RSS
    start = time.perf_counter()
    if mode == "legacy":
        legacy_evaluate(frame, n_boot, 0)
    else:
        evaluate_predictions(frame, n_boot, 0, unit=mode)
    return {"items": len(frame), "wall_s": time.perf_counter() - start, "added_mb": _status_mb("VmHWM") - before}


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def in_child(*task: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *task], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(task)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def knn_side_by_side(workdir: Path, n_items: int) -> tuple[dict, dict, bool]:
    """bench_baselines.py's previous kNN and the current one, on the run's τ = 0 corpus and a subsample of its
    cross_demographic and cross_country items."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.parquet").symlink_to(workdir / "results/corpus/tau~0.0/train.parquet")
        for split in ("cross_demographic", "cross_country"):
            (folder / f"{split}.parquet").symlink_to(workdir / f"results/benchmark/{split}.parquet")
        runs = []
        for which in ("previous", "new"):
            command = [sys.executable, str(SCRIPTS / "bench_baselines.py"), "--child", str(folder), "knn_sample",
                       which, str(n_items)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"knn {which} failed:\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        same = np.array_equal(np.load(folder / "knn_previous.npy"), np.load(folder / "knn_new.npy"))
    return runs[0], runs[1], same


def previous(workdir: Path, n_items: int, n_boot: int) -> None:
    files = sorted((workdir / "results/predictions").rglob("*.parquet"), key=lambda p: p.stat().st_size)
    largest = files[-1]
    print(f"\nprevious implementations, on {largest.relative_to(workdir)} (whole profiles, ~{n_items:,} items; "
          f"{n_boot} replicates; summary + breakdown; MB added: the peak RSS during the work above the RSS before):")
    for mode, name in (("legacy", "previous: item bootstrap"), ("item", "current, unit item"),
                       ("profile", "current, unit profile")):
        r = in_child("bootstrap", str(largest), mode, str(n_items), str(n_boot))
        print(f"  {name:<28} {r['items']:>8,} items {r['wall_s']:7.1f} s  {r['added_mb']:7.0f} MB added", flush=True)
    old, new, same = knn_side_by_side(workdir, n_items)
    for name, r in (("previous: kNN (pairwise)", old), ("current: kNN (bitset rings)", new)):
        print(f"  {name:<28} {r['items']:>8,} items {r['work_s']:7.1f} s  {r['above_mib']:7.0f} MiB above inputs",
              flush=True)
    print(f"  kNN predictions and fallbacks {'identical' if same else 'DIFFER'}; previous / current time "
          f"{old['work_s'] / new['work_s']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="work folder (default: a fresh temporary one, removed afterwards)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="report the benchmark files already in --workdir")
    parser.add_argument("--previous", action="store_true", help="also time the previous implementations")
    parser.add_argument("--previous-items", type=int, default=20_000)
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates of --previous")
    parser.add_argument("--target-minutes", type=float, default=10.0)
    parser.add_argument("--target-gb", type=float, default=3.0)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _, path, mode, n_items, n_boot = args.child
        print(json.dumps(child_bootstrap(Path(path), mode, int(n_items), int(n_boot))))
        return
    if args.reuse and not args.workdir:
        parser.error("--reuse needs --workdir")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        walls = {}
        if not args.reuse:
            print(f"running the wvs_scale recipe in {workdir} on {args.cores} cores ...", flush=True)
            walls["DAG"] = snakemake(workdir, args.cores)
            walls["report"] = snakemake(workdir, args.cores, "--report", str(workdir / "report.html"))
        jobs = job_figures(workdir)
        rules = per_rule(jobs)
        print(f"\n{'rule':<20}{'jobs':>5}{'total s':>10}{'longest s':>11}{'peak RSS MB':>13}")
        for rule, r in rules.iterrows():
            print(f"{rule:<20}{int(r['jobs']):>5}{r['total_s']:>10.1f}{r['longest_s']:>11.1f}{r['peak_rss_mb']:>13.0f}")
        worst = jobs.loc[jobs["max_rss_mb"].idxmax()]
        print(f"{'all jobs':<20}{len(jobs):>5}{jobs['wall_s'].sum():>10.1f}{jobs['wall_s'].max():>11.1f}"
              f"{jobs['max_rss_mb'].max():>13.0f}   (largest: {worst['job']})")
        for name, seconds in walls.items():
            print(f"wall time, {name}: {seconds:.0f} s ({seconds / 60:.1f} min)")
        if walls:
            total = sum(walls.values())
            print(f"target: the run (DAG + report) within {args.target_minutes:g} min: "
                  f"{'met' if total <= 60 * args.target_minutes else 'NOT met'} ({total / 60:.1f} min)")
        over = jobs[jobs["max_rss_mb"] > 1000 * args.target_gb]
        print(f"target: no job above {args.target_gb:g} GB peak RSS: "
              f"{'met' if over.empty else 'NOT met: ' + ', '.join(over['job'])}", flush=True)
        if args.previous:
            previous(workdir, args.previous_items, args.replicates)


if __name__ == "__main__":
    main()

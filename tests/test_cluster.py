"""The workflow through a real one-node SLURM (tests/cluster/slurm_up.sh) with a profile derived from
profiles/slurm: every job is a SLURM job, the GPU-resourced training job gets a (fake) GPU, and the artifacts match
a local run. Needs root and Debian's slurmctld, slurmd, slurm-client and munge (.ci/run installs them)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from .conftest import REPO
from .workflow_helpers import config_for, digests, dry_run_jobs, snakemake, tiny_training, venv_env

CLUSTER = REPO / "tests/cluster"
DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "sbatch")


def missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root"
    absent = [d for d in DAEMONS if shutil.which(d) is None]
    if absent:
        return (f"{absent} not installed: apt-get install slurmctld slurmd slurm-client munge (.ci/run does it)")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"
    return None


pytestmark = pytest.mark.skipif(missing_prerequisite() is not None, reason=str(missing_prerequisite()))


def settings(tiny_model_dir) -> dict:
    """The default workflow, small: one threshold, one style, two baselines, and one GRPO run on one GPU."""
    return dict(
        archetypes={"thresholds": [0.0], "min_group_size": 1},
        prompts={"styles": ["direct"]},
        evaluation={"baselines": ["global_majority", "national_label"], "seeds": [0], "bootstrap": 20},
        **tiny_training(tiny_model_dir, gpus=1),
    )


def write_test_profile(path) -> None:
    """profiles/slurm with the local cluster's partition, small resources and its status settings."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    small = {"slurm_partition": "debug", "runtime": 20, "mem_mb": 1000, "cpus_per_task": 1}
    profile["default-resources"] = dict(small)
    profile["set-resources"] = {rule: dict(small) for rule in profile["set-resources"]}
    profile.update({"jobs": 4, "latency-wait": 5, "slurm-status-command": "squeue",  # no slurmdbd, so no sacct
                    "slurm-init-seconds-before-status-checks": 1, "slurm-keep-successful-logs": True})
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(["bash", str(CLUSTER / "slurm_up.sh"), str(state)], capture_output=True, text=True,
                        timeout=120)
    if up.returncode != 0:
        subprocess.run(["bash", str(CLUSTER / "slurm_down.sh"), str(state)], capture_output=True, timeout=120)
        pytest.fail(f"slurm_up.sh failed:\n{up.stdout}\n{up.stderr}")
    env_line = (state / "env").read_text()
    conf = re.search(r"SLURM_CONF=(\S+)", env_line).group(1).strip("'\"")
    yield {"SLURM_CONF": conf}
    subprocess.run(["bash", str(CLUSTER / "slurm_down.sh"), str(state)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, tiny_model_dir):
    workdir = tmp_path_factory.mktemp("slurm-run")
    config_for(workdir, **settings(tiny_model_dir))
    profile = workdir / "profile"
    write_test_profile(profile)
    planned = dry_run_jobs(workdir)
    env = venv_env(**cluster)
    cmd = ["timeout", "-s", "INT", "-k", "30", "1200", sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), "--configfile", str(workdir / "config.yaml"), "--profile", str(profile)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1300)
    assert result.returncode == 0, f"snakemake on SLURM failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return workdir, planned, result.stdout + result.stderr


def test_every_job_ran_as_a_slurm_job(slurm_run):
    workdir, planned, output = slurm_run
    single = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output)
    arrays = re.findall(r"Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)", output)
    snakemake_ids = [job for job, _ in single] + [job for jobs, _ in arrays for job in jobs.split(",")]
    expected = [rule for rule, _ in planned if rule != "all"]
    assert len(snakemake_ids) == len(set(snakemake_ids)) == len(expected), (single, arrays, expected)
    assert arrays, "the profile's slurm-array-jobs rules (here: the two baselines) go as one job array"
    slurm_logs = {f"{slurm_id}" for _, slurm_id in single} | {
        f"{slurm_id}_{task}" for jobs, slurm_id in arrays for task in range(1, len(jobs.split(",")) + 1)}
    kept = list((workdir / ".snakemake/slurm_logs").rglob("*.log"))
    assert {p.stem for p in kept} == slurm_logs  # one SLURM log per job (array task), named by its SLURM id
    assert {p.parent.relative_to(workdir / ".snakemake/slurm_logs").parts[0] for p in kept} == {
        f"rule_{rule}" for rule in expected}


def test_gpu_rule_gets_a_gpu_from_gres(slurm_run):
    workdir, _, _ = slurm_run
    log = (workdir / "logs/train/tiny/tau~0.0/direct/binary/seed~0.log").read_text()
    devices = re.search(r"devices: CUDA_VISIBLE_DEVICES=(\S+)", log).group(1)
    assert devices != "unset" and devices.split(",")[0].isdigit()
    assert (workdir / "results/checkpoints/tiny/tau~0.0/direct/binary/seed~0/config.json").exists()


def test_artifacts_match_a_local_run(slurm_run, tmp_path, tiny_model_dir):
    workdir, _, _ = slurm_run
    local = tmp_path / "local"
    local.mkdir()
    config_for(local, **settings(tiny_model_dir))
    snakemake(local)
    trained = "grpo"  # a trained model's outputs depend on thread counts, which differ between the two runs

    def data(root):
        return {path: digest for path, digest in digests(root).items()
                if trained not in path and "training/" not in path
                and path not in ("results/summary.tsv", "results/breakdown.tsv", "results/flips.tsv")}

    assert data(workdir) == data(local) and len(data(local)) > 20
    summaries = [pd.read_csv(root / "results/summary.tsv", sep="\t") for root in (workdir, local)]
    baselines = [s[~s["model"].str.contains(trained)].reset_index(drop=True) for s in summaries]
    pd.testing.assert_frame_equal(*baselines)
    assert summaries[0]["model"].str.contains(trained).any()

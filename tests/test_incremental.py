"""Stale-only regeneration with the rerun settings of profiles/slurm: after a full run (data, training with two
rewards, trained-model predictions, evaluation), each change reruns only what depends on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from .conftest import REPO
from .workflow_helpers import config_for, dry_run_jobs, snakemake, tiny_training, venv_env

PROFILE = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
#: The profile's rerun settings, passed to a local run.
RERUN = ("--rerun-triggers", *PROFILE["rerun-triggers"], "--max-checksum-file-size",
         str(PROFILE["max-checksum-file-size"]))
DATA_RULES = {"respondents", "archetype_stats", "archetypes", "split", "corpus", "prompts", "benchmark_prompts",
              "flip_items", "diagnostics"}


def settings(tiny_model_dir, thresholds=(0.0,), likert_alpha=1.0) -> dict:
    return dict(
        data={"source": "wvs", "inputs": ["raw/survey.sav"]},
        archetypes={"thresholds": list(thresholds), "min_group_size": 1},
        prompts={"styles": ["direct"]},
        evaluation={"baselines": ["national_label"], "seeds": [0], "bootstrap": 20},
        **tiny_training(tiny_model_dir, thresholds=list(thresholds), rewards=["binary", "likert"],
                        reward_params={"binary": {"format_weight": 0.1},
                                       "likert": {"alpha": likert_alpha, "format_weight": 0.1}}),
    )


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_model_dir):
    workdir = tmp_path_factory.mktemp("incremental")
    (workdir / "raw").mkdir()
    env = venv_env()
    subprocess.run([sys.executable, "-m", "dvmap", "synth", "-o", str(workdir / "raw/survey.sav"),
                    "--respondents-per-country", "40", "--countries", "4", "--seed", "3"], check=True, env=env)
    config_for(workdir, **settings(tiny_model_dir))
    snakemake(workdir, *RERUN)
    return workdir


@pytest.fixture
def run_copy(full_run, tmp_path):
    """A copy of the full run (results and Snakemake's records) that a test may change."""
    workdir = tmp_path / "run"
    shutil.copytree(full_run, workdir, symlinks=True)
    return workdir


def summary(workdir) -> list[dict[str, str]]:
    """`snakemake --summary`: one row per artifact with its status and plan."""
    lines = [line for line in snakemake(workdir, "--summary", *RERUN).stdout.splitlines() if "\t" in line]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def test_a_rerun_executes_nothing(full_run):
    assert dry_run_jobs(full_run, *RERUN) == []
    rows = summary(full_run)
    assert len(rows) > 30 and {row["plan"] for row in rows} == {"no update"}


def test_adding_a_threshold_runs_only_its_branch(run_copy, tiny_model_dir):
    config_for(run_copy, **settings(tiny_model_dir, thresholds=(0.0, 0.5)))
    jobs = dry_run_jobs(run_copy, *RERUN)
    rules = {rule for rule, _ in jobs}
    assert {"archetypes", "corpus", "prompts", "train", "predict_trained", "baseline", "summary"} <= rules
    for rule, wildcards in jobs:
        if "tau" in wildcards:
            assert wildcards["tau"] == "0.5", (rule, wildcards)
        elif "predictor" in wildcards:
            assert "tau~0.5" in wildcards["predictor"], (rule, wildcards)
        else:  # merges across thresholds
            assert rule in {"sweep", "summary", "evaluation_plots", "flip_rates", "training_curves", "all"}, rule
    trained = sorted(w["reward"] for rule, w in jobs if rule == "train")
    assert trained == ["binary", "likert"]
    assert not {"respondents", "archetype_stats", "split", "flip_items", "benchmark_prompts"} & rules


def test_changing_a_reward_parameter_retrains_that_reward_only(run_copy, tiny_model_dir):
    config_for(run_copy, **settings(tiny_model_dir, likert_alpha=0.5))
    # (`--list-changes params` lists every file in Snakemake 9.27, changed or not; the summary's status is exact.)
    changed = [row["output_file"] for row in summary(run_copy) if row["status"] == "params changed"]
    assert changed and all("/likert/" in path for path in changed), changed
    jobs = dry_run_jobs(run_copy, *RERUN)
    rules = {rule for rule, _ in jobs}
    assert [w["reward"] for rule, w in jobs if rule == "train"] == ["likert"]
    assert "predict_trained" in rules and "summary" in rules
    assert not DATA_RULES & rules and "baseline" not in rules
    for rule, wildcards in jobs:
        assert "binary" not in wildcards.get("reward", "") + wildcards.get("predictor", ""), rule


def test_touching_the_raw_input_with_the_same_content_reruns_nothing(run_copy):
    survey = run_copy / "raw/survey.sav"
    later = survey.stat().st_mtime + 3600
    os.utime(survey, (later, later))
    assert dry_run_jobs(run_copy, *RERUN) == []
    # Without checksums (the triggers the profile avoids) the same touch would redo everything, training included.
    rules = {rule for rule, _ in dry_run_jobs(run_copy, "--max-checksum-file-size", "0")}
    assert {"respondents", "train"} <= rules


def test_changing_the_raw_input_reruns_from_respondents(run_copy):
    env = venv_env()
    subprocess.run([sys.executable, "-m", "dvmap", "synth", "-o", str(run_copy / "raw/survey.sav"),
                    "--respondents-per-country", "40", "--countries", "4", "--seed", "4"], check=True, env=env)
    rules = {rule for rule, _ in dry_run_jobs(run_copy, *RERUN)}
    assert {"respondents", "archetype_stats"} <= rules

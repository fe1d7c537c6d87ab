"""The Snakemake DAG end to end on a small synthetic survey: artifacts, reproducibility, lint, config errors."""

from __future__ import annotations

import pandas as pd
import pytest

from .workflow_helpers import config_for, digests, snakemake

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The small workflow run twice, in two folders, with the same config and seed."""
    out = []
    for name in ("a", "b"):
        workdir = tmp_path_factory.mktemp(name)
        config_for(workdir)
        snakemake(workdir)
        out.append(workdir)
    return out


def test_every_artifact_is_built(runs):
    results = runs[0] / "results"
    for tau in ("0.0", "majority"):
        assert (results / f"archetypes/tau~{tau}/archetypes.parquet").exists()
        assert (results / f"diagnostics/tau~{tau}/diagnostics.tsv").exists()
        assert (results / f"diagnostics/tau~{tau}/jsd.png").stat().st_size > 1000
        for style in ("direct", "country_only"):
            for split in ("train", "dev", "test"):
                corpus = pd.read_parquet(results / f"prompts/tau~{tau}/{style}/{split}.parquet")
                assert len(corpus) > 0 and {"prompt", "answer", "options", "frequency"} <= set(corpus.columns)
                assert (results / f"prompts/tau~{tau}/{style}/verl/{split}.parquet").exists()
    for split in ("cross_demographic", "cross_country", "cross_value"):
        assert len(pd.read_parquet(results / f"benchmark/{split}.parquet")) > 0
        assert (results / f"prompts/benchmark/direct/{split}.parquet").exists()
    sweep = pd.read_csv(results / "diagnostics/sweep.tsv", sep="\t")
    assert sweep["tau"].astype(str).tolist() == ["0.0", "majority"]
    assert sweep.loc[1, "rows_kept_share"] == 1.0 and sweep.loc[0, "rows_kept_share"] < 1.0
    respondents = pd.read_parquet(results / "respondents.parquet")
    dropped = pd.read_csv(results / "respondents_dropped.tsv", sep="\t")
    dropped = dropped[dropped["attribute"] == "any"]
    assert dropped["respondents"].sum() == 5 * 60 and len(respondents) == 5 * 60 - dropped["dropped"].sum()
    assert not respondents[["Life Stage", "Income Bracket"]].isin(["Not Answered"]).any().any()


def test_evaluation_artifacts(runs):
    results = runs[0] / "results"
    summary = pd.read_csv(results / "summary.tsv", sep="\t", dtype={"seed": str, "threshold": str},
                          keep_default_na=False)
    per_seed = summary[summary["seed"] != "mean"]
    assert set(per_seed["model"]) == {"uniform", "national_label", "knn"}
    assert set(per_seed["threshold"]) == {"0.0", "majority"}
    assert set(per_seed["split"]) == {"cross_demographic", "cross_country", "cross_value"}
    assert len(per_seed) == 3 * 2 * 2 * 3  # models × thresholds × seeds × splits
    assert (per_seed["accuracy_ci_low"].astype(float) <= per_seed["accuracy"].astype(float)).all()
    means = summary[summary["seed"] == "mean"]
    assert len(means) == 3 * 2 * 3 and means["accuracy_sd"].astype(float).notna().all()
    for plot in ("accuracy_vs_threshold", "per_country", "flips"):
        assert (results / f"plots/{plot}.png").stat().st_size > 1000
    flips = pd.read_csv(results / "flips.tsv", sep="\t")
    national = flips[flips["predictor"].str.startswith("national_label")]
    assert (national["change_rate"] == 0).all()  # the national label ignores income


def test_same_config_and_seed_give_byte_identical_artifacts(runs):
    first, second = (digests(run) for run in runs)
    assert len(first) > 40
    assert first == second


def test_rerun_is_a_no_op(runs):
    result = snakemake(runs[0], "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_report_is_built(runs):
    snakemake(runs[0], "--report", "report.html")
    html = (runs[0] / "report.html").read_text(errors="replace")
    assert "Consensus filter" in html


def test_lint_is_clean(tmp_path):
    config_for(tmp_path)
    result = snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


@pytest.mark.parametrize("section, values, expected", [
    ("archetypes", {"thresholds": ["strict"]}, "thresholds"),
    ("archetypes", {"min_group_size": "two"}, "min_group_size"),
    ("splits", {"colour": "blue"}, "colour"),
])
def test_bad_config_is_rejected_naming_the_key(tmp_path, section, values, expected):
    config_for(tmp_path, **{section: values})
    result = snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_threshold_leaving_an_empty_corpus_fails_cleanly(tmp_path):
    config_for(tmp_path, archetypes={"thresholds": [0.0], "min_group_size": 100000})
    result = snakemake(tmp_path, "results/corpus/tau~0.0/train.parquet", check=False)
    assert result.returncode != 0
    log = (tmp_path / "logs/corpus/tau~0.0.log").read_text()
    assert "empty corpus" in log and "tau=0.0" in log
    assert not list((tmp_path / "results").glob("corpus/tau~0.0/*.parquet"))


def test_release_source_builds_the_same_corpus_and_benchmark(runs, tmp_path):
    """A release folder (exported from a synthetic run) drives the DAG with data.source: release."""
    from dvmap.corpus.release import export_release

    from .test_release import write_saved_dataset

    results = runs[0] / "results"
    release = tmp_path / "release"
    release.mkdir()
    for split in ("train", "dev", "test"):
        export_release(pd.read_parquet(results / f"corpus/tau~0.0/{split}.parquet")).to_parquet(
            release / f"{split}.parquet")
    for folder, split in (("Cross-Demographic", "cross_demographic"), ("Cross-Country", "cross_country"),
                          ("Cross-Value", "cross_value")):
        items = pd.read_parquet(results / f"benchmark/{split}.parquet")
        write_saved_dataset(release / folder, export_release(items, with_data_source=False))
    workdir = tmp_path / "run"
    workdir.mkdir()
    config_for(workdir, data={"source": "release", "release_dir": str(release)})
    snakemake(workdir)
    for split in ("train", "dev", "test"):
        imported = pd.read_parquet(workdir / f"results/corpus/tau~release/{split}.parquet")
        original = pd.read_parquet(results / f"corpus/tau~0.0/{split}.parquet")
        assert imported["item_id"].tolist() == original["item_id"].tolist()
        assert imported["answer"].tolist() == original["answer"].tolist()
        assert (workdir / f"results/prompts/tau~release/direct/{split}.parquet").exists()
    assert len(pd.read_parquet(workdir / "results/benchmark/cross_value.parquet")) == len(
        pd.read_parquet(results / "benchmark/cross_value.parquet"))
    assert not (workdir / "results/respondents.parquet").exists()


def test_real_wvs_extracts_run_through_the_dag(tmp_path):
    """data.source: wvs on the real per-country extracts from ../shared (skipped without them)."""
    from .conftest import WVS7, require_shared

    inputs = [str(require_shared(WVS7 / f"wvs7_{iso3}.sav")) for iso3 in ("USA", "DEU", "JPN")]
    config_for(tmp_path, data={"source": "wvs", "inputs": inputs, "absent_questions": "skip",
                               "absent_attributes": {"Common Language": "not-answered"}},
               splits={"heldout_countries": ["Japan"], "heldout_questions": ["Q47", "Q165"]})
    snakemake(tmp_path)
    respondents = pd.read_parquet(tmp_path / "results/respondents.parquet")
    assert set(respondents["Country"]) == {"United States of America", "Germany", "Japan"}
    assert (respondents["Common Language"] == "Not Answered").all()
    cross_country = pd.read_parquet(tmp_path / "results/benchmark/cross_country.parquet")
    assert set(cross_country["Country"]) == {"Japan"}
    sweep = pd.read_csv(tmp_path / "results/diagnostics/sweep.tsv", sep="\t")
    assert sweep.loc[0, "singleton_profile_share"] > 0.5  # with real data most profiles are singletons


def test_llm_predictions_enter_summary_and_flips(runs, tmp_path, tiny_model_dir):
    """A registry model (the tiny test model as an hf source) predicts every split and joins the evaluation."""
    import shutil

    workdir = tmp_path / "run"
    shutil.copytree(runs[0], workdir, symlinks=True)  # results and Snakemake's records: only new jobs run
    config_for(workdir, models={"tiny": {"source": {"kind": "hf", "path": str(tiny_model_dir)},
                                         "generation": {"max_new_tokens": 6, "batch_size": 4}}},
               inference={"models": ["tiny"], "styles": ["direct"], "max_items_per_split": 6, "chunk_size": 3})
    dry = snakemake(workdir, "--dry-run", "--quiet", "rules")
    assert "predict" in dry.stdout and "respondents" not in dry.stdout
    snakemake(workdir)
    predictions = workdir / "results/predictions/tiny-direct.tau~none.seed~0"
    for split in ("cross_demographic", "cross_country", "cross_value", "flip"):
        table = pd.read_parquet(predictions / f"{split}.parquet")
        assert table["raw_output"].notna().all() and table["predictor"].eq(predictions.name).all()
    summary = pd.read_csv(workdir / "results/summary.tsv", sep="\t", dtype={"seed": str}, keep_default_na=False)
    tiny = summary[summary["model"] == "tiny-direct"]
    assert set(tiny["split"]) == {"cross_demographic", "cross_country", "cross_value"}
    assert (tiny["n_items"] == 6).all()
    flips = pd.read_csv(workdir / "results/flips.tsv", sep="\t")
    assert predictions.name in set(flips["predictor"])


def test_ablation_grid_expands_to_the_full_product(tmp_path):
    """config/recipes/ablation_grid.yaml: thresholds × styles × rewards × seeds × models training runs, each with
    its predictions and evaluation, all feeding the one summary."""
    from .conftest import REPO

    config_for(tmp_path)
    grid = snakemake(tmp_path, "results/summary.tsv", "--dry-run", "--quiet", "rules", "--configfile",
                     str(REPO / "config.yaml"), str(REPO / "config/recipes/ablation_grid.yaml")).stdout
    counts = {line.split()[0]: int(line.split()[1]) for line in grid.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    runs = 4 * 3 * 4 * 3 * 1
    assert counts["train"] == counts["predict_trained"] == runs
    assert counts["summary"] == 1 and counts["evaluate"] >= runs

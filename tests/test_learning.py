"""Evidence that training works: learning curves in score mode during GRPO, the paired difference trained − base in
the summary (``dvmap evaluate --base``), the before/after table, and the learning recipes."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from dvmap.errors import DvmapError
from dvmap.evaluation.learning import learning_table
from dvmap.evaluation.metrics import Evaluation
from dvmap.evaluation.predictions import prediction_table
from dvmap.io import read_parquet, read_tsv, write_parquet
from dvmap.schema import BASE_PAIRED, PAIRED

from .conftest import REPO, SHARED, WVS7, require_shared
from .items_factory import make_items
from .test_recipes import layered
from .workflow_helpers import config_for, snakemake, tiny_training, venv_env

OPTIONS = ["Yes", "No", "Maybe"]


def items(n_profiles: int = 6, questions: tuple[str, ...] = ("Q1", "Q2"), split: str = "cross_demographic"):
    rows = [{"question_id": q, "options": OPTIONS, "answer_index": (p + i) % 3, "Gender": ("Female", "Male")[p % 2],
             "Income Bracket": f"income {p}"} for p in range(n_profiles) for i, q in enumerate(questions)]
    return make_items(rows, split)


def predictions(table: pd.DataFrame, index, model: str, tau: str = "none", probs=None) -> pd.DataFrame:
    return prediction_table(table, index, model, tau, 0, option_probs=probs)


# --------------------------------------------------------------------------------------------------------------
# the paired difference with the base model
# --------------------------------------------------------------------------------------------------------------

def test_evaluate_pairs_a_trained_model_with_its_base(tmp_path):
    from dvmap.cli import main

    table = items(n_profiles=10)
    rng = np.random.default_rng(3)
    base = rng.integers(0, 3, len(table))
    trained = np.where(rng.random(len(table)) < 0.6, table["answer_index"], base)
    write_parquet(predictions(table, base, "m-direct-score"), tmp_path / "base.parquet")
    write_parquet(predictions(table, trained, "m-direct-grpo-binary-score", "0.0"), tmp_path / "trained.parquet")
    assert main(["evaluate", str(tmp_path / "trained.parquet"), "--base", str(tmp_path / "base.parquet"),
                 "--bootstrap", "200", "-o", str(tmp_path / "summary.tsv")]) == 0
    row = read_tsv(tmp_path / "summary.tsv").iloc[0]
    gold = table["answer_index"].to_numpy()
    difference = (trained == gold).mean() - (base == gold).mean()
    assert row[BASE_PAIRED] == pytest.approx(difference)
    assert row[f"{BASE_PAIRED}_ci_low"] <= difference <= row[f"{BASE_PAIRED}_ci_high"]
    assert row["base"] == "m-direct-score.tau~none.seed~0"
    # the CI is the profile bootstrap of the paired difference: the same as pairing in Evaluation directly
    direct = Evaluation(read_parquet(tmp_path / "trained.parquet"), n_boot=200, seed=0, unit="profile",
                        reference_index=base).table()[PAIRED]
    assert (row[BASE_PAIRED], row[f"{BASE_PAIRED}_ci_low"], row[f"{BASE_PAIRED}_ci_high"]) == pytest.approx(direct)


def test_evaluate_refuses_a_base_without_the_items(tmp_path, capsys):
    from dvmap.cli import main

    table = items()
    write_parquet(predictions(table.iloc[2:], np.zeros(len(table) - 2), "m-direct-score"), tmp_path / "base.parquet")
    write_parquet(predictions(table, np.zeros(len(table)), "m-direct-grpo-binary-score"), tmp_path / "trained.parquet")
    code = main(["evaluate", str(tmp_path / "trained.parquet"), "--base", str(tmp_path / "base.parquet"),
                 "-o", str(tmp_path / "summary.tsv")])
    assert code == 2
    assert "base.parquet" in capsys.readouterr().err and not (tmp_path / "summary.tsv").exists()


# --------------------------------------------------------------------------------------------------------------
# the before/after table
# --------------------------------------------------------------------------------------------------------------

def curve(table: pd.DataFrame, steps: dict[int, np.ndarray]) -> pd.DataFrame:
    parts = []
    for step, index in steps.items():
        part = predictions(table, index, "policy")
        part.insert(0, "step", step)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_learning_table_dev_rows_pair_the_last_step_with_the_first():
    table = items(n_profiles=12, split="dev")
    gold = table["answer_index"].to_numpy()
    first, middle, last = (gold + 1) % 3, gold, np.where(np.arange(len(gold)) % 2 == 0, gold, (gold + 2) % 3)
    summary = pd.DataFrame(columns=["predictor", "split", "base"])
    out = learning_table(summary, {"run": curve(table, {0: first, 5: middle, 10: last})}, n_boot=300)
    assert out["split"].tolist() == ["dev", "dev"] and out["role"].tolist() == ["base", "trained"]
    base, trained = out.iloc[0], out.iloc[1]
    assert base["accuracy"] == 0 and trained["accuracy"] == pytest.approx(0.5)
    assert trained["vs_base"] == pytest.approx(0.5), "the last step paired with the first, not the middle one"
    assert trained["vs_base_ci_low"] <= 0.5 <= trained["vs_base_ci_high"]
    assert trained["predictor"] == "run step 10" and base["n_items"] == trained["n_items"] == len(table)


def test_learning_table_benchmark_rows_come_from_the_summary():
    def row(predictor, model, tau, accuracy, **extra):
        return {"predictor": predictor, "model": model, "threshold": tau, "seed": "0", "split": "cross_country",
                "protocol": "lenient", "n_items": 40, "accuracy": accuracy, "accuracy_ci_low": accuracy - 0.1,
                "accuracy_ci_high": accuracy + 0.1, "expected_accuracy": accuracy - 0.05, "base": "", **extra}

    summary = pd.DataFrame([
        row("m-direct-score.tau~none.seed~0", "m-direct-score", "none", 0.25),
        row("m-direct-grpo-binary-score.tau~0.0.seed~0", "m-direct-grpo-binary-score", "0.0", 0.4,
            base="m-direct-score.tau~none.seed~0", accuracy_vs_base=0.15, accuracy_vs_base_ci_low=0.05,
            accuracy_vs_base_ci_high=0.25),
        row("national_label.tau~0.0.seed~0", "national_label", "0.0", 0.46),
        row("national_label.tau~majority.seed~0", "national_label", "majority", 0.5),
        row("uniform.tau~0.0.seed~0", "uniform", "0.0", 0.3),
    ])
    out = learning_table(summary, {})
    assert out["role"].tolist() == ["base", "trained", "baseline"]
    assert out["predictor"].tolist() == ["m-direct-score.tau~none.seed~0", "m-direct-grpo-binary-score.tau~0.0.seed~0",
                                         "national_label.tau~0.0.seed~0"], "baselines at the training threshold"
    assert out.iloc[1][["vs_base", "vs_base_ci_low", "vs_base_ci_high"]].tolist() == [0.15, 0.05, 0.25]
    assert out.iloc[0][["vs_base"]].isna().all()


# --------------------------------------------------------------------------------------------------------------
# settings and recipes
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("curves, key", [({"every": -1}, "training.curves.every"), ({"items": 0}, "training.curves.items"),
                                         ({"often": 3}, "training.curves: unknown")])
def test_bad_curve_settings_name_the_key(curves, key):
    from dvmap.training.spec import train_spec

    with pytest.raises(DvmapError, match=key):
        train_spec({"curves": curves})


def test_learning_recipes_validate_and_score_before_and_after():
    from dvmap.training.spec import grpo_config, train_spec

    config = layered("cpu_learning.yaml")
    assert config["models"]["smollm2"]["mode"] == "score"
    assert config["inference"]["score_items_per_split"] >= 500
    assert config["training"]["curves"]["every"] > 0
    spec = train_spec(config["training"], config["training"]["rewards"][0], 0)
    assert grpo_config(spec, "/tmp/unused").max_steps == config["training"]["grpo"]["max_steps"]
    real = layered("cpu_learning.yaml", "cpu_learning_wvs.yaml")
    assert real["data"]["source"] == "wvs" and real["training"] == config["training"]
    assert all((REPO / "runs" / "learn-wvs" / path).resolve() == (REPO.parent / "shared/data/wvs7" / path.rpartition("/")[2]).resolve()
               for path in real["data"]["inputs"])
    makefile = (REPO / "Makefile").read_text()
    assert "learn:" in makefile and "cpu_learning.yaml" in makefile and "cpu_learning_wvs.yaml" in makefile


def test_real_data_overlay_plans_its_dag_from_its_run_folder(tmp_path):
    """make learn-wvs's DAG, planned from a run folder two levels below a checkout with ../shared beside it (the
    layout the overlay's relative input paths are written for); skipped without ../shared."""
    import subprocess
    import sys

    require_shared(WVS7 / "wvs7_USA.sav")
    workdir = tmp_path / "checkout" / "runs" / "learn-wvs"
    workdir.mkdir(parents=True)
    (tmp_path / "shared").symlink_to(SHARED.resolve())
    recipes = [str(REPO / "config" / "recipes" / name) for name in ("cpu_learning.yaml", "cpu_learning_wvs.yaml")]
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                           "--configfile", str(REPO / "config.yaml"), *recipes, "--dry-run", "--cores", "2"],
                          env=venv_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for rule in ("respondents", "train", "score", "score_trained", "learning"):
        assert f"rule {rule}:" in done.stdout, rule
    train = done.stdout.split("rule train:")[1].split("rule ")[0]
    assert "threads: 2" in train, "the recipe's one training job gets both cores (training.threads)"


# --------------------------------------------------------------------------------------------------------------
# learning curves in a GRPO run, and the DAG's before/after table
# --------------------------------------------------------------------------------------------------------------

def test_curve_scores_the_base_model_first_and_the_trained_model_last(tiny_model_dir, tmp_path):
    """The curve's first point is the starting model and its last the saved one, each scored on the fixed sample
    exactly as score mode scores it; the train log carries every point beside the reward."""
    from dvmap.answers import ANSWER_REPLY
    from dvmap.corpus.prompts import prompt_corpus
    from dvmap.inference.backends.transformers_backend import score_conversations
    from dvmap.training.checkpoints import load_tokenizer
    from dvmap.training.spec import train_spec
    from transformers import AutoModelForCausalLM

    from .grpo_recording import recorded_grpo_run

    for split in ("train", "dev"):
        write_parquet(prompt_corpus(items(n_profiles=4, split=split), "direct"), tmp_path / f"{split}.parquet")
    spec = train_spec({"max_train_items": 4, "eval_items": 0, "curves": {"every": 2, "items": 5, "batch_size": 2},
                       "grpo": {"max_steps": 3, "learning_rate": 1e-2, "num_generations": 2,
                                "per_device_train_batch_size": 2, "max_completion_length": 4}})
    run = recorded_grpo_run(tmp_path / "train.parquet", tmp_path / "dev.parquet", str(tiny_model_dir),
                            tmp_path / "run", spec)
    log = read_tsv(run["log"])
    points = log.dropna(subset=["dev_score_accuracy"])
    assert points["step"].tolist() == [0, 2, 3], "before the first step, every 2 steps, after the last"
    assert log["reward_mean"].notna().sum() == 3
    table = read_parquet(run["dir"] / "dev_curve.parquet")
    assert sorted(table["step"].unique()) == [0, 2, 3] and (table.groupby("step").size() == 5).all()
    dev = read_parquet(tmp_path / "dev.parquet")
    sample = dev[dev["item_id"].isin(table["item_id"])].set_index("item_id").loc[table["item_id"].iloc[:5]]
    conversations = [[{"role": m["role"], "content": m["content"]} for m in p] for p in sample["prompt"]]
    replies = [[ANSWER_REPLY.format(o) for o in options] for options in sample["options"]]
    for step, folder in ((0, tiny_model_dir), (3, run["dir"])):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        scores = score_conversations(model, load_tokenizer(str(folder)), conversations, replies)
        logprobs = [np.array([value for value, _ in item]) for item in scores]
        expected = [np.exp(v - v.max()) / np.exp(v - v.max()).sum() for v in logprobs]
        got = table[table["step"] == step]["option_probs"].tolist()
        for e, g in zip(expected, got):
            assert np.asarray(g) == pytest.approx(e, abs=1e-4), f"step {step}"
        gold = sample["answer_index"].to_numpy()
        accuracy = float(np.mean([np.argmax(e) == g for e, g in zip(expected, gold)]))
        assert points.set_index("step").loc[step, "dev_score_accuracy"] == pytest.approx(accuracy)
        assert points.set_index("step").loc[step, "dev_expected_accuracy"] == pytest.approx(
            np.mean([e[g] for e, g in zip(expected, gold)]), abs=1e-4)


def test_dag_learning_table_with_score_mode_and_curves(tmp_path, tiny_model_dir):
    """A small DAG where the tiny model is scored zero-shot and after GRPO with learning curves: the trained
    predictor's summary row is paired with its base on the same items, and results/learning.tsv has the base,
    trained and baseline rows of the benchmark splits and the curve's dev rows."""
    sections = tiny_training(tiny_model_dir, curves={"every": 1, "items": 4, "batch_size": 4})
    sections["models"]["tiny"]["mode"] = "score"
    sections["inference"] = {"models": ["tiny"], "styles": ["direct"], "score_items_per_split": 6, "chunk_size": 3}
    config_for(tmp_path, **sections, evaluation={"baselines": ["global_majority", "national_label"], "seeds": [0],
                                                 "bootstrap": 50})
    snakemake(tmp_path)
    summary = pd.read_csv(tmp_path / "results/summary.tsv", sep="\t", keep_default_na=False, dtype={"seed": str})
    trained = summary[summary["model"] == "tiny-direct-grpo-binary-score"].set_index("split")
    base = summary[summary["model"] == "tiny-direct-score"].set_index("split")
    assert (trained["base"] == "tiny-direct-score.tau~none.seed~0").all()
    for split in trained.index:
        assert float(trained.loc[split, BASE_PAIRED]) == pytest.approx(
            float(trained.loc[split, "accuracy"]) - float(base.loc[split, "accuracy"]))
    table = read_tsv(tmp_path / "results/learning.tsv")
    cross = table[table["split"] == "cross_demographic"]
    assert cross["role"].tolist() == ["base", "trained", "baseline", "baseline"]
    assert table[table["split"] == "dev"]["role"].tolist() == ["base", "trained"]
    assert (tmp_path / "results/plots/training_curves.png").stat().st_size > 0
    shutil.rmtree(tmp_path / "results/checkpoints", ignore_errors=True)

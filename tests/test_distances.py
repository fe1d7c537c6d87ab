"""Cross-value distance analysis: d_min / d_avg of held-out questions, accuracy beside them, rank correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dvmap.errors import DvmapError
from dvmap.evaluation.distances import (accuracy_table, base_model, correlations, question_distances,
                                        question_embeddings)


def test_distances_by_hand():
    embeddings = {"T1": np.array([1.0, 0.0]), "T2": np.array([0.0, 2.0]), "H1": np.array([3.0, 3.0]),
                  "H2": np.array([-1.0, 0.0])}
    table = question_distances(embeddings, ["H1", "H2"], ["T1", "T2"]).set_index("question_id")
    half = 1 - np.sqrt(0.5)  # H1 is 45 degrees from both
    assert table.loc["H1", "d_min"] == pytest.approx(half) and table.loc["H1", "d_avg"] == pytest.approx(half)
    assert table.loc["H2", "d_min"] == pytest.approx(1.0)  # orthogonal to T2, opposite to T1
    assert table.loc["H2", "d_avg"] == pytest.approx(1.5) and table.loc["H2", "nearest"] == "T2"
    with pytest.raises(DvmapError, match="missing: \\['H3'\\]"):
        question_distances(embeddings, ["H3"], ["T1"])


def test_base_model_names():
    assert base_model("smollm2-direct-grpo-binary") == "smollm2-direct"
    assert base_model("smollm2-direct-grpo-binary-score") == "smollm2-direct-score"
    assert base_model("knn") is None and base_model("smollm2-direct-score") is None


def breakdown_rows(predictor: str, model: str, accuracies: dict[str, float], split: str = "cross_value"):
    return [{"predictor": predictor, "model": model, "threshold": "none", "seed": "0", "split": split,
             "group_type": "question", "group": q, "metric": "accuracy", "value": v} for q, v in accuracies.items()]


def test_accuracy_table_and_correlations():
    distances = pd.DataFrame({"question_id": ["H1", "H2", "H3", "H4"], "d_min": [0.1, 0.2, 0.3, 0.4],
                              "d_avg": [0.5, 0.4, 0.6, 0.7], "nearest": ["T1"] * 4})
    base = {"H1": 0.5, "H2": 0.4, "H3": 0.3, "H4": 0.2}
    trained = {"H1": 0.9, "H2": 0.7, "H3": 0.5, "H4": 0.3}
    breakdown = pd.DataFrame(
        breakdown_rows("m-direct.tau~none.seed~0", "m-direct", base)
        + breakdown_rows("m-direct-grpo-binary.tau~0.0.seed~0", "m-direct-grpo-binary", trained)
        + breakdown_rows("m-direct.tau~none.seed~0", "m-direct", {"H1": 0.0}, split="cross_demographic"))
    table = accuracy_table(distances, breakdown)
    assert len(table) == 8
    row = table[(table["model"] == "m-direct-grpo-binary") & (table["question_id"] == "H2")].iloc[0]
    assert row["base_accuracy"] == pytest.approx(0.4) and row["accuracy_change"] == pytest.approx(0.3)
    assert table[table["model"] == "m-direct"]["accuracy_change"].isna().all()

    rho = correlations(table, n_boot=200, seed=1).set_index(["predictor", "distance", "measure"])
    first = rho.loc[("m-direct.tau~none.seed~0", "d_min", "accuracy")]
    assert first["spearman"] == pytest.approx(-1.0) and first["n_questions"] == 4
    assert first["ci_low"] <= first["spearman"] <= first["ci_high"]
    change = rho.loc[("m-direct-grpo-binary.tau~0.0.seed~0", "d_min", "accuracy_change")]
    assert change["spearman"] == pytest.approx(-1.0)  # changes 0.4, 0.3, 0.2, 0.1 as d_min grows
    assert rho.loc[("m-direct.tau~none.seed~0", "d_avg", "accuracy")]["spearman"] == pytest.approx(-0.8)
    assert ("m-direct.tau~none.seed~0", "d_min", "accuracy_change") not in rho.index


def test_embeddings_pool_the_last_hidden_state(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = ["How important is family in your life?", "Is work important?", "Trust?"]
    together = question_embeddings(texts, str(tiny_model_dir), batch_size=3)
    alone = np.stack([question_embeddings([t], str(tiny_model_dir))[0] for t in texts])
    assert together == pytest.approx(alone, abs=1e-4), "padding must not change a question's vector"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        states = model(**tokenizer(texts[0], return_tensors="pt"), output_hidden_states=True).hidden_states[-1][0]
    assert together[0] == pytest.approx(states.mean(0).numpy(), abs=1e-4)
    last = question_embeddings(texts[:1], str(tiny_model_dir), pooling="last")
    assert last[0] == pytest.approx(states[-1].numpy(), abs=1e-4)
    with pytest.raises(DvmapError, match="pooling"):
        question_embeddings(texts, str(tiny_model_dir), pooling="max")

"""Cross-value distance analysis: how far each held-out question is from the training questions, beside accuracy.

DVMap's paper relates cross-value generalisation to the semantic distance between a held-out question and the
questions the model was trained on (as the team's issue #14 describes it; the release has no code for it): per
held-out question, the nearest distance d_min and the average distance d_avg, cosine distances between question
embeddings from the evaluated model. Here the embedding of a question's
text is the mean (or the last token) of the model's last hidden state over its tokens; each held-out question gets
d_min, d_avg and its nearest training question, and beside them every predictor's accuracy on that question
(``cross_value``, from the evaluation breakdown) and, for a trained model, the change from its base model. Spearman
rank correlations between the distances and those accuracies come with a percentile bootstrap CI over questions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DvmapError

#: How a question's token states become one vector (config evaluation.distances.pooling).
POOLINGS = ("mean", "last")
#: The trained-model suffix of a predictor's model name (``{base}-grpo-{reward}``) before an optional mode suffix.
TRAINED = "-grpo-"


def question_embeddings(texts: list[str], model_dir: str, pooling: str = "mean", batch_size: int = 16
                        ) -> np.ndarray:
    """One vector per text: the model's last hidden state pooled over the text's tokens (``mean`` or ``last``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if pooling not in POOLINGS:
        raise DvmapError(f"evaluation.distances.pooling must be one of {list(POOLINGS)}, not {pooling!r}")
    if not (Path(model_dir) / "config.json").is_file():
        raise DvmapError(f"{model_dir}: not a loadable model directory (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="right")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    except OSError as exc:
        raise DvmapError(f"{model_dir}: not a loadable model directory ({exc})") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True)
            states = model(**batch, output_hidden_states=True).hidden_states[-1].float()
            mask = batch["attention_mask"][..., None].float()
            if pooling == "mean":
                vectors.append((states * mask).sum(1) / mask.sum(1))
            else:
                vectors.append(states[torch.arange(len(states)), batch["attention_mask"].sum(1) - 1])
    return torch.cat(vectors).numpy()


def question_distances(embeddings: dict[str, np.ndarray], heldout: list[str], trained: list[str]) -> pd.DataFrame:
    """Per held-out question: d_min, d_avg (cosine distances to the training questions) and the nearest one."""
    missing = sorted(set(heldout) - set(embeddings)) + sorted(set(trained) - set(embeddings))
    if missing or not trained or not heldout:
        raise DvmapError(f"question distances need held-out and training questions with texts (missing: {missing})")
    unit = {q: v / np.linalg.norm(v) for q, v in embeddings.items()}
    train = np.stack([unit[q] for q in trained])
    rows = []
    for question in heldout:
        distance = 1.0 - train @ unit[question]
        rows.append({"question_id": question, "d_min": float(distance.min()), "d_avg": float(distance.mean()),
                     "nearest": trained[int(distance.argmin())]})
    return pd.DataFrame(rows)


def base_model(model: str) -> str | None:
    """The base model's predictor model name of a trained one ("M-S-grpo-R[-score]" -> "M-S[-score]"), else None."""
    if TRAINED not in model:
        return None
    base, _, rest = model.partition(TRAINED)
    return base + ("-score" if rest.endswith("-score") else "")


def accuracy_table(distances: pd.DataFrame, breakdown: pd.DataFrame) -> pd.DataFrame:
    """One row per (predictor, held-out question): the distances, the accuracy on ``cross_value`` and, for a trained
    model, its base model's accuracy on the same question and the change (same threshold-free base: tau none)."""
    rows = breakdown[(breakdown["split"] == "cross_value") & (breakdown["group_type"] == "question")
                     & (breakdown["metric"] == "accuracy")]
    if rows.empty:
        raise DvmapError("the breakdown has no cross_value accuracy by question (is cross_value evaluated?)")
    rows = rows[~rows["seed"].astype(str).isin(["mean"])]
    table = rows[["predictor", "model", "threshold", "group", "value"]].rename(
        columns={"group": "question_id", "value": "accuracy"})
    table = distances.merge(table, on="question_id", how="inner")
    base = table[["model", "question_id", "accuracy"]].drop_duplicates(["model", "question_id"])
    base = base.rename(columns={"model": "base_model", "accuracy": "base_accuracy"})
    table["base_model"] = table["model"].map(base_model)
    table = table.merge(base, on=["base_model", "question_id"], how="left")
    table["accuracy_change"] = table["accuracy"] - table["base_accuracy"]
    columns = ["predictor", "model", "threshold", "question_id", "nearest", "d_min", "d_avg", "accuracy",
               "base_model", "base_accuracy", "accuracy_change"]
    return table[columns].sort_values(["predictor", "question_id"], kind="stable").reset_index(drop=True)


def correlations(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Spearman's rho of d_min and d_avg with accuracy and with the change from the base model, per predictor,
    with a 95% percentile bootstrap CI over the held-out questions (resampled with replacement, seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for predictor, group in table.groupby("predictor", sort=True):
        for measure in ("accuracy", "accuracy_change"):
            values = group[["d_min", "d_avg", measure]].dropna()
            if len(values) < 3:
                continue
            draws = rng.integers(0, len(values), size=(n_boot, len(values)))
            for distance in ("d_min", "d_avg"):
                x, y = values[distance].to_numpy(), values[measure].to_numpy()
                rho = _spearman(x, y)
                boot = np.array([_spearman(x[d], y[d]) for d in draws])
                boot = boot[np.isfinite(boot)]
                low, high = np.quantile(boot, [0.025, 0.975]) if len(boot) else (np.nan, np.nan)
                rows.append({"predictor": predictor, "distance": distance, "measure": measure,
                             "n_questions": len(values), "spearman": rho, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["predictor", "distance", "measure", "n_questions", "spearman", "ci_low",
                                       "ci_high"])


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    from scipy.stats import spearmanr   # here: scipy.stats costs every dvmap command half a second at start-up

    return float(spearmanr(x, y).statistic)

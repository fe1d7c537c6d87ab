"""Before/after table of trained models (the learning recipe): per split, each trained model beside its base model
and the baselines, with the paired difference trained − base and its cluster-bootstrap CI.

The benchmark splits come from the evaluation summary (a trained model's row carries ``accuracy_vs_base``, paired on
the same items as its base model's). The ``dev`` rows come from a run's learning curve (``dev_curve.parquet``, see
dvmap.training.curves): its first step is the model GRPO starts from (the base model, or its SFT warm-up when
``training.sft.enabled``) and its last the trained one, scored on the same fixed dev
sample, so the paired difference is last − first, with the profile bootstrap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import PAIRED
from .metrics import Evaluation

#: Baselines shown beside the models, when the summary has them.
LEARNING_BASELINES = ("global_majority", "national_label", "knn", "gbt")
#: Columns of the table: one row per (run, split, predictor).
LEARNING_COLUMNS = ("run", "split", "role", "predictor", "n_items", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                    "expected_accuracy", "vs_base", "vs_base_ci_low", "vs_base_ci_high")
#: The summary's columns of the paired difference with the base model.
BASE_PAIRED = "accuracy_vs_base"


def learning_table(summary: pd.DataFrame, curves: dict[str, pd.DataFrame], n_boot: int = 1000, seed: int = 0
                   ) -> pd.DataFrame:
    """The before/after rows of every trained model in ``summary`` (rows with a ``base``), and of every run's
    learning curve in ``curves`` ({run: the curve's prediction table with its ``step`` column})."""
    rows = []
    trained = summary[summary["base"].fillna("").astype(str) != ""] if "base" in summary.columns else summary[:0]
    for _, row in trained.iterrows():
        split, run = row["split"], row["predictor"]
        same = summary[(summary["split"] == split) & (summary["protocol"] == row["protocol"])]
        base = same[same["predictor"] == row["base"]]
        if len(base):
            rows.append(_summary_row(run, "base", base.iloc[0]))
        rows.append({**_summary_row(run, "trained", row), "vs_base": row[BASE_PAIRED],
                     "vs_base_ci_low": row[f"{BASE_PAIRED}_ci_low"], "vs_base_ci_high": row[f"{BASE_PAIRED}_ci_high"]})
        for kind in LEARNING_BASELINES:
            baseline = same[(same["model"] == kind) & (same["threshold"].astype(str) == str(row["threshold"]))]
            if len(baseline):
                rows.append(_summary_row(run, "baseline", baseline.iloc[0]))
    for run, curve in curves.items():
        rows += _curve_rows(run, curve, n_boot, seed)
    return pd.DataFrame(rows, columns=list(LEARNING_COLUMNS))


def _summary_row(run: str, role: str, row: pd.Series) -> dict:
    return {"run": run, "split": row["split"], "role": role, "predictor": row["predictor"],
            "n_items": int(row["n_items"]), "accuracy": row["accuracy"], "accuracy_ci_low": row["accuracy_ci_low"],
            "accuracy_ci_high": row["accuracy_ci_high"], "expected_accuracy": row["expected_accuracy"]}


def _curve_rows(run: str, curve: pd.DataFrame, n_boot: int, seed: int) -> list[dict]:
    """The dev rows of one learning curve: its first step (base) and last step (trained, paired with the first)."""
    steps = sorted(curve["step"].unique())
    if len(steps) < 2:
        return []
    first = curve[curve["step"] == steps[0]].drop(columns="step").reset_index(drop=True)
    last = curve[curve["step"] == steps[-1]].drop(columns="step").set_index("item_id").loc[first["item_id"]]
    last = last.reset_index()
    reference = first["prediction_index"].to_numpy(dtype=float, na_value=np.nan)
    rows = []
    for role, table, paired in (("base", first, None), ("trained", last, reference)):
        metrics = Evaluation(table, n_boot=n_boot, seed=seed, unit="profile", reference_index=paired).table()
        row = {"run": run, "split": "dev", "role": role, "predictor": f"{run} step {steps[0 if paired is None else -1]}",
               "n_items": len(table), "accuracy": metrics["accuracy"][0], "accuracy_ci_low": metrics["accuracy"][1],
               "accuracy_ci_high": metrics["accuracy"][2], "expected_accuracy": metrics["expected_accuracy"][0]}
        if paired is not None:
            row.update(vs_base=metrics[PAIRED][0], vs_base_ci_low=metrics[PAIRED][1], vs_base_ci_high=metrics[PAIRED][2])
        rows.append(row)
    return rows

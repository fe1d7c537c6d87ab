"""Evaluation: every predictor's metrics per split, overall and by country, question and attribute, with CIs."""

from __future__ import annotations

import logging

import pandas as pd

from .items import attribute_columns
from .metrics import METRICS, Evaluation

log = logging.getLogger(__name__)
KEYS = ["predictor", "model", "threshold", "seed", "split"]


def evaluate(predictions: list[pd.DataFrame], n_boot: int = 1000, seed: int = 0
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, breakdown) of prediction tables: see :func:`evaluate_predictions` and :func:`merge_summaries`."""
    parts = [evaluate_predictions(frame, n_boot, seed) for frame in predictions]
    return merge_summaries([p[0] for p in parts]), pd.concat([p[1] for p in parts], ignore_index=True)


def evaluate_predictions(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary rows (one per predictor and split: metrics, 95% CIs, fallback rate) and the long breakdown by
    country, question and each attribute."""
    summary, breakdown = [], []
    for key, group in frame.groupby(KEYS, sort=False, dropna=False):
        log.info("evaluating %s on %s (%d items)", key[0], key[-1], len(group))
        evaluation = Evaluation(group, n_boot=n_boot, seed=seed)
        row = {**dict(zip(KEYS, key)), "seed": _seed_label(key[3]), "n_items": len(group),
               "fallback_rate": float(group["fallback"].notna().mean())}
        for metric, (value, low, high) in evaluation.table().items():
            row.update({metric: value, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        summary.append(row)
        breakdown += _breakdown(evaluation, {**dict(zip(KEYS, key)), "seed": _seed_label(key[3])})
    return pd.DataFrame(summary), pd.DataFrame(breakdown)


def merge_summaries(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One summary table, with mean ± sd across seeds where a model has several seeds at a threshold."""
    summary = pd.concat(parts, ignore_index=True)
    summary["seed"] = summary["seed"].astype(str).replace({"nan": ""})
    summary = pd.concat([summary, _across_seeds(summary)], ignore_index=True)
    columns = KEYS + ["n_items", "fallback_rate"] + [f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")]
    summary = summary.reindex(columns=columns + [f"{m}_sd" for m in METRICS])
    return summary.sort_values(KEYS, kind="stable").reset_index(drop=True)


def _seed_label(seed) -> str:
    return "" if pd.isna(seed) else str(int(seed))


def _breakdown(evaluation: Evaluation, key: dict) -> list[dict]:
    items = evaluation.items
    groupings = {"country": "Country", "question": "question_id",
                 **{f"attribute:{a}": a for a in attribute_columns(items) if a != "Country"}}
    rows = []
    for group_type, column in groupings.items():
        values = items[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            for metric, (point, low, high) in evaluation.table(mask).items():
                rows.append({**key, "group_type": group_type, "group": value, "n_items": int(mask.sum()),
                             "metric": metric, "value": point, "ci_low": low, "ci_high": high})
    return rows


def _across_seeds(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd across seeds for each (model, threshold, split) that has more than one seed."""
    seeded = summary[summary["seed"] != ""]
    rows = []
    for (model, threshold, split), group in seeded.groupby(["model", "threshold", "split"], sort=False):
        if len(group) < 2:
            continue
        row = {"predictor": f"{model}.tau~{threshold}.seeds", "model": model, "threshold": threshold,
               "seed": "mean", "split": split, "n_items": int(group["n_items"].iloc[0]),
               "fallback_rate": float(group["fallback_rate"].mean())}
        for metric in METRICS:
            row[metric] = float(group[metric].mean())
            row[f"{metric}_sd"] = float(group[metric].std(ddof=1))
        rows.append(row)
    return pd.DataFrame(rows)

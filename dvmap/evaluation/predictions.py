"""The one prediction schema every predictor writes (baselines now, LLMs later), so evaluation has one path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DvmapError
from ..schema import PREDICTION_COLUMNS, attribute_columns, predictor_name

def prediction_table(items: pd.DataFrame, prediction_index, model: str, threshold: str, seed: int | None,
                     raw_output=None, fallback=None) -> pd.DataFrame:
    """Predictions in the shared schema; ``prediction_index`` is -1 (or NaN) where the output was unparseable."""
    values = np.asarray(prediction_index, dtype=float)
    index = pd.array(np.where(values >= 0, values, np.nan), dtype="Int64")
    options = items["options"].to_numpy()
    out = pd.DataFrame({
        "item_id": items["item_id"].to_numpy(),
        "predictor": predictor_name(model, threshold, seed),
        "model": model,
        "threshold": threshold,
        "seed": pd.array([seed] * len(items), dtype="Int64"),
        "split": items["split"].to_numpy(),
        "question_id": items["question_id"].to_numpy(),
        "category": items["category"].to_numpy(),
        "options": [list(o) for o in options],
        "answer": items["answer"].to_numpy(),
        "answer_index": items["answer_index"].to_numpy(),
        "prediction": [None if pd.isna(i) else o[int(i)] for i, o in zip(index, options)],
        "prediction_index": index,
        "raw_output": pd.array([None] * len(items) if raw_output is None else list(raw_output), dtype="string"),
        "fallback": pd.array([None] * len(items) if fallback is None else list(fallback), dtype="string"),
    })
    for attribute in attribute_columns(items):
        out[attribute] = items[attribute].to_numpy()
    return out


def check_predictions(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise DvmapError(f"{where}: not in the prediction schema, missing columns {missing}")
    if frame["item_id"].duplicated().any():
        raise DvmapError(f"{where}: duplicate item_id {frame['item_id'][frame['item_id'].duplicated()].iloc[0]!r}")
    return frame

"""The one prediction schema every predictor writes (baselines now, LLMs later), so evaluation has one path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DvmapError
from ..io import read_compact
from ..schema import PREDICTIONS, attribute_columns, check_table, predictor_name


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
        "prediction": pd.array([None if pd.isna(i) else o[int(i)] for i, o in zip(index, options)], dtype="string"),
        "prediction_index": index,
        "raw_output": pd.array([None] * len(items) if raw_output is None else list(raw_output), dtype="string"),
        "fallback": pd.array([None] * len(items) if fallback is None else list(fallback), dtype="string"),
    })
    for attribute in attribute_columns(items):
        out[attribute] = items[attribute].to_numpy()
    return out


def read_predictions(path, command: str) -> pd.DataFrame:
    """The prediction table at ``path``, checked for ``dvmap command`` (:func:`check_predictions`), in little memory
    (:func:`~dvmap.io.read_compact`: labels as categoricals, one shared tuple per distinct option list)."""
    return check_predictions(read_compact(path, plain=("item_id", "raw_output")), path, command)


def check_predictions(frame: pd.DataFrame, where: str, command: str = "evaluate") -> pd.DataFrame:
    """``frame`` if it is a prediction table (:data:`PREDICTIONS`) with unique item ids and every answer_index and
    prediction_index (where parsed) an index of its options; else a DvmapError naming ``where``."""
    check_table(frame, PREDICTIONS, where, command)
    if frame["item_id"].duplicated().any():
        raise DvmapError(f"{where}: duplicate item_id {frame['item_id'][frame['item_id'].duplicated()].iloc[0]!r}")
    sizes = np.array([len(o) if hasattr(o, "__len__") else 0 for o in frame["options"]])
    for column in ("answer_index", "prediction_index"):
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        bad = (values < 0) | (values >= sizes) | (np.isnan(values) & (column == "answer_index"))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DvmapError(f"{where}: row {row} (item {frame['item_id'].iloc[row]!r}): {column} {values[row]:g} "
                             f"is not an index of its {sizes[row]} options")
    return frame

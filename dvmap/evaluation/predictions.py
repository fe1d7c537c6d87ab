"""The one prediction schema every predictor writes (baselines now, LLMs later), so evaluation has one path.

Besides :data:`~dvmap.schema.PREDICTION_COLUMNS`, :func:`prediction_table` copies the respondents of each item's
profile from items that carry them — ``n`` and ``counts`` (answer counts per option, in option order), null where
the items have none (items imported from DVMap's release) — so that evaluation needs no join with the items;
:func:`check_predictions` accepts files without them. The list columns ``option_probs`` and ``counts`` are kept as
Arrow lists (:data:`LIST_COLUMNS`), never as one Python object per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DvmapError
from ..io import read_compact
from ..schema import PREDICTIONS, attribute_columns, check_table, predictor_name

#: Optional columns of a prediction table: the respondents of the item's profile, copied from the items.
RESPONDENT_COLUMNS = ("n", "counts")
#: List columns read and kept as Arrow lists (a flat buffer, not a Python list per row).
LIST_COLUMNS = ("option_probs", "counts")
#: How far the sum of an item's option_probs may be from 1.
PROBABILITY_TOLERANCE = 1e-6


def prediction_table(items: pd.DataFrame, prediction_index, model: str, threshold: str, seed: int | None,
                     raw_output=None, fallback=None, option_probs=None) -> pd.DataFrame:
    """Predictions in the shared schema; ``prediction_index`` is -1 (or NaN) where the output was unparseable;
    ``option_probs``: per item the predicted distribution over its options (same order, summing to 1), or None
    where the predictor gives none (a single greedy generation); a list of lists / arrays / None, or an Arrow list
    array (see :func:`option_probs_column`). The items' ``n`` and ``counts`` are copied (null where absent)."""
    values = np.asarray(prediction_index, dtype=float)
    index = pd.array(np.where(values >= 0, values, np.nan), dtype="Int64")
    options = list_array(items["options"], len(items), pa.string())
    out = pd.DataFrame({
        "item_id": items["item_id"].to_numpy(),
        "predictor": predictor_name(model, threshold, seed),
        "model": model,
        "threshold": threshold,
        "seed": pd.array([seed] * len(items), dtype="Int64"),
        "split": items["split"].to_numpy(),
        "question_id": items["question_id"].to_numpy(),
        "category": items["category"].to_numpy(),
        "options": _arrow_series(options),
        "answer": items["answer"].to_numpy(),
        "answer_index": items["answer_index"].to_numpy(),
        "prediction": pd.array(_chosen(options, values), dtype="string"),
        "prediction_index": index,
        "option_probs": option_probs_column(option_probs, len(items)),
        "raw_output": pd.array([None] * len(items) if raw_output is None else list(raw_output), dtype="string"),
        "fallback": pd.array([None] * len(items) if fallback is None else list(fallback), dtype="string"),
        "n": (pd.to_numeric(items["n"], errors="coerce").to_numpy(dtype=float) if "n" in items.columns
              else np.full(len(items), np.nan)),
        "counts": counts_column(items["counts"] if "counts" in items.columns else None, len(items)),
    })
    for attribute in attribute_columns(items):
        out[attribute] = items[attribute].to_numpy()
    return out


def _chosen(options: pa.ListArray, index: np.ndarray) -> pa.Array:
    """Per item the option at ``index`` (null where the index is NaN, negative or past the item's options)."""
    offsets = options.offsets.to_numpy()
    lengths = np.diff(offsets)
    valid = (index >= 0) & (index < lengths)            # NaN compares False
    position = offsets[:-1] + np.where(valid, index, 0).astype(np.int64)
    return pc.take(options.values, pa.array(position, mask=~valid))


def option_probs_column(values, n: int) -> pd.Series:
    """The option_probs column of ``n`` items: an Arrow-backed list<double> column, null where an item has none.
    ``values``: None (no item has any), a sequence of lists / arrays / None, or an Arrow list array (or a Series
    backed by one)."""
    return _arrow_series(list_array(values, n, pa.float64()))


def counts_column(values, n: int) -> pd.Series:
    """The counts column of ``n`` items: an Arrow-backed list<int64> column, null where an item has none."""
    array = list_array(values, n, pa.float64())
    flat = pc.list_flatten(array).to_numpy(zero_copy_only=False)
    if len(flat) and not (np.isfinite(flat) & (flat >= 0) & (flat == np.round(flat))).all():
        raise DvmapError("counts: answer counts must be whole numbers >= 0")
    return _arrow_series(array.cast(pa.list_(pa.int64())))


def _arrow_series(array: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def list_array(values, n: int | None = None, value_type: pa.DataType = pa.float64()) -> pa.ListArray:
    """``values`` as one Arrow list<value_type> array: an Arrow (chunked) list array, a Series (Arrow-backed, or of
    lists / tuples / numpy arrays, anything else null), a sequence of those, or None (``n`` nulls)."""
    target = pa.list_(value_type)
    if values is None:
        return pa.nulls(n or 0, type=target)
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.ArrowDtype):
        values = values.array
    if isinstance(values, pd.arrays.ArrowExtensionArray):
        values = values.__arrow_array__()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], type=values.type)
    if isinstance(values, pa.Array):
        array = values
    else:
        rows = [v if isinstance(v, (list, tuple, np.ndarray)) else None for v in values]
        array = pa.array(rows, type=target)
    if isinstance(array.type, pa.LargeListType) or array.type != target:
        array = array.cast(target)
    if n is not None and len(array) != n:
        raise DvmapError(f"{len(array)} lists for {n} items")
    return array


def list_rows(values, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A list column laid out flat, ``k[i]`` values per item in item order (the layout of ``np.repeat(items, k)``):
    (float64 values, 0 where an item's list is null or not ``k[i]`` long; per item the length of its list, -1 where
    null). ``values`` as :func:`list_array` takes them."""
    k = np.asarray(k, dtype=np.int64)
    array = list_array(values, len(k))
    lengths = pc.fill_null(pc.list_value_length(array), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.fill_null(pc.list_flatten(array), np.nan).to_numpy(zero_copy_only=False).astype(float, copy=False)
    sizes = np.maximum(lengths, 0)
    source = np.cumsum(sizes) - sizes                   # where each item's values start among the flattened ones
    target = np.cumsum(k) - k                           # ... and in the layout
    out = np.zeros(int(k.sum()))
    rows = np.flatnonzero(lengths == k)
    if len(rows):
        ramp = np.arange(int(k[rows].sum())) - np.repeat(np.cumsum(k[rows]) - k[rows], k[rows])
        out[np.repeat(target[rows], k[rows]) + ramp] = flat[np.repeat(source[rows], k[rows]) + ramp]
    return out, lengths


def read_predictions(path, command: str) -> pd.DataFrame:
    """The prediction table at ``path``, checked for ``dvmap command`` (:func:`check_predictions`), in little memory
    (:func:`~dvmap.io.read_compact`: labels as categoricals, one shared tuple per distinct option list; the list
    columns :data:`LIST_COLUMNS` as Arrow lists)."""
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc
    lists = [c for c in LIST_COLUMNS if c in names]
    frame = read_compact(path, columns=[c for c in names if c not in lists], plain=("item_id", "raw_output"))
    if lists:
        try:
            table = pq.read_table(path, columns=lists)
        except (OSError, pa.ArrowException) as exc:
            raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc
        for name in lists:
            frame[name] = _arrow_series(table[name].combine_chunks() if table[name].num_chunks
                                        else pa.array([], type=table[name].type))
        frame = frame[[c for c in names if c in frame.columns]]
    return check_predictions(frame, path, command)


def check_predictions(frame: pd.DataFrame, where: str, command: str = "evaluate") -> pd.DataFrame:
    """``frame`` if it is a prediction table (:data:`PREDICTIONS`) with unique item ids, every answer_index and
    prediction_index (where parsed) an index of its options, every option_probs (where given) one probability per
    option summing to 1 and every counts (where given, the column is optional) one count >= 0 per option; else a
    DvmapError naming ``where``."""
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
    for column in LIST_COLUMNS:
        if column in frame.columns:
            _check_lists(frame, column, sizes, where)
    return frame


def _check_lists(frame: pd.DataFrame, column: str, sizes: np.ndarray, where: str) -> None:
    """A DvmapError naming the first row whose ``column`` list is not one value per option (>= 0; probabilities
    summing to 1)."""
    values, lengths = list_rows(frame[column], sizes)
    item = np.repeat(np.arange(len(sizes)), sizes)
    wrong = (lengths >= 0) & (lengths != sizes)
    negative = np.bincount(item, weights=~(np.isfinite(values) & (values >= 0)), minlength=len(sizes)) > 0
    bad = wrong | ((lengths >= 0) & negative)
    what = "values >= 0"
    if column == "option_probs":
        total = np.bincount(item, weights=np.where(np.isfinite(values), values, 0.0), minlength=len(sizes))
        bad |= (lengths >= 0) & (np.abs(total - 1) > PROBABILITY_TOLERANCE)
        what = "probabilities summing to 1"
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = frame[column].iloc[row]
        raise DvmapError(f"{where}: row {row} (item {frame['item_id'].iloc[row]!r}): {column} {list(shown)} is not "
                         f"{sizes[row]} {what}, one per option")

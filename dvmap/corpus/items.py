"""The item table shared by corpus splits and benchmark splits: one row per (profile, question) with its label."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..survey.catalog import Question
from ..errors import DvmapError
from ..io import to_frame
from ..schema import EXTRA_COLUMNS, ITEM_COLUMNS, attribute_columns

log = logging.getLogger(__name__)



#: splits.ties: what happens to a (profile, question) pair whose modal answer is tied between options.
TIE_POLICIES = ("drop", "random")


def items_from_archetypes(table: pa.Table | pd.DataFrame, catalog: dict[str, Question], split: str,
                          data_source: str, ties: str = "drop", seed: int = 0) -> pd.DataFrame:
    """Turn archetype rows into items labelled with their modal answer (frequency is added per split later).
    A tied modal answer is dropped or drawn among the tied options (``ties``, seeded), never the first option."""
    frame = to_frame(table)
    frame["item_id"] = frame["profile_id"] + ":" + frame["question_id"]
    frame = break_ties(frame, catalog, ties, seed)
    # the catalog is looked up once per question and once per (question, answer), in order of first appearance
    codes, ids = pd.factorize(frame["question_id"], use_na_sentinel=False)
    questions = [catalog[q] for q in ids]
    frame["category"] = np.array([q.section for q in questions] + [None], dtype=object)[codes].tolist()
    frame["question"] = np.array([q.text for q in questions] + [None], dtype=object)[codes].tolist()
    frame["options"] = [list(questions[c].options) for c in codes]
    answers, labels = pd.factorize(frame["answer"], use_na_sentinel=False)
    pairs = pd.factorize(codes * max(len(labels), 1) + answers)[0]
    first = np.unique(pairs, return_index=True)[1]
    index = [questions[codes[row]].option_index(labels[answers[row]]) for row in first]
    frame["answer_index"] = np.array(index, dtype=np.int64)[pairs].tolist()  # a list, as before (empty: float)
    frame["split"] = split
    frame["data_source"] = data_source
    frame["frequency"] = 0.0
    return order_items(add_frequency(frame))


def tied_pairs(table: pa.Table | pd.DataFrame) -> np.ndarray:
    """Whether each row's answer counts have their maximum at more than one option."""
    return _top_options(table["counts"])[2] > 1


def break_ties(frame: pd.DataFrame, catalog: dict[str, Question], policy: str, seed: int) -> pd.DataFrame:
    """Rows with a tied modal answer dropped (``drop``) or relabelled with one of the tied options (``random``:
    chosen by a hash of the item id and ``seed``, so a pair gets the same label at every threshold)."""
    if policy not in TIE_POLICIES:
        raise DvmapError(f"splits.ties must be one of {list(TIE_POLICIES)}, not {policy!r}")
    is_top, offsets, n_top = _top_options(frame["counts"])
    tied = n_top > 1
    if not tied.any():
        return frame
    log.info("%d of %d pairs have a tied modal answer: %s", tied.sum(), len(frame),
             "dropped" if policy == "drop" else "drawn among the tied options")
    if policy == "drop":
        return frame[~tied].reset_index(drop=True)
    salted = frame["item_id"][tied].astype(str) + f"#{seed}"
    pick = pd.util.hash_pandas_object(salted, index=False).to_numpy() % n_top[tied].astype(np.uint64)
    rank = np.cumsum(is_top) - is_top  # top options before each element, counted from the table's start
    rank = rank - np.repeat(rank[offsets[:-1]], np.diff(offsets))  # ... counted from its row's start
    row = np.repeat(np.arange(len(frame)), np.diff(offsets))
    chosen = np.full(len(frame), -1)
    chosen[tied] = pick.astype(np.int64)
    hit = is_top & (rank == chosen[row])
    position = np.flatnonzero(hit) - offsets[row[hit]]
    frame = frame.copy()
    frame.loc[row[hit], "answer"] = [catalog[q].options[i] for q, i in
                                     zip(frame["question_id"].to_numpy()[row[hit]], position)]
    return frame


def _top_options(counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(per flattened count: is it its row's maximum; list offsets; per row: how many options reach it)."""
    if not len(counts):
        return np.zeros(0, dtype=bool), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    array = counts.combine_chunks() if isinstance(counts, pa.ChunkedArray) else pa.array(counts)
    flat = pc.list_flatten(array).to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.r_[0, np.cumsum(lengths)]
    top = np.maximum.reduceat(flat, offsets[:-1])
    is_top = flat == np.repeat(top, lengths)
    return is_top, offsets, np.add.reduceat(is_top.astype(np.int64), offsets[:-1])




def order_items(frame: pd.DataFrame, sort_rows: bool = True) -> pd.DataFrame:
    """Put columns in the canonical order and, unless told not to, rows in (question, profile) order."""
    columns = ["item_id", "profile_id", *attribute_columns(frame), *ITEM_COLUMNS[2:]]
    columns += [c for c in EXTRA_COLUMNS if c in frame.columns]
    frame = frame[columns]
    if sort_rows:
        frame = frame.sort_values(["question_id", "profile_id"], kind="stable")
    return frame.reset_index(drop=True)


def add_frequency(frame: pd.DataFrame) -> pd.DataFrame:
    """DVMap's frequency: the share of profiles in the same split, country and question giving this answer."""
    keys = ["split", "Country", "question_id"]
    same_answer = frame.groupby(keys + ["answer"], sort=False)["profile_id"].transform("size")
    same_question = frame.groupby(keys, sort=False)["profile_id"].transform("size")
    frame = frame.copy()
    frame["frequency"] = (same_answer / same_question).astype(float)
    return frame


#: How a sample of items is drawn: items independently, or whole profiles (every item of seeded profiles).
SAMPLE_UNITS = ("item", "profile")


def sample_items(items: pd.DataFrame, max_items: int | None, seed: int, unit: str = "item") -> pd.DataFrame:
    """At most ``max_items`` items, a seeded sample kept in the table's order (all items when None): of single items,
    or (``unit`` profile) every item of profiles taken in a seeded order, the last of them cut at ``max_items``."""
    if max_items is None or len(items) <= max_items:
        return items.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    if unit == "item":
        keep = rng.choice(len(items), size=max_items, replace=False)
    else:
        profiles = pd.unique(items["profile_id"])
        rank = pd.Series(np.arange(len(profiles)), index=rng.permutation(profiles))
        keep = np.argsort(rank.loc[items["profile_id"]].to_numpy(), kind="stable")[:max_items]
    return items.iloc[np.sort(keep)].reset_index(drop=True)

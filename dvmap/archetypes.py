"""Archetypes: per (profile, question) group size, answer distribution, entropy and modal answer.

``archetype_stats`` counts every (profile, question) once, as a vectorised pass over the respondents × questions
answer matrix; every consensus threshold is then a cheap filter of those statistics (``select_archetypes``), so a
sweep over K thresholds costs one pass over the respondents, not K.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Question
from .errors import DvmapError

MAJORITY = "majority"
#: Slack for comparing float entropies with a threshold (a consensus group has H = 0 exactly).
ENTROPY_EPS = 1e-9


def tau_label(tau: float | str) -> str:
    """Path label of a threshold: 'majority' or the float as written ('0.0', '0.5', '1.0')."""
    return MAJORITY if tau == MAJORITY else str(float(tau))


def parse_tau(label: str | float) -> float | str:
    """Inverse of :func:`tau_label`; a clear error for anything else."""
    if label == MAJORITY:
        return MAJORITY
    try:
        value = float(label)
    except (TypeError, ValueError):
        raise DvmapError(f"consensus threshold {label!r} is neither a number nor 'majority'") from None
    if not math.isfinite(value) or value < 0:
        raise DvmapError(f"consensus threshold {label!r} must be a finite entropy in bits >= 0")
    return value


def profile_attributes(columns, catalog: dict[str, Question]) -> list[str]:
    """The profile attribute columns of a respondents table: everything but the id and the questions."""
    return [c for c in columns if c != "respondent_id" and c not in catalog]


def profile_ids(profiles: pd.DataFrame) -> pa.Array:
    """Stable profile ids: the first 12 hex digits of the md5 of the attribute values joined by U+001F."""
    con = duckdb.connect()
    con.register("profiles", profiles)
    joined = ", ".join('"' + c.replace('"', '""') + '"' for c in profiles.columns)
    return con.sql(f"SELECT md5(concat_ws(chr(31), {joined}))[:12] AS id FROM profiles").to_arrow_table()["id"]


def profile_index(respondents: pd.DataFrame, attributes: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Each respondent's profile number, profiles numbered in lexicographic order of their attribute values."""
    key = np.zeros(len(respondents), dtype=np.int64)
    for a in attributes:
        codes, uniques = pd.factorize(respondents[a].astype(str), sort=True)
        key = key * len(uniques) + codes
    uniq, first, pidx = np.unique(key, return_index=True, return_inverse=True)
    profiles = respondents[attributes].iloc[first].astype(str).reset_index(drop=True)
    return pidx.reshape(-1), profiles


def answer_codes(column: pd.Series, question: Question) -> np.ndarray:
    """Option index (0 = first option) of each answer label; -1 for a missing answer."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    lookup = np.array([question.options.index(c) if c in question.options else -2
                       for c in column.cat.categories] + [-1], dtype=np.int8)
    codes = lookup[column.cat.codes.to_numpy()]
    if (codes == -2).any():
        bad = sorted(set(column[codes == -2].astype(str)))[:5]
        raise DvmapError(f"column {question.id}: answers {bad} are not options of {question.id}")
    return codes


def archetype_stats(respondents: pd.DataFrame, catalog: dict[str, Question]) -> pa.Table:
    """One row per (profile, question) with at least one answer.

    Columns: profile_id, the attributes, question_id, n, counts (answers per option, in option order), answer
    (modal option; ties go to the earlier option), answer_share (modal count / n), entropy (Shannon, bits).
    Rows are ordered by entropy, then catalog order, then profile, so the pairs of any threshold are a prefix.
    """
    attributes = profile_attributes(respondents.columns, catalog)
    questions = [q for q in catalog if q in respondents.columns]
    if not questions:
        raise DvmapError("the respondents table has no column of a catalog question")
    if respondents.empty:
        raise DvmapError("the respondents table is empty")
    pidx, profiles = profile_index(respondents, attributes)
    n_profiles = len(profiles)
    parts = []  # per question: profile rows, counts (rows × options), n, modal, share, entropy
    for q in questions:
        k = len(catalog[q].options)
        codes = answer_codes(respondents[q], catalog[q])
        seen = codes >= 0
        n = np.bincount(pidx[seen], minlength=n_profiles)
        rows = np.flatnonzero(n)
        tally = np.bincount(pidx[seen] * k + codes[seen], minlength=n_profiles * k).reshape(n_profiles, k)
        cell = tally[rows]
        parts.append((rows, cell, *_group_stats(cell, n[rows])))

    sizes = [len(part[0]) for part in parts]
    entropy = np.concatenate([part[5] for part in parts])
    order = _entropy_order(entropy)
    p_row = np.concatenate([part[0] for part in parts]).astype(np.int32)[order]
    q_col = np.repeat(np.arange(len(questions), dtype=np.int32), sizes)[order]
    n_options = np.array([len(catalog[q].options) for q in questions])
    flat, offsets = _reorder_counts([part[1] for part in parts], sizes, order, q_col, n_options)
    modal = np.concatenate([part[3] for part in parts])[order]
    label_offset = np.r_[0, np.cumsum(n_options)[:-1]]
    labels, label_index = np.unique([o for q in questions for o in catalog[q].options], return_inverse=True)

    columns = {"profile_id": pa.DictionaryArray.from_arrays(pa.array(p_row), profile_ids(profiles))}
    for a in attributes:  # dictionaries must hold distinct values, or parquet's encoding is not reproducible
        codes, values = pd.factorize(profiles[a], sort=True)
        columns[a] = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)[p_row]), pa.array(values))
    columns["question_id"] = pa.DictionaryArray.from_arrays(pa.array(q_col), pa.array(questions))
    columns["n"] = pa.array(np.concatenate([part[2] for part in parts]).astype(np.int32)[order])
    columns["counts"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
    columns["answer"] = pa.DictionaryArray.from_arrays(
        pa.array(label_index[label_offset[q_col] + modal].astype(np.int32)), pa.array(labels))
    columns["answer_share"] = pa.array(np.concatenate([part[4] for part in parts])[order])
    columns["entropy"] = pa.array(entropy[order])
    return pa.table(columns)


def _group_stats(cell: np.ndarray, n: np.ndarray):
    """n, modal option (first of the tied), modal share and entropy in bits for each row of a count matrix."""
    modal = cell.argmax(axis=1)
    top = cell[np.arange(len(cell)), modal]
    entropy = np.zeros(len(cell))
    mixed = np.flatnonzero(top < n)  # only groups that disagree have non-zero entropy
    if len(mixed):
        c, m = cell[mixed], n[mixed]
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy[mixed] = np.log2(m) - np.where(c > 0, c * np.log2(c), 0.0).sum(axis=1) / m
    return n, modal, top / n, entropy


def _entropy_order(entropy: np.ndarray) -> np.ndarray:
    """Stable order by entropy; consensus rows (H = 0, usually most) keep their order without a full sort."""
    zero = np.flatnonzero(entropy == 0)
    rest = np.flatnonzero(entropy != 0)
    return np.concatenate([zero, rest[np.argsort(entropy[rest], kind="stable")]])


def _reorder_counts(cells, sizes, order, q_col, n_options):
    """Flatten per-question count matrices into list values/offsets, rows taken in ``order``."""
    lengths = n_options[q_col]
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    row_start = np.r_[0, np.cumsum(sizes)[:-1]]  # first row of each question before ordering
    cell_start = np.r_[0, np.cumsum([c.size for c in cells])[:-1]]  # its first value in the flat array
    first_value = cell_start[q_col] + (order - row_start[q_col]) * lengths
    flat = np.concatenate([c.ravel() for c in cells]).astype(np.int32)
    return flat[np.repeat(first_value - offsets[:-1], lengths) + np.arange(offsets[-1])], offsets


def select_archetypes(stats: pa.Table, tau: float | str, min_group_size: int = 1) -> pa.Table:
    """Keep the pairs of threshold ``tau``: entropy <= tau bits (all of them for 'majority'), n >= min_group_size.

    The statistics are ordered by entropy, so a threshold is a prefix of them: a zero-copy slice.
    """
    if tau != MAJORITY:
        entropy = stats["entropy"].to_numpy()
        if (np.diff(entropy) < 0).any():
            raise DvmapError("archetype statistics are not ordered by entropy; rebuild them with archetype-stats")
        stats = stats.slice(0, int(np.searchsorted(entropy, float(tau) + ENTROPY_EPS, side="right")))
    if min_group_size > 1:
        stats = stats.filter(pc.greater_equal(stats["n"], int(min_group_size)))
    return stats


def profile_sizes(respondents: pd.DataFrame, catalog: dict[str, Question]) -> pd.Series:
    """Number of respondents per profile, indexed by profile_id."""
    attributes = profile_attributes(respondents.columns, catalog)
    pidx, profiles = profile_index(respondents, attributes)
    return pd.Series(np.bincount(pidx), index=profile_ids(profiles).to_pylist(), name="respondents")

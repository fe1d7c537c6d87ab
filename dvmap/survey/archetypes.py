"""Archetypes: per (profile, question) group size, answer distribution, entropy and modal answer.

``archetype_stats`` counts every (profile, question) once, as a vectorised pass over the respondents × questions
answer matrix; every consensus threshold is then a cheap filter of those statistics (``select_archetypes``), so a
sweep over K thresholds costs one pass over the respondents, not K.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Question
from ..errors import DvmapError

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


def archetype_stats(respondents: pd.DataFrame, catalog: dict[str, Question], threads: int | None = None) -> pa.Table:
    """One row per (profile, question) with at least one answer.

    Columns: profile_id, the attributes, question_id, n, counts (answers per option, in option order), answer
    (modal option; ties go to the earlier option), answer_share (modal count / n), entropy (Shannon, bits).
    Rows are ordered by entropy, then catalog order, then profile, so the pairs of any threshold are a prefix.
    The work is split over ``threads`` (default: the machine's cores); numpy releases the GIL in its kernels.
    """
    attributes = profile_attributes(respondents.columns, catalog)
    questions = [q for q in catalog if q in respondents.columns]
    if not questions:
        raise DvmapError("the respondents table has no column of a catalog question")
    if respondents.empty:
        raise DvmapError("the respondents table is empty")
    pidx, profiles = profile_index(respondents, attributes)
    n_options = np.array([len(catalog[q].options) for q in questions])
    answers = np.stack([answer_codes(respondents[q], catalog[q]) for q in questions])  # questions × respondents
    labels, label_index = np.unique([o for q in questions for o in catalog[q].options], return_inverse=True)
    label_offset = np.r_[0, np.cumsum(n_options)[:-1]]
    threads = threads or min(os.cpu_count() or 1, len(questions))
    with ThreadPoolExecutor(threads) as pool:
        grid, n_all, modal_all, share_all, entropy_all = _grid_stats(
            pool, answers, pidx, len(profiles), int(n_options.max()), threads)
        take = _EntropyOrder(entropy_all, n_all > 0)
        order = take(np.arange(len(n_all), dtype=np.int32))
        q_col, p_row = np.divmod(order, np.int32(len(profiles)))

        lengths = n_options[q_col].astype(np.int32)
        offsets = np.zeros(len(order) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.empty(offsets[-1], dtype=np.int32)
        filled = [pool.submit(take.consensus_counts, flat, offsets, n_all, modal_all),
                  pool.submit(take.mixed_counts, flat, offsets, grid, lengths)]

        def counts_column():
            for job in filled:
                job.result()
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))

        def attribute_column(name):  # distinct dictionary values, or parquet's encoding is not reproducible
            codes, values = pd.factorize(profiles[name], sort=True)
            return _dictionary(codes, p_row, pa.array(values))

        tasks = {  # the longest first (the counts, submitted above, are longest), so the threads finish together
            "answer": lambda: _dictionary(label_index, label_offset[q_col] + take(modal_all), pa.array(labels)),
            "profile_id": lambda: _dictionary(np.arange(len(profiles)), p_row, profile_ids(profiles)),
            "answer_share": lambda: pa.array(take(share_all)),
            "entropy": lambda: pa.array(take(entropy_all)),
            "n": lambda: pa.array(take(n_all)),
            "question_id": lambda: _dictionary(np.arange(len(questions)), q_col, pa.array(questions)),
            **{a: (lambda a=a: attribute_column(a)) for a in attributes},
            "counts": counts_column,
        }
        columns = dict(zip(tasks, pool.map(lambda task: task(), tasks.values())))
    order_of_columns = ["profile_id", *attributes, "question_id", "n", "counts", "answer", "answer_share", "entropy"]
    return pa.table({name: columns[name] for name in order_of_columns})


def _grid_stats(pool: ThreadPoolExecutor, answers: np.ndarray, pidx: np.ndarray, n_profiles: int, n_options: int,
                threads: int):
    """Counts, n, modal option (first of the tied), its share and entropy (bits) per (question, profile).

    ``answers`` is the questions × respondents matrix of option indices (-1 = missing). Result rows are
    (question, profile) pairs in question-major order. Each thread counts a block of questions with one bincount.
    """
    rows = len(answers) * n_profiles
    grid = np.empty((rows, n_options), dtype=np.int16 if len(pidx) < np.iinfo(np.int16).max else np.int32)
    n, modal, share, entropy = (np.empty(rows, dtype=t) for t in (np.int32, np.int8, np.float64, np.float64))

    def block(questions: np.ndarray) -> None:
        if not len(questions):
            return
        part = slice(questions[0] * n_profiles, (questions[-1] + 1) * n_profiles)
        codes = answers[questions]
        seen = codes >= 0
        key = (np.arange(len(codes), dtype=np.int64)[:, None] * n_profiles + pidx[None, :]) * n_options + codes
        g = grid[part]
        g[:] = np.bincount(key[seen], minlength=g.size).reshape(g.shape)
        n[part] = g.sum(axis=1, dtype=np.int32)
        modal[part] = g.argmax(axis=1)
        top = np.take_along_axis(g, modal[part][:, None].astype(np.intp), axis=1)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            share[part] = top / n[part]
        h = np.zeros(len(g))
        mixed = np.flatnonzero(top < n[part])  # only groups that disagree have non-zero entropy
        if len(mixed):
            size = n[part][mixed]
            c_log_c = np.r_[0.0, np.arange(1, size.max() + 1) * np.log2(np.arange(1, size.max() + 1))]
            h[mixed] = np.log2(size) - c_log_c[g[mixed]].sum(axis=1) / size
        entropy[part] = h

    list(pool.map(block, np.array_split(np.arange(len(answers)), threads)))
    return grid, n, modal, share, entropy


def _dictionary(codes: np.ndarray, rows: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    """The dictionary column whose row i holds ``values[codes[rows[i]]]``, with the narrowest index type."""
    dtype = np.int8 if len(values) <= 127 else np.int16 if len(values) <= 32767 else np.int32
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(dtype)[rows]), values)


class _EntropyOrder:
    """Present rows in stable entropy order: consensus rows (H = 0, usually most) first in their own order (a
    sequential compress, no sort), then the others sorted by entropy."""

    def __init__(self, entropy: np.ndarray, present: np.ndarray):
        self.zero = present & (entropy == 0)
        rest = np.flatnonzero(entropy != 0)
        self.rest = rest[np.argsort(entropy[rest], kind="stable")]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.concatenate([np.compress(self.zero, values, axis=0), values[self.rest]])

    def consensus_counts(self, flat: np.ndarray, offsets: np.ndarray, n: np.ndarray, modal: np.ndarray) -> None:
        """Fill the list values of the consensus rows: n at the modal option, 0 elsewhere."""
        n_zero = int(np.count_nonzero(self.zero))
        flat[: offsets[n_zero]] = 0
        flat[offsets[:n_zero] + np.compress(self.zero, modal)] = np.compress(self.zero, n)

    def mixed_counts(self, flat: np.ndarray, offsets: np.ndarray, grid: np.ndarray, lengths: np.ndarray) -> None:
        """Fill the list values of the other rows from the count grid, each cut to its number of options."""
        n_zero = len(offsets) - 1 - len(self.rest)
        flat[offsets[n_zero]:] = grid[self.rest][np.arange(grid.shape[1]) < lengths[n_zero:, None]]


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

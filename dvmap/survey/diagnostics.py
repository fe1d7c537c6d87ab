"""Filter diagnostics per consensus threshold: what the filter keeps, and how it shifts answers and profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import DIAGNOSTIC_COLUMNS, STAT_COLUMNS
from ..corpus.items import tied_pairs


def diagnostics(stats: pa.Table, kept: pa.Table, profile_sizes: pd.Series, dropped: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """A tidy table (section, key, country, category, metric, value) of one threshold's filter effect.

    Sections: ``summary`` (rows, profiles, respondents kept; singleton share), ``question_country`` (answer entropy
    of the full and kept data, Jensen–Shannon divergence between them), ``attribute`` (category shares of answers
    before and after), ``ties`` (kept pairs per country whose modal answer is tied: splits.ties drops or draws
    them), and, given the respondents' ``dropped`` report, ``respondent_filter`` (respondents per country and how
    many lacked each required attribute). ``profile_sizes`` maps profile_id to its number of respondents.
    Works on the Arrow tables' columns, summing counts with bincount: nothing per row becomes a Python object.
    """
    rows = []
    if dropped is not None:
        for record in dropped.itertuples(index=False):
            rows.append(("respondent_filter", record.attribute, record.country, "", "dropped", record.dropped))
        for country, total in dropped.groupby("country", sort=True)["respondents"].first().items():
            rows.append(("respondent_filter", "", country, "", "respondents", total))

    (profile_codes,), profiles = _codes(kept["profile_id"])
    kept_profiles = profiles[np.bincount(profile_codes, minlength=len(profiles)) > 0]
    sizes = profile_sizes.reindex(kept_profiles)
    n_kept = kept["n"].to_numpy()
    summary = {
        "rows_full": stats.num_rows, "rows_kept": kept.num_rows,
        "rows_kept_share": _ratio(kept.num_rows, stats.num_rows),
        "profiles_full": len(profile_sizes), "profiles_kept": len(kept_profiles),
        "profiles_kept_share": _ratio(len(kept_profiles), len(profile_sizes)),
        "respondents_full": int(profile_sizes.sum()), "respondents_kept": int(sizes.sum()),
        "respondents_kept_share": _ratio(int(sizes.sum()), int(profile_sizes.sum())),
        "singleton_profile_share": _ratio(int((sizes == 1).sum()), len(kept_profiles)),
        "singleton_row_share": _ratio(int((n_kept == 1).sum()), kept.num_rows),
    }
    rows += [("summary", "", "", "", metric, value) for metric, value in summary.items()]

    (q_full, q_kept), questions = _codes(stats["question_id"], kept["question_id"])
    (c_full, c_kept), countries = _codes(stats["Country"], kept["Country"])
    groups = len(questions) * len(countries)  # (question, country) pairs in sorted order
    g_full, g_kept = q_full * len(countries) + c_full, q_kept * len(countries) + c_kept
    # Summed counts zero-padded to the longest list: padding changes no sum, entropy or JSD.
    width = max(pc.max(pc.list_value_length(t["counts"])).as_py() or 0 for t in (stats, kept))
    sums_full = _summed_counts(stats["counts"], g_full, groups, width)
    sums_kept = _summed_counts(kept["counts"], g_kept, groups, width)
    for group in np.flatnonzero(np.bincount(g_full, minlength=groups)):
        qid, country = questions[group // len(countries)], countries[group % len(countries)]
        dist_full, dist_kept = sums_full[group], sums_kept[group]
        rows += [
            ("question_country", qid, country, "", "answers_full", dist_full.sum()),
            ("question_country", qid, country, "", "answers_kept", dist_kept.sum()),
            ("question_country", qid, country, "", "entropy_full", _entropy(dist_full)),
            ("question_country", qid, country, "", "entropy_kept", _entropy(dist_kept)),
            ("question_country", qid, country, "", "jsd", _jsd(dist_full, dist_kept)),
        ]

    batches = kept.select(["counts"]).to_batches()  # batch by batch, to bound tied_pairs' temporary arrays
    tied = np.concatenate([np.zeros(0, dtype=bool)] + [tied_pairs(batch) for batch in batches])
    tied = np.bincount(c_kept, weights=tied, minlength=len(countries))
    for code in np.flatnonzero(np.bincount(c_kept, minlength=len(countries))):
        rows.append(("ties", "", countries[code], "", "tied_pairs", int(tied[code])))

    n_full = stats["n"].to_numpy()
    for attribute in [c for c in stats.column_names if c not in STAT_COLUMNS]:
        (a_full, a_kept), categories = _codes(stats[attribute], kept[attribute])
        observed = np.bincount(a_full, minlength=len(categories)) > 0
        before = np.bincount(a_full, weights=n_full, minlength=len(categories)).astype(np.int64)[observed]
        after = np.bincount(a_kept, weights=n_kept, minlength=len(categories)).astype(np.int64)[observed]
        for category, count_full, count_kept in zip(categories[observed], before, after):
            rows.append(("attribute", attribute, "", category, "share_full", _ratio(count_full, before.sum())))
            rows.append(("attribute", attribute, "", category, "share_kept", _ratio(count_kept, after.sum())))
    return pd.DataFrame(rows, columns=list(DIAGNOSTIC_COLUMNS))


def _codes(*columns: pa.ChunkedArray) -> tuple[list[np.ndarray], np.ndarray]:
    """Each column's values as codes into the sorted distinct values of all of them (returned second)."""
    arrays = [column.combine_chunks() for column in columns]
    arrays = [a if pa.types.is_dictionary(a.type) else a.dictionary_encode() for a in arrays]
    dictionaries = [a.dictionary.cast(pa.string()) for a in arrays]
    values = pc.unique(pa.concat_arrays(dictionaries))
    values = values.take(pc.sort_indices(values))
    codes = [pc.index_in(d, value_set=values).to_numpy(zero_copy_only=False).astype(np.int32)
             [a.indices.to_numpy(zero_copy_only=False)] for a, d in zip(arrays, dictionaries)]
    return codes, np.array(values.to_pylist(), dtype=object)


def _summed_counts(counts: pa.ChunkedArray, groups: np.ndarray, n_groups: int, width: int) -> np.ndarray:
    """Per group (one of ``groups`` per list of ``counts``), the element-wise sum of its lists, zero-padded to
    ``width``: an (n_groups, width) integer array. Chunk by chunk, to bound the temporary arrays."""
    sums = np.zeros(n_groups * width, dtype=np.int64)
    start = 0
    for chunk in counts.chunks:
        lengths = pc.list_value_length(chunk).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.list_flatten(chunk).to_numpy(zero_copy_only=False)
        slots = np.repeat(groups[start:start + len(chunk)] * width - (np.cumsum(lengths) - lengths), lengths)
        sums += np.bincount(slots + np.arange(len(flat)), weights=flat, minlength=len(sums)).astype(np.int64)
        start += len(chunk)
    return sums.reshape(n_groups, width)


def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def _jsd(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits (0 = same distribution, 1 = disjoint); NaN if either is empty."""
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    p, q = a / a.sum(), b / b.sum()
    m = (p + q) / 2
    return float(0.5 * _kl(p, m) + 0.5 * _kl(q, m))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float((p[mask] * np.log2(p[mask] / q[mask])).sum())


def _ratio(a, b) -> float:
    return float(a) / float(b) if b else float("nan")


def sweep_table(per_threshold: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Summary metrics of every threshold side by side: one row per threshold."""
    rows = []
    for tau, table in per_threshold.items():
        summary = table[table["section"] == "summary"].set_index("metric")["value"]
        jsd = table[(table["section"] == "question_country") & (table["metric"] == "jsd")]["value"]
        rows.append({"tau": tau, **summary.to_dict(), "mean_jsd": float(np.nanmean(jsd)) if len(jsd) else np.nan})
    return pd.DataFrame(rows)

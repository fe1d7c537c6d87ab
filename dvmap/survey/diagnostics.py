"""Filter diagnostics per consensus threshold: what the filter keeps, and how it shifts answers and profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..io import to_frame
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
    """
    full = to_frame(stats)
    keep = to_frame(kept)
    rows = []
    if dropped is not None:
        for record in dropped.itertuples(index=False):
            rows.append(("respondent_filter", record.attribute, record.country, "", "dropped", record.dropped))
        for country, total in dropped.groupby("country", sort=True)["respondents"].first().items():
            rows.append(("respondent_filter", "", country, "", "respondents", total))

    kept_profiles = keep["profile_id"].unique()
    sizes = profile_sizes.reindex(kept_profiles)
    summary = {
        "rows_full": len(full), "rows_kept": len(keep), "rows_kept_share": _ratio(len(keep), len(full)),
        "profiles_full": len(profile_sizes), "profiles_kept": len(kept_profiles),
        "profiles_kept_share": _ratio(len(kept_profiles), len(profile_sizes)),
        "respondents_full": int(profile_sizes.sum()), "respondents_kept": int(sizes.sum()),
        "respondents_kept_share": _ratio(int(sizes.sum()), int(profile_sizes.sum())),
        "singleton_profile_share": _ratio(int((sizes == 1).sum()), len(kept_profiles)),
        "singleton_row_share": _ratio(int((keep["n"] == 1).sum()), len(keep)),
    }
    rows += [("summary", "", "", "", metric, value) for metric, value in summary.items()]

    for (qid, country), dist_full, dist_kept in _distributions(full, keep):
        rows += [
            ("question_country", qid, country, "", "answers_full", dist_full.sum()),
            ("question_country", qid, country, "", "answers_kept", dist_kept.sum()),
            ("question_country", qid, country, "", "entropy_full", _entropy(dist_full)),
            ("question_country", qid, country, "", "entropy_kept", _entropy(dist_kept)),
            ("question_country", qid, country, "", "jsd", _jsd(dist_full, dist_kept)),
        ]

    tied = tied_pairs(kept)
    for country, count in pd.Series(tied).groupby(keep["Country"].astype(str).to_numpy(), sort=True).sum().items():
        rows.append(("ties", "", country, "", "tied_pairs", int(count)))

    for attribute in [c for c in full.columns if c not in STAT_COLUMNS]:
        before = full.groupby(attribute)["n"].sum()
        after = keep.groupby(attribute)["n"].sum().reindex(before.index, fill_value=0)
        for category in before.index:
            rows.append(("attribute", attribute, "", category, "share_full", _ratio(before[category], before.sum())))
            rows.append(("attribute", attribute, "", category, "share_kept", _ratio(after[category], after.sum())))
    return pd.DataFrame(rows, columns=list(DIAGNOSTIC_COLUMNS))



def _distributions(full: pd.DataFrame, keep: pd.DataFrame):
    """Yield ((question, country), summed counts of all pairs, summed counts of kept pairs)."""
    kept_groups = dict(iter(keep.groupby(["question_id", "Country"], sort=False)))
    for key, group in full.groupby(["question_id", "Country"], sort=True):
        dist_full = np.sum(np.stack(group["counts"].to_numpy()), axis=0)
        kept = kept_groups.get(key)
        dist_kept = (np.sum(np.stack(kept["counts"].to_numpy()), axis=0) if kept is not None
                     else np.zeros_like(dist_full))
        yield key, dist_full, dist_kept


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

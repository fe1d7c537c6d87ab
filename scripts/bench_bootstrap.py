"""Benchmark: evaluation with the cluster bootstrap at benchmark scale, next to the previous item bootstrap.

Builds synthetic predictions in dvmap's prediction schema: 600,000 items of ~65,000 profiles (66 countries, the 11
profile attributes, 25 questions, 9–10 questions per profile, a per-profile skill so that a profile's items are
correlated), with a predicted distribution over the options (option_probs) on every parsed item and the
respondents' counts (1 + Poisson(2) respondents per profile, so some reach evaluation.min_respondents), so that every
distribution metric is computed; plus national-label predictions (labels only) for the paired difference. Then
times, each in a fresh child process so that the peak RSS (resource.getrusage ru_maxrss) is its own:

(a) ``dvmap.evaluation.evaluate.evaluate_predictions`` on all items: 1,000 replicates, bootstrap unit auto (profiles on
    cross_demographic), summary + breakdown (every country, question and attribute value) + paired difference;
(b) the previous implementation (a dense replicates × items weight matrix, items resampled, one pass per subset),
    copied below, on ``--legacy-items`` items of the same design (as many items per profile): at full scale it
    needs several replicates × items float64 and int64 matrices (about 4.8 GB each), so it is not run there;
(c) the new implementation on the same subsample size, with the item unit and with the profile unit.

Prints wall time and peak RSS of each (``before``: the peak after building the data; ``added``: what evaluation
added on top), and the legacy memory extrapolated to full scale.

    python scripts/bench_bootstrap.py [--items 600000] [--profiles 65000] [--replicates 1000] [--legacy-items 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from dvmap import ATTRIBUTES
from dvmap.evaluation.evaluate import KEYS, evaluate_predictions, reference_pool
from dvmap.schema import attribute_columns
from dvmap.evaluation.metrics import item_scores

#: The metrics of the previous implementation.
LEGACY_METRICS = ("accuracy", "likert_consistency", "wasserstein", "unparseable_rate")
N_COUNTRIES, N_QUESTIONS = 66, 25
SCALES = [2, 3, 4, 5, 10]
ATTRIBUTE_VALUES = {"Gender": 2, "Marital Status": 4, "Has Children": 2, "Education Level": 4, "Occupation": 5,
                    "Work Nature": 3, "Religion": 6, "Life Stage": 4, "Income Bracket": 3, "Common Language": 3}


def synthetic_predictions(n_items: int, n_profiles: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions of a model, national-label predictions) for the same ``n_items`` items."""
    rng = np.random.default_rng(seed)
    per_profile = np.full(n_profiles, n_items // n_profiles)
    per_profile[: n_items - per_profile.sum()] += 1
    order = np.argsort(rng.random((n_profiles, N_QUESTIONS)), axis=1)
    take = np.arange(N_QUESTIONS)[None, :] < per_profile[:, None]
    profile = np.repeat(np.arange(n_profiles), per_profile)
    question = order[take]
    k = np.array(SCALES)[question % len(SCALES)]
    options = {q: [f"option {j}" for j in range(SCALES[q % len(SCALES)])] for q in range(N_QUESTIONS)}
    country = rng.integers(0, N_COUNTRIES, n_profiles)
    gold = (rng.random(len(profile)) ** 2 * k).astype(int)           # a skewed answer distribution
    skill = rng.beta(4, 3, n_profiles)[profile]
    guess = (rng.random(len(profile)) * k).astype(int)
    predicted = np.where(rng.random(len(profile)) < skill, gold, guess)
    predicted = np.where(rng.random(len(profile)) < 0.03, -1, predicted)
    national = np.where(rng.random(len(profile)) < 0.45, gold, guess)
    qid = np.array([f"Q{q + 1}" for q in range(N_QUESTIONS)])[question]
    pid = np.char.add("p", profile.astype(str))
    frame = pd.DataFrame({
        "item_id": np.char.add(np.char.add(pid, ":"), qid),
        "split": "cross_demographic",
        "question_id": qid,
        "category": "VALUES",
        "options": [options[q] for q in question],
        "answer_index": gold,
        "answer": "",
        "raw_output": pd.array([None] * len(profile), dtype="string"),
        "fallback": pd.array([None] * len(profile), dtype="string"),
        "Country": np.array([f"Country {c:02d}" for c in range(N_COUNTRIES)])[country][profile],
    })
    for attribute, n_values in ATTRIBUTE_VALUES.items():
        frame[attribute] = np.array([f"{attribute} {v}" for v in range(n_values)])[
            rng.integers(0, n_values, n_profiles)][profile]
    frame = frame[["item_id", *[a for a in ATTRIBUTES if a in frame.columns],
                   *[c for c in frame.columns if c != "item_id" and c not in ATTRIBUTES]]]

    # drawn after everything else, so that the other columns are those of the labels-only design;
    # option_probs: 0.6 on the prediction, 0.4 spread as a flat Dirichlet; none where unparseable
    offsets = np.concatenate([[0], np.cumsum(k)])
    item_of = np.repeat(np.arange(len(k)), k)
    spread = rng.gamma(1.0, size=offsets[-1])
    spread /= np.bincount(item_of, weights=spread)[item_of]
    position = np.arange(offsets[-1]) - offsets[:-1][item_of]
    probs = 0.4 * spread + 0.6 * (position == predicted[item_of])
    probs_column = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(probs),
                                            mask=pa.array(predicted < 0))
    # counts: the profile's respondents (1 + Poisson(2)), one answering the gold option, the others skewed
    respondents = (1 + rng.poisson(2.0, n_profiles))[profile]
    draws = np.repeat(np.arange(len(k)), respondents - 1)
    answers = (rng.random(len(draws)) ** 2 * k[draws]).astype(int)
    counts = np.bincount(offsets[:-1][draws] + answers, minlength=offsets[-1])
    counts[offsets[:-1] + gold] += 1
    counts_column = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(counts.astype(np.int64)))
    frame["n"] = respondents.astype(float)
    frame["counts"] = pd.arrays.ArrowExtensionArray(counts_column)

    def as_predictor(model: str, index: np.ndarray, option_probs: pa.Array) -> pd.DataFrame:
        out = frame.assign(predictor=f"{model}.tau~0.0.seed~0", model=model, threshold="0.0",
                           seed=pd.array([0] * len(frame), dtype="Int64"),
                           prediction_index=pd.array(np.where(index >= 0, index, -1), dtype="Int64"),
                           option_probs=pd.arrays.ArrowExtensionArray(option_probs))
        out["prediction_index"] = out["prediction_index"].where(out["prediction_index"] >= 0)
        return out

    no_probs = pa.nulls(len(frame), type=pa.list_(pa.float64()))
    return as_predictor("gbt", predicted, probs_column), as_predictor("national_label", national, no_probs)


# --------------------------------------------------------------------------------------------------------------
# The previous implementation (dvmap before the cluster bootstrap), kept here only to measure its cost
# --------------------------------------------------------------------------------------------------------------

class LegacyEvaluation:
    """Items resampled with a dense (replicates + 1) × items weight matrix; each subset slices it."""

    def __init__(self, items: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
        self.items = items.reset_index(drop=True)
        predicted = self.items["prediction_index"].fillna(-1).to_numpy(dtype=int)
        gold = self.items["answer_index"].to_numpy(dtype=int)
        k = self.items["options"].map(len).to_numpy(dtype=int)
        self.k, self.predicted, self.gold = k, predicted, gold
        self.correct, self.likert, self.parsed = item_scores(predicted, gold, k)
        rng = np.random.default_rng(seed)
        n = len(self.items)
        draws = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), dtype=int)
        boot = np.zeros((n_boot, n))
        np.add.at(boot, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
        self.weights = np.vstack([np.ones((1, n)), boot])
        self.alpha = (1 - level) / 2
        self.cell = self.items.groupby(["Country", "question_id"], sort=False, observed=True).ngroup().to_numpy()

    def table(self, mask=None):
        idx = np.arange(len(self.items)) if mask is None else np.flatnonzero(mask)
        w = self.weights[:, idx]
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = {"accuracy": w @ self.correct[idx] / total, "likert_consistency": w @ self.likert[idx] / total,
                      "unparseable_rate": 1.0 - w @ self.parsed[idx] / total, "wasserstein": self._wasserstein(idx, w)}
        return {name: self._summarise(values[name]) for name in LEGACY_METRICS}

    def _summarise(self, replicates):
        point, boot = replicates[0], replicates[1:]
        boot = boot[np.isfinite(boot)]
        if not np.isfinite(point) or not len(boot):
            return float(point), float("nan"), float("nan")
        low, high = np.quantile(boot, [self.alpha, 1 - self.alpha])
        return float(point), float(low), float(high)

    def _wasserstein(self, idx, w):
        if not len(idx):
            return np.full(len(w), np.nan)
        cells, cell = np.unique(self.cell[idx], return_inverse=True)
        k_max = int(self.k[idx].max())
        k_cell = np.zeros(len(cells), dtype=int)
        k_cell[cell] = self.k[idx]
        shape = (len(idx), len(cells) * k_max)
        rows = np.arange(len(idx))
        gold = sparse.csr_matrix((np.ones(len(idx)), (rows, cell * k_max + self.gold[idx])), shape=shape)
        parsed = self.predicted[idx] >= 0
        pred = sparse.csr_matrix((np.ones(parsed.sum()), (rows[parsed], (cell * k_max + self.predicted[idx])[parsed])),
                                 shape=shape)
        g = np.asarray(gold.T @ w.T).T.reshape(len(w), len(cells), k_max)
        p = np.asarray(pred.T @ w.T).T.reshape(len(w), len(cells), k_max)
        g_total, p_total = g.sum(axis=2), p.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            cdf_gap = np.abs(np.cumsum(g, axis=2) / g_total[..., None] - np.cumsum(p, axis=2) / p_total[..., None])
            distance = cdf_gap[..., :-1].sum(axis=2) / np.maximum(k_cell - 1, 1)
        distance = np.where(p_total > 0, distance, 1.0)
        distance = np.where(g_total > 0, distance, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(distance, axis=1)


def legacy_evaluate(frame: pd.DataFrame, n_boot: int, seed: int) -> int:
    """The previous evaluate_predictions: summary + breakdown, one table() per subset; returns the rows made."""
    rows = 0
    for _, group in frame.groupby(KEYS, sort=False, dropna=False):
        evaluation = LegacyEvaluation(group, n_boot=n_boot, seed=seed)
        evaluation.table()
        items = evaluation.items
        groupings = {"country": "Country", "question": "question_id",
                     **{f"attribute:{a}": a for a in attribute_columns(items) if a != "Country"}}
        for column in groupings.values():
            values = items[column].astype(str).to_numpy()
            for value in sorted(set(values)):
                evaluation.table(values == value)
                rows += len(LEGACY_METRICS)
    return rows


# --------------------------------------------------------------------------------------------------------------
# One measurement per child process
# --------------------------------------------------------------------------------------------------------------

def measure(mode: str, n_items: int, n_profiles: int, n_boot: int, subsample: int | None) -> dict:
    if subsample:  # the same design at a smaller scale: as many items per profile
        n_profiles = max(1, round(n_profiles * subsample / n_items))
        n_items = subsample
    frame, national = synthetic_predictions(n_items, n_profiles)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if mode == "legacy":
        rows = legacy_evaluate(frame, n_boot, 0)
    else:
        pool = reference_pool([("national_label", national)])
        _, breakdown = evaluate_predictions(frame, n_boot, 0, unit=mode, references=pool)
        rows = len(breakdown)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "items": len(frame), "profiles": int(frame["item_id"].str.rpartition(":")[0].nunique()),
            "replicates": n_boot, "wall_s": round(wall, 1), "peak_rss_mb": round(peak), "data_rss_mb": round(before),
            "eval_rss_mb": round(peak - before),
            "breakdown_rows": rows}


def child(args, mode: str, subsample: int | None = None) -> dict:
    """:func:`measure` in a fresh interpreter, so that its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--child", mode, "--items", str(args.items), "--profiles", str(args.profiles),
           "--replicates", str(args.replicates)] + (["--subsample", str(subsample)] if subsample else [])
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        return {"mode": mode, "error": (result.stderr or result.stdout)[-800:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=600_000)
    parser.add_argument("--profiles", type=int, default=65_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--legacy-items", type=int, default=20_000, help="subsample for the previous implementation")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--subsample", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.items, args.profiles, args.replicates, args.subsample)))
        return
    names = {"auto": "cluster bootstrap (auto: profile)", "legacy": "previous item bootstrap",
             "item": "new, unit item", "sub:auto": "new, unit auto (profile)"}
    print(f"{'implementation':<34}{'items':>9}{'profiles':>10}{'replicates':>11}{'wall s':>9}{'peak RSS MB':>13}"
          f"{'before MB':>11}{'added MB':>10}", flush=True)
    runs = {}
    for key, mode, subsample in (("auto", "auto", None), ("legacy", "legacy", args.legacy_items),
                                 ("item", "item", args.legacy_items), ("sub:auto", "auto", args.legacy_items)):
        run = runs[key] = child(args, mode, subsample)
        if "error" in run:
            print(f"{names[key]:<34} failed: {run['error']}", flush=True)
            continue
        print(f"{names[key]:<34}{run['items']:>9}{run['profiles']:>10}{run['replicates']:>11}{run['wall_s']:>9}"
              f"{run['peak_rss_mb']:>13}{run['data_rss_mb']:>11}{run['eval_rss_mb']:>10}", flush=True)
    legacy = runs["legacy"]
    if "error" not in legacy:
        # the weight matrix, the draws and the row numbers of np.add.at: (replicates + 1) × items × 8 bytes each,
        # plus a sliced copy of the weights in every table() call
        gb = (args.replicates + 1) * args.items * 8 / 1e9
        scale = args.items / legacy["items"]
        print(f"previous item bootstrap at {args.items} items: not run (dense {args.replicates + 1} × {args.items} "
              f"float64 weights {gb:.1f} GB + int64 draws and np.add.at indices {2 * gb:.1f} GB + a {gb:.1f} GB "
              f"copy in every table() call; time linear in items: ~{legacy['wall_s'] * scale:.0f} s if memory "
              "allowed)")


if __name__ == "__main__":
    main()

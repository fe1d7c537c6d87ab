"""Metrics of value prediction with bootstrap confidence intervals.

Per item: correct (0/1), Likert consistency 1 − |ŷ − y| / (K − 1), parsed (0/1). An unparseable prediction counts
as wrong: correct 0 and Likert consistency 0 (the worst distance). Per (country, question) cell: the Wasserstein
distance between the predicted and the gold answer distributions on the ordinal scale normalised to [0, 1]; a cell
with no parsed prediction counts as 1 (the largest distance). Confidence intervals resample items (seeded).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse

METRICS = ("accuracy", "likert_consistency", "wasserstein", "unparseable_rate")


def item_scores(predicted: np.ndarray, gold: np.ndarray, n_options: np.ndarray) -> tuple[np.ndarray, ...]:
    """(correct, Likert consistency, parsed) per item; ``predicted`` holds -1 where unparseable."""
    parsed = predicted >= 0
    correct = (parsed & (predicted == gold)).astype(float)
    distance = np.abs(predicted - gold) / np.maximum(n_options - 1, 1)
    likert = np.where(parsed, 1.0 - distance, 0.0)
    return correct, likert, parsed.astype(float)


class Evaluation:
    """Point estimates and bootstrap intervals of every metric, for all items or any subset of them."""

    def __init__(self, items: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
        """``items`` needs prediction_index (-1 = unparseable), answer_index, options, Country, question_id."""
        self.items = items.reset_index(drop=True)
        predicted = self.items["prediction_index"].fillna(-1).to_numpy(dtype=int)
        gold = self.items["answer_index"].to_numpy(dtype=int)
        k = self.items["options"].map(len).to_numpy(dtype=int)
        self.k, self.predicted, self.gold = k, predicted, gold
        self.correct, self.likert, self.parsed = item_scores(predicted, gold, k)
        rng = np.random.default_rng(seed)
        n = len(self.items)
        # weights[b, i]: how often replicate b draws item i; row 0 is the sample itself
        draws = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), dtype=int)
        boot = np.zeros((n_boot, n))
        np.add.at(boot, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
        self.weights = np.vstack([np.ones((1, n)), boot])
        self.alpha = (1 - level) / 2
        self.cell = self.items.groupby(["Country", "question_id"], sort=False, observed=True).ngroup().to_numpy()

    def table(self, mask: np.ndarray | None = None) -> dict[str, tuple[float, float, float]]:
        """metric -> (value, ci_low, ci_high) over the items where ``mask`` holds (all items by default)."""
        idx = np.arange(len(self.items)) if mask is None else np.flatnonzero(mask)
        w = self.weights[:, idx]
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = {
                "accuracy": w @ self.correct[idx] / total,
                "likert_consistency": w @ self.likert[idx] / total,
                "unparseable_rate": 1.0 - w @ self.parsed[idx] / total,
                "wasserstein": self._wasserstein(idx, w),
            }
        return {name: self._summarise(values[name]) for name in METRICS}

    def _summarise(self, replicates: np.ndarray) -> tuple[float, float, float]:
        point, boot = replicates[0], replicates[1:]
        boot = boot[np.isfinite(boot)]
        if not np.isfinite(point) or not len(boot):
            return float(point), float("nan"), float("nan")
        low, high = np.quantile(boot, [self.alpha, 1 - self.alpha])
        return float(point), float(low), float(high)

    def _wasserstein(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Mean over (country, question) cells of W1(predicted, gold) on [0, 1], for every weight row."""
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
        g = np.asarray(gold.T @ w.T).T.reshape(len(w), len(cells), k_max)  # weighted counts per replicate
        p = np.asarray(pred.T @ w.T).T.reshape(len(w), len(cells), k_max)
        g_total, p_total = g.sum(axis=2), p.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            cdf_gap = np.abs(np.cumsum(g, axis=2) / g_total[..., None] - np.cumsum(p, axis=2) / p_total[..., None])
            distance = cdf_gap[..., :-1].sum(axis=2) / np.maximum(k_cell - 1, 1)
        distance = np.where(p_total > 0, distance, 1.0)
        distance = np.where(g_total > 0, distance, np.nan)
        with warnings.catch_warnings():  # a replicate that drew no item of the subset has no distance
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(distance, axis=1)

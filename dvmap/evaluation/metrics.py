"""Metrics of value prediction with cluster-bootstrap confidence intervals.

Per item: correct (0/1), Likert consistency 1 − |ŷ − y| / (K − 1), parsed (0/1). An unparseable prediction counts
as wrong: correct 0 and Likert consistency 0 (the worst distance). Per (country, question) cell: the Wasserstein
distance between the predicted and the gold answer distributions on the ordinal scale normalised to [0, 1]; a cell
with no parsed prediction counts as 1 (the largest distance). With a reference predictor (the national label), the
paired difference ``accuracy_vs_national_label``: the mean over the items of correct − correct of the reference.

Confidence intervals resample clusters of items (seeded percentile bootstrap): profiles, questions, or single
items (the *bootstrap unit*; ``auto`` takes questions for the cross_value split, whose generalisation is over
questions, and profiles for every other split). Each replicate draws as many clusters as there are, with
replacement; a cluster drawn m times weighs m. Every metric is computed from per-cluster sums (items, correct,
Likert, parsed; per (cluster, cell, option) counts for the Wasserstein distance), so a replicate costs
O(clusters), and the replicates are drawn in blocks (:data:`BLOCK_ELEMENTS`): memory is linear in items (times the
number of breakdown group types) + clusters + block × clusters, never replicates × items. Subsets (the breakdown by
country, question, attribute) and the paired difference reuse the same replicate weights. The point estimates are
the plain item means, whatever the unit. With the item unit the draws, hence the intervals, are those of dvmap's
earlier item bootstrap. :class:`Evaluation` defaults to the item unit; ``dvmap evaluate`` to ``auto``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import DvmapError
from ..schema import METRICS, PAIRED, attribute_columns

#: Bootstrap units: ``auto`` resolves per split with :func:`resolve_unit`.
UNITS = ("auto", "item", "profile", "question")
#: Splits whose CIs resample questions under ``auto`` (the held-out questions); every other split resamples profiles.
QUESTION_SPLITS = ("cross_value",)
#: Elements of one block of replicate weights (replicates × clusters) and of one block of Wasserstein counts.
BLOCK_ELEMENTS = 1 << 22


def item_scores(predicted: np.ndarray, gold: np.ndarray, n_options: np.ndarray) -> tuple[np.ndarray, ...]:
    """(correct, Likert consistency, parsed) per item; ``predicted`` holds -1 where unparseable."""
    parsed = predicted >= 0
    correct = (parsed & (predicted == gold)).astype(float)
    distance = np.abs(predicted - gold) / np.maximum(n_options - 1, 1)
    likert = np.where(parsed, 1.0 - distance, 0.0)
    return correct, likert, parsed.astype(float)


def resolve_unit(unit: str, split: str | None) -> str:
    """The bootstrap unit used for ``split``: ``unit`` itself unless it is ``auto``."""
    if unit not in UNITS:
        raise DvmapError(f"evaluation.bootstrap_unit: unknown unit {unit!r}; choose from {list(UNITS)}")
    if unit != "auto":
        return unit
    return "question" if split in QUESTION_SPLITS else "profile"


def profile_keys(items: pd.DataFrame) -> np.ndarray:
    """The profile of every item: ``profile_id`` when the table has it; else the ``{profile_id}`` of item ids
    ``{profile_id}:{question_id}`` (a flipped item ``…|flip`` belongs to the profile it was flipped from; flipping
    is one-to-one, so the clusters are the same); else the tuple of profile attributes."""
    if "profile_id" in items.columns:
        return items["profile_id"].astype(str).to_numpy()
    if "item_id" in items.columns and "question_id" in items.columns:
        ids = items["item_id"].astype(str)
        ids = ids.str.slice(0, -len("|flip")).where(ids.str.endswith("|flip"), ids)
        parts = ids.str.rpartition(":")
        if len(items) and (parts[1] == ":").all() and (parts[2] == items["question_id"].astype(str)).all():
            return parts[0].to_numpy()
    attributes = attribute_columns(items)
    if attributes:
        return items[attributes].astype(str).agg("\x1f".join, axis=1).to_numpy()
    raise DvmapError("bootstrap unit profile: the items have no profile_id, no item_id of the form "
                     "PROFILE:QUESTION and no profile attributes")


def cluster_index(items: pd.DataFrame, unit: str) -> np.ndarray:
    """Each item's cluster number for ``unit`` (item, profile or question), clusters numbered in sorted order of
    their keys so that the bootstrap does not depend on the row order (except for the item unit)."""
    if unit == "item":
        return np.arange(len(items))
    if unit == "profile":
        keys = profile_keys(items)
    elif unit == "question":
        keys = items["question_id"].astype(str).to_numpy()
    else:
        raise DvmapError(f"bootstrap unit: {unit!r} is not item, profile or question")
    return pd.factorize(pd.Series(keys), sort=True)[0].astype(np.int64)


class Evaluation:
    """Point estimates and cluster-bootstrap intervals of every metric, for all items or any subsets of them."""

    def __init__(self, items: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 unit: str = "item", reference_index=None):
        """``items`` needs prediction_index (-1 or NA = unparseable), answer_index, options, Country, question_id;
        the profile unit needs profile_id, item_id or the attributes, and ``auto`` a single split. With
        ``reference_index`` (the reference predictor's prediction_index for the same items, in the same order),
        :meth:`table` adds the paired accuracy difference :data:`PAIRED`."""
        self.items = items.reset_index(drop=True)
        predicted = self.items["prediction_index"].fillna(-1).to_numpy(dtype=int)
        gold = self.items["answer_index"].to_numpy(dtype=int)
        k = self.items["options"].map(len).to_numpy(dtype=int)
        self.k, self.predicted, self.gold = k, predicted, gold
        self.correct, self.likert, self.parsed = item_scores(predicted, gold, k)
        self.paired = None
        if reference_index is not None:
            reference = pd.Series(reference_index).fillna(-1).to_numpy(dtype=int)
            if len(reference) != len(self.items):
                raise DvmapError(f"reference: {len(reference)} predictions for {len(self.items)} items")
            self.paired = self.correct - item_scores(reference, gold, k)[0]
        self.metrics = METRICS + ((PAIRED,) if self.paired is not None else ())
        if unit == "auto":
            splits = self.items["split"].unique() if "split" in self.items.columns else []
            if len(splits) > 1:
                raise DvmapError(f"bootstrap unit auto: the items mix splits {sorted(map(str, splits))}")
            unit = resolve_unit(unit, str(splits[0]) if len(splits) else None)
        self.unit = resolve_unit(unit, None)
        self.cluster = cluster_index(self.items, self.unit)
        self.n_clusters = int(self.cluster.max()) + 1 if len(self.cluster) else 0
        self.n_boot, self.seed = n_boot, seed
        self.alpha = (1 - level) / 2
        self.cell = self.items.groupby(["Country", "question_id"], sort=False, observed=True).ngroup().to_numpy()

    def table(self, subset: np.ndarray | None = None) -> dict[str, tuple[float, float, float]]:
        """metric -> (value, ci_low, ci_high) over a subset of the items: a boolean mask or the items' positions
        (all items by default)."""
        return self.tables([subset])[0]

    def tables(self, subsets: list[np.ndarray | None]) -> list[dict[str, tuple[float, float, float]]]:
        """:meth:`table` for several subsets at once, in one pass over the replicates (the same weights)."""
        subsets = [np.arange(len(self.items)) if s is None else np.flatnonzero(s) if s.dtype == bool else s
                   for s in subsets]
        scores = [np.ones(len(self.items)), self.correct, self.likert, self.parsed]
        if self.paired is not None:
            scores.append(self.paired)
        ratios = self._cluster_sums(subsets, scores)                   # (subsets · scores) × clusters
        cells = [self._cell_counts(idx) for idx in subsets]
        points = [self._points(idx, counts) for idx, counts in zip(subsets, cells)]
        replicates = np.full((len(subsets), len(self.metrics), self.n_boot), np.nan)
        rng = np.random.default_rng(self.seed)
        block = max(1, min(self.n_boot, BLOCK_ELEMENTS // max(self.n_clusters, 1)))
        for start in range(0, self.n_boot, block):
            weights = self._weights(rng, min(block, self.n_boot - start))   # clusters × replicates
            columns = slice(start, start + weights.shape[1])
            sums = (ratios @ weights).reshape(len(subsets), len(scores), -1)
            with np.errstate(invalid="ignore", divide="ignore"):
                total = sums[:, 0]
                replicates[:, 0, columns] = sums[:, 1] / total
                replicates[:, 1, columns] = sums[:, 2] / total
                replicates[:, 3, columns] = 1.0 - sums[:, 3] / total
                if self.paired is not None:
                    replicates[:, 4, columns] = sums[:, 4] / total
            for s, counts in enumerate(cells):
                replicates[s, 2, columns] = self._wasserstein(counts, weights)
        return [{name: self._summarise(point[name], replicates[s, m]) for m, name in enumerate(self.metrics)}
                for s, point in enumerate(points)]

    def _points(self, idx: np.ndarray, cell_counts) -> dict[str, float]:
        """Point estimates from the items themselves (the same formulas as every replicate, weights all one)."""
        w = np.ones(len(idx))
        total = w.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            point = {
                "accuracy": w @ self.correct[idx] / total,
                "likert_consistency": w @ self.likert[idx] / total,
                "unparseable_rate": 1.0 - w @ self.parsed[idx] / total,
            }
            if self.paired is not None:
                point[PAIRED] = w @ self.paired[idx] / total
        point["wasserstein"] = self._wasserstein(cell_counts, np.ones((self.n_clusters, 1)))[0]
        return point

    def _weights(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Clusters × ``n`` replicates: how often each replicate drew each cluster (multinomial counts; a replicate
        draws as many clusters as there are, with replacement)."""
        c = self.n_clusters
        if not c:
            return np.zeros((0, n))
        draws = rng.integers(0, c, size=(n, c))                  # row r: the clusters replicate r draws
        draws *= n
        draws += np.arange(n)[:, None]
        return np.bincount(draws.ravel(), minlength=c * n).reshape(c, n).astype(float)

    def _cluster_sums(self, subsets: list[np.ndarray], scores: list[np.ndarray]) -> sparse.csr_matrix:
        """Sparse (subset, score) × clusters matrix of the sums of each score over each subset's items."""
        indices, data, lengths = [], [], []
        for idx in subsets:
            clusters, inverse = np.unique(self.cluster[idx], return_inverse=True)
            for score in scores:
                indices.append(clusters)
                data.append(np.bincount(inverse, weights=score[idx], minlength=len(clusters)))
                lengths.append(len(clusters))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        shape = (len(subsets) * len(scores), self.n_clusters)
        return sparse.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=shape)

    def _cell_counts(self, idx: np.ndarray):
        """The Wasserstein counts of a subset (None when it is empty): a sparse (gold | predicted, cell, option) ×
        clusters matrix, its cells ordered by their number of options K, and the blocks (first row, cells, K) of
        cells with the same K."""
        if not len(idx):
            return None
        cells, cell = np.unique(self.cell[idx], return_inverse=True)
        k_cell = np.zeros(len(cells), dtype=np.int64)
        np.maximum.at(k_cell, cell, self.k[idx])                      # a cell's options (those of its question)
        order = np.argsort(k_cell, kind="stable")                     # cells grouped by K, no padding
        first_row = np.zeros(len(cells), dtype=np.int64)
        first_row[order] = np.concatenate([[0], np.cumsum(k_cell[order])[:-1]])
        width = int(k_cell.sum())
        parsed = self.predicted[idx] >= 0
        rows = np.concatenate([first_row[cell] + self.gold[idx], width + (first_row[cell] + self.predicted[idx])[parsed]])
        clusters = np.concatenate([self.cluster[idx], self.cluster[idx][parsed]])
        # float32 holds these integer counts exactly in half the memory; products with the weights are float64
        counts = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, clusters)),
                                   shape=(2 * width, self.n_clusters))
        ks, n_cells = np.unique(k_cell, return_counts=True)
        starts = np.concatenate([[0], np.cumsum(ks * n_cells)[:-1]])
        return counts, width, list(zip(starts.tolist(), n_cells.tolist(), ks.tolist()))

    def _wasserstein(self, cell_counts, weights: np.ndarray) -> np.ndarray:
        """Mean over (country, question) cells of W1(predicted, gold) on [0, 1], for every column of weights."""
        if cell_counts is None:
            return np.full(weights.shape[1], np.nan)
        counts, width, blocks = cell_counts
        n_cells = sum(n for _, n, _ in blocks)
        out = np.empty(weights.shape[1])
        step = max(1, BLOCK_ELEMENTS // counts.shape[0])
        for begin in range(0, weights.shape[1], step):
            w = np.ascontiguousarray(weights[:, begin:begin + step])
            both = counts @ w                       # weighted counts per (gold | predicted, cell, option), replicate
            distance = np.empty((n_cells, w.shape[1]))
            done = 0
            for start, n, k in blocks:
                g = both[start:start + n * k].reshape(n, k, -1)
                p = both[width + start:width + start + n * k].reshape(n, k, -1)
                for j in range(1, k):               # cumulative counts over the ordered options, in place
                    g[:, j] += g[:, j - 1]
                    p[:, j] += p[:, j - 1]
                g_total, p_total = g[:, -1], p[:, -1]
                with np.errstate(invalid="ignore", divide="ignore"):
                    gap = np.abs(g[:, :-1] / g_total[:, None] - p[:, :-1] / p_total[:, None]).sum(axis=1)
                    d = gap / max(k - 1, 1)
                d = np.where(p_total > 0, d, 1.0)
                distance[done:done + n] = np.where(g_total > 0, d, np.nan)
                done += n
            with warnings.catch_warnings():  # a replicate that drew no item of the subset has no distance
                warnings.simplefilter("ignore", RuntimeWarning)
                out[begin:begin + w.shape[1]] = np.nanmean(distance, axis=0)
        return out

    def _summarise(self, point: float, boot: np.ndarray) -> tuple[float, float, float]:
        boot = boot[np.isfinite(boot)]
        if not np.isfinite(point) or not len(boot):
            return float(point), float("nan"), float("nan")
        low, high = np.quantile(boot, [self.alpha, 1 - self.alpha])
        return float(point), float(low), float(high)

"""Metrics of value prediction with cluster-bootstrap confidence intervals.

Per item: correct (0/1), Likert consistency 1 − |ŷ − y| / (K − 1), parsed (0/1). An unparseable prediction counts
as wrong: correct 0 and Likert consistency 0 (the worst distance). Per (country, question) cell: the Wasserstein
distance between the predicted and the gold answer distributions on the ordinal scale normalised to [0, 1]; a cell
with no parsed prediction counts as 1 (the largest distance). With a reference predictor (the national label), the
paired difference ``accuracy_vs_national_label``: the mean over the items of correct − correct of the reference.

Distribution metrics. An item's *predicted distribution* p over its K options is its ``option_probs`` (divided by
their sum; a list that is not K finite values >= 0 with a positive sum counts as absent), else the point mass on its
parsed prediction; an unparseable item without option_probs has none (no probability on any option). Items' answer
``counts`` (per option, of the respondents of the item's profile) give the *respondents' distribution* r = counts /
Σ counts; an item without counts (items imported from DVMap's release) has none and is left out of the
respondent-based metrics (jsd, profile_wasserstein, representativeness), which are NaN where no item has counts.

- ``expected_accuracy``: mean over items of p(gold) (0 without a distribution);
- ``brier``: mean over items of Σ_j (p_j − 1[j = gold])² (1 without a distribution);
- ``ece``: expected calibration error of the top-option probability c = max_j p_j (0 without a distribution): the
  items fall in :data:`ECE_BINS` equal-width bins of c ([0, 0.1), ..., [0.9, 1]) and ECE = Σ_b (n_b / n)
  |accuracy_b − confidence_b| = Σ_b |Σ_{i in b} (a_i − c_i)| / n, where a_i is 1 when the gold option has the top
  probability, 1/t when it shares it with t − 1 others (a random tie-break's expected accuracy), else 0;
- ``jsd`` and ``profile_wasserstein``: over the items with a predicted distribution and counts of at least
  ``min_respondents`` respondents (evaluation.min_respondents), the mean Jensen–Shannon divergence (base 2, in
  [0, 1]) and the mean ordinal Wasserstein distance / (K − 1) between p and r; NaN when no item qualifies;
- ``representativeness``: per (country, question) cell, over the cell's items that have a predicted distribution
  and counts (no respondent threshold: a cell pools its profiles' respondents), 1 − W1 / (K − 1) between the mean
  predicted distribution and the respondents' distribution of the summed counts; the mean over cells (OpinionQA's
  representativeness), NaN when no cell has such an item. An unparseable item without option_probs is in neither
  distribution.

Confidence intervals resample clusters of items (seeded percentile bootstrap): profiles, questions, or single
items (the *bootstrap unit*; ``auto`` takes questions for the cross_value split, whose generalisation is over
questions, and profiles for every other split). Each replicate draws as many clusters as there are, with
replacement; a cluster drawn m times weighs m. Every metric is computed from per-cluster sums, so a replicate costs
O(clusters): per cluster the items, correct, Likert, parsed, p(gold), Brier, qualifying items, JSD and profile
Wasserstein, and per (cluster, confidence bin) Σ (a − c); per (cluster, cell, option) the gold labels, the parsed
predictions, the respondents' counts and the predicted probabilities (:data:`SIDES`). The replicates are drawn in
blocks (:data:`BLOCK_ELEMENTS`), the weights of a few blocks kept as small integers (:data:`SPAN_BYTES`): memory is
linear in items + clusters + block × clusters, never replicates × items. Subsets (the breakdown by country,
question, attribute) and the paired difference reuse the same replicate weights. A subset that holds whole clusters
(every attribute value under the profile unit) takes its sums from the whole table's per-cluster sums (disjoint
such subsets share one product, their rows shifted apart); a subset that holds whole cells (a country, a question)
averages its cells' distances from the whole table's product; any other subset has sums of its own. Where every
cell lies in one cluster (the question unit), a cell's distances do not depend on its cluster's weight, so the
breakdown's are worked out once per cluster; otherwise the breakdown's subsets that do not hold whole cells take
their replicates' cell sums in single precision (:data:`BREAKDOWN_FLOAT`; the summary's stay double). The point
estimates are the plain item means (cell sums over the items in item order), whatever the unit. With the item unit
the draws, hence the intervals, are those of dvmap's earlier item bootstrap. :class:`Evaluation` defaults to the
item unit; ``dvmap evaluate`` to ``auto``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from ..errors import DvmapError
from ..schema import METRICS, PAIRED, attribute_columns
from .predictions import list_rows

#: Bootstrap units: ``auto`` resolves per split with :func:`resolve_unit`.
UNITS = ("auto", "item", "profile", "question")
#: Splits whose CIs resample questions under ``auto`` (the held-out questions); every other split resamples profiles.
QUESTION_SPLITS = ("cross_value",)
#: Elements of one block of replicate weights (replicates × clusters) and of one block of per-cell sums.
BLOCK_ELEMENTS = 1 << 22
#: Respondents an item's profile needs for jsd and profile_wasserstein (config evaluation.min_respondents).
MIN_RESPONDENTS = 5
#: Replicates a block below which the weights of several blocks are kept (as small integers, up to this many bytes)
#: and each product is made once for them all.
SPAN_BELOW, SPAN_BYTES = 32, 1 << 25
#: Clusters × per-(side, cell, option) sums up to which a subset's cell sums are summed in a dense array.
DENSE_SUMS = 1 << 22
#: Items whose entries in the per-(side, cell, option) sums are made at a time.
ENTRY_ITEMS = 1 << 16
#: Runs of units (cells whose sums follow each other) up to which a K's units are read as views, not copied.
MAX_RUNS = 64
#: A family's cell sums keep only the rows of its members' cells when these are under this share of all its rows.
COMPACT_SHARE = 0.5
#: Entries of the whole table's cell sums up to which each family's shifted rows are made once, not per block.
CACHED_ENTRIES = 1 << 20
#: The float type of the replicates' cell sums of the breakdown's subsets that do not hold whole cells (attribute
#: values): single precision halves the traffic of their per-(subset, cell, option) passes; the whole table's (the
#: summary's) and the whole-cell subsets' (countries, questions) stay double.
BREAKDOWN_FLOAT = np.float32
#: Equal-width bins of the top-option probability in the expected calibration error.
ECE_BINS = 10
#: The per-(cluster, cell, option) sums: gold labels and parsed predictions (wasserstein), the respondents' counts
#: and the predicted probabilities of the items that have both (representativeness).
SIDES = ("gold", "predicted", "respondents", "distribution")
#: The per-cluster sums of the ratio metrics, then one per confidence bin (Σ a − c), then the paired difference.
SCORES = ("items", "correct", "likert", "parsed", "expected", "brier", "qualified", "jsd", "profile_wasserstein")


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
    if "item_id" in items.columns and "question_id" in items.columns and len(items):
        ids = pa.array(items["item_id"].astype(str).to_numpy(dtype=object), type=pa.string())
        ids = pc.if_else(pc.ends_with(ids, "|flip"), pc.utf8_slice_codeunits(ids, 0, -len("|flip")), ids)
        parts = pc.split_pattern(ids, ":", max_splits=1, reverse=True)   # at the last ':'
        if pc.all(pc.equal(pc.list_value_length(parts), 2)).as_py():
            questions = pa.array(items["question_id"].astype(str).to_numpy(dtype=object), type=pa.string())
            if pc.all(pc.equal(pc.list_element(parts, 1), questions)).as_py():
                return pc.list_element(parts, 0).to_numpy(zero_copy_only=False)
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


def predicted_distributions(items: pd.DataFrame, predicted: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
    """(p, has_probs): every item's predicted distribution laid out flat, K values per item (see the module
    docstring: option_probs, else the point mass on the parsed prediction, else zeros), and whether it came from
    option_probs."""
    start = np.cumsum(k) - k
    probs, has_probs = _lists(items, "option_probs", k)
    parsed = ~has_probs & (predicted >= 0)
    probs[start[parsed] + predicted[parsed]] = 1.0
    return probs, has_probs


def answer_counts(items: pd.DataFrame, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts laid out flat as :func:`predicted_distributions`, respondents Σ counts per item, 0 without counts)."""
    counts, has = _lists(items, "counts", k, normalise=False)
    item = np.repeat(np.arange(len(k)), k)
    return counts, np.bincount(item, weights=counts, minlength=len(k)) * has


def _lists(items: pd.DataFrame, column: str, k: np.ndarray, normalise: bool = True):
    """A list column laid out flat (zeros where absent or not K finite values >= 0 with a positive sum; divided by
    the sum where ``normalise``) and per item whether it is there."""
    n = len(k)
    if column not in items.columns:
        return np.zeros(int(k.sum())), np.zeros(n, dtype=bool)
    values, lengths = list_rows(items[column], k)
    item = np.repeat(np.arange(n), k)
    good = np.isfinite(values) & (values >= 0)
    values = np.where(good, values, 0.0)
    total = np.bincount(item, weights=values, minlength=n)
    has = (lengths == k) & (np.bincount(item, weights=~good, minlength=n) == 0) & (total > 0)
    scale = np.divide(1.0, total, out=np.zeros(n), where=has) if normalise else has.astype(float)
    return values * scale[item], has


def distribution_scores(p: np.ndarray, counts: np.ndarray, gold: np.ndarray, k: np.ndarray,
                        qualified: np.ndarray) -> dict[str, np.ndarray]:
    """Per item: expected (p(gold)), brier, confidence (max p), top (a of the module docstring), and for the
    ``qualified`` items (0 elsewhere) jsd and profile_wasserstein against counts / Σ counts; ``p`` and ``counts``
    laid out flat, K values per item."""
    n = len(k)
    start = np.cumsum(k) - k
    out = {name: np.zeros(n) for name in ("expected", "brier", "confidence", "top", "jsd", "profile_wasserstein")}
    for size in np.unique(k):
        rows = np.flatnonzero(k == size)
        at = start[rows][:, None] + np.arange(size)
        q = p[at]
        expected = q[np.arange(len(rows)), gold[rows]]
        top = q.max(axis=1)
        out["expected"][rows] = expected
        out["brier"][rows] = (q * q).sum(axis=1) - 2 * expected + 1
        out["confidence"][rows] = top
        tied = (q == top[:, None]).sum(axis=1)
        out["top"][rows] = np.where((top > 0) & (expected == top), 1.0 / tied, 0.0)
        chosen = qualified[rows]
        if chosen.any():
            q, c = q[chosen], counts[at[chosen]].astype(float)
            r = c / c.sum(axis=1, keepdims=True)
            m = (q + r) / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                divergence = (np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
                              + np.where(r > 0, r * np.log2(r / m), 0.0).sum(axis=1)) / 2
            out["jsd"][rows[chosen]] = np.clip(divergence, 0.0, 1.0)
            out["profile_wasserstein"][rows[chosen]] = (np.abs(np.cumsum(q - r, axis=1)[:, :-1]).sum(axis=1)
                                                        / max(size - 1, 1))
    return out


class Evaluation:
    """Point estimates and cluster-bootstrap intervals of every metric, for all items or any subsets of them."""

    def __init__(self, items: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 unit: str = "item", reference_index=None, min_respondents: int = MIN_RESPONDENTS):
        """``items`` needs prediction_index (-1 or NA = unparseable), answer_index, options, Country, question_id;
        option_probs and counts where the distribution metrics should see them; the profile unit needs profile_id,
        item_id or the attributes, and ``auto`` a single split. With ``reference_index`` (the reference
        predictor's prediction_index for the same items, in the same order), :meth:`table` adds the paired accuracy
        difference :data:`PAIRED`. ``min_respondents``: the respondents an item needs for jsd and
        profile_wasserstein."""
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
        self.cell = self.items.groupby(["Country", "question_id"], sort=False, observed=True).ngroup().to_numpy(
            dtype=np.int32 if len(self.items) < 1 << 31 else np.int64)
        self.min_respondents = min_respondents
        self._distributions()
        self._layout()

    # ---------------------------------------------------------------------------------------------- item level

    def _distributions(self) -> None:
        """Predicted distributions, counts and the per-item scores of the distribution metrics."""
        k = self.k
        self.start = np.cumsum(k) - k
        p, counts, respondents = self.flat()
        has_distribution = np.bincount(np.repeat(np.arange(len(k)), k), weights=p, minlength=len(k)) > 0
        self.represented = has_distribution & (respondents > 0)
        qualified = self.represented & (respondents >= self.min_respondents)
        scores = distribution_scores(p, counts, self.gold, k, qualified)
        item = np.repeat(np.arange(len(k)), k)
        nonzero = np.bincount(item, weights=(counts != 0) & self.represented[item], minlength=len(k)) + \
            np.bincount(item, weights=(p != 0) & self.represented[item], minlength=len(k))
        self.entries = (1 + (self.predicted >= 0) + nonzero).astype(np.int32)   # per item, in the cell sums
        self.bin = np.minimum((scores["confidence"] * ECE_BINS).astype(np.int8), ECE_BINS - 1)
        self.calibration = scores["top"] - scores["confidence"]
        self.scores = {"correct": self.correct, "likert": self.likert,
                       "parsed": self.parsed, "expected": scores["expected"], "brier": scores["brier"],
                       "qualified": qualified.astype(float), "jsd": scores["jsd"],
                       "profile_wasserstein": scores["profile_wasserstein"]}
        self.rows = list(SCORES) + [f"ece{b}" for b in range(ECE_BINS)] + (["paired"] if self.paired is not None
                                                                          else [])

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(predicted distributions, counts, laid out flat with K values per item; respondents per item), worked
        out when first needed and kept until :meth:`tables` has made its sums (then dropped: the replicates need
        none of them)."""
        if getattr(self, "_flat", None) is None:
            p, _ = predicted_distributions(self.items, self.predicted, self.k)
            counts, respondents = answer_counts(self.items, self.k)
            self._flat = p, counts.astype(np.float32), respondents   # whole counts: exact in float32
        return self._flat

    def _layout(self) -> None:
        """The rows of the per-(side, cell, option) sums — a cell's K options in a row, cells by K and country —
        and the clusters' columns — ordered by country, so that a column's rows lie close together."""
        country = pd.factorize(self.items["Country"].astype(str), sort=True)[0] if len(self.items) else np.zeros(0)
        self.n_cells = int(self.cell.max()) + 1 if len(self.cell) else 0
        k_cell = np.zeros(self.n_cells, dtype=np.int64)
        np.maximum.at(k_cell, self.cell, self.k)                      # a cell's options (those of its question)
        country_cell = np.zeros(self.n_cells, dtype=np.int64)
        country_cell[self.cell] = country
        order = np.lexsort((np.arange(self.n_cells), country_cell, k_cell))
        self.first_row = np.zeros(self.n_cells, dtype=np.int64)
        self.first_row[order] = np.concatenate([[0], np.cumsum(k_cell[order])[:-1]]).astype(np.int64)
        self.k_cell = k_cell
        self.width = int(k_cell.sum())
        self.represented_any = bool(self.represented.any())
        # every cell within one cluster, and at most as many clusters as replicates: the breakdown's cell distances
        # are worked out per cluster, not per replicate (:meth:`_Plan._present_means`)
        per_cell = np.unique(self.cell.astype(np.int64) * max(self.n_clusters, 1) + self.cluster)
        self.cells_in_clusters = len(per_cell) == self.n_cells and self.n_clusters <= self.n_boot
        first = np.unique(self.cluster, return_index=True)[1]
        order = np.lexsort((np.arange(self.n_clusters), country[first])) if len(first) else first
        self.column = np.empty(self.n_clusters, dtype=np.int64)      # a cluster's column in every sum matrix
        self.column[order] = np.arange(self.n_clusters)
        self.slot = self.column[self.cluster].astype(np.int32 if self.n_clusters < 1 << 31 else np.int64)

    # ---------------------------------------------------------------------------------------------- tables

    def table(self, subset: np.ndarray | None = None) -> dict[str, tuple[float, float, float]]:
        """metric -> (value, ci_low, ci_high) over a subset of the items: a boolean mask or the items' positions
        (all items by default)."""
        return self.tables([subset])[0]

    def tables(self, subsets: list[np.ndarray | None]) -> list[dict[str, tuple[float, float, float]]]:
        """:meth:`table` for several subsets at once, in one pass over the replicates (the same weights)."""
        subsets = [np.arange(len(self.items)) if s is None else np.flatnonzero(s) if s.dtype == bool else s
                   for s in subsets]
        plan = _Plan(self, subsets)
        points = [self._points(idx, plan.cells[s]) for s, idx in enumerate(subsets)]
        self._flat = None   # the sums are made: the flat distributions and counts are not needed any more
        replicates = np.full((len(subsets), len(self.metrics), self.n_boot), np.nan)
        rng = np.random.default_rng(self.seed)
        block = max(1, min(self.n_boot, BLOCK_ELEMENTS // max(self.n_clusters, 1)))
        span = block    # few replicates a block (many clusters): the weights of several kept as small integers
        if block < SPAN_BELOW:
            span *= max(1, min(-(-self.n_boot // block), SPAN_BYTES // max(self.n_clusters * block, 1)))
        for start in range(0, self.n_boot, span):
            counts = self._counts(rng, min(span, self.n_boot - start), block)
            for s, part, sums in plan.ratio_sums(counts, block):
                self._ratios(sums, replicates[s, :, start + part.start:start + part.stop])
            for s, part, wasserstein, representativeness in plan.cell_metrics(counts, block):
                replicates[s, self.metrics.index("wasserstein"), start + part.start:start + part.stop] = wasserstein
                replicates[s, self.metrics.index("representativeness"), start + part.start:start + part.stop] = \
                    representativeness
            del counts
        return [{name: self._summarise(point[name], replicates[s, m]) for m, name in enumerate(self.metrics)}
                for s, point in enumerate(points)]

    def _ratios(self, sums: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` (metrics × replicates) with the ratio metrics of per-row sums (:attr:`rows` × replicates)."""
        at = {name: i for i, name in enumerate(self.rows)}
        with np.errstate(invalid="ignore", divide="ignore"):
            total, qualified = sums[at["items"]], sums[at["qualified"]]
            values = {
                "accuracy": sums[at["correct"]] / total,
                "likert_consistency": sums[at["likert"]] / total,
                "unparseable_rate": 1.0 - sums[at["parsed"]] / total,
                "expected_accuracy": sums[at["expected"]] / total,
                "brier": sums[at["brier"]] / total,
                "ece": np.abs(sums[at["ece0"]:at["ece0"] + ECE_BINS]).sum(axis=0) / total,
                "jsd": sums[at["jsd"]] / qualified,
                "profile_wasserstein": sums[at["profile_wasserstein"]] / qualified,
            }
            if self.paired is not None:
                values[PAIRED] = sums[at["paired"]] / total
        for name, value in values.items():
            out[self.metrics.index(name)] = value

    def _points(self, idx: np.ndarray, cells) -> dict[str, float]:
        """Point estimates from the items themselves: sums over the subset's items, in item order."""
        sums = np.array([self._score(name)[idx].sum() for name in SCORES]
                        + np.bincount(self.bin[idx], weights=self.calibration[idx], minlength=ECE_BINS).tolist()
                        + ([self.paired[idx].sum()] if self.paired is not None else []))
        out = np.full((len(self.metrics), 1), np.nan)
        self._ratios(sums[:, None], out)
        point = {name: float(out[m, 0]) for m, name in enumerate(self.metrics)}
        point["wasserstein"], point["representativeness"] = cells
        return point

    def _score(self, name: str) -> np.ndarray:
        """A per-item score of :data:`SCORES` (``items``: ones)."""
        return np.ones(len(self.k)) if name == "items" else self.scores[name]

    def _counts(self, rng: np.random.Generator, n: int, block: int) -> np.ndarray:
        """:meth:`_weights` of ``n`` replicates drawn ``block`` at a time (the draws of the blocks one after the
        other): as floats for one block, else as the smallest unsigned integers that hold them."""
        if n <= block:
            return self._weights(rng, n)
        out = np.zeros((self.n_clusters, n), dtype=np.uint8)
        for begin in range(0, n, block):
            weights = self._weights(rng, min(block, n - begin))
            if weights.size and weights.max() > np.iinfo(out.dtype).max:
                out = out.astype(np.uint32)
            out[:, begin:begin + weights.shape[1]] = weights
        return out

    def _weights(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Columns (clusters in :attr:`column` order) × ``n`` replicates: how often each replicate drew each cluster
        (multinomial counts; a replicate draws as many clusters as there are, with replacement)."""
        c = self.n_clusters
        if not c:
            return np.zeros((0, n))
        draws = rng.integers(0, c, size=(n, c))                  # row r: the clusters replicate r draws
        np.take(self.column, draws, out=draws)                   # their columns
        draws *= n
        draws += np.arange(n)[:, None]
        return np.bincount(draws.ravel(), minlength=c * n).reshape(c, n).astype(float)

    # ---------------------------------------------------------------------------------------------- sums

    def per_cluster(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, values) of the per-cluster sums of the subset's items: one entry per (score row,
        cluster) with a non-zero sum (:attr:`rows`)."""
        columns, inverse = np.unique(self.slot[idx], return_inverse=True)
        n = len(columns)
        rows, cols, values = [], [], []
        dense = [np.bincount(inverse, weights=self._score(name)[idx], minlength=n) for name in SCORES]
        bins = np.bincount(inverse * ECE_BINS + self.bin[idx], weights=self.calibration[idx],
                           minlength=n * ECE_BINS).reshape(n, ECE_BINS).T
        dense += list(bins)
        if self.paired is not None:
            dense.append(np.bincount(inverse, weights=self.paired[idx], minlength=n))
        for row, value in enumerate(dense):
            keep = np.flatnonzero(value)
            rows.append(np.full(len(keep), row, dtype=np.int64))
            cols.append(columns[keep])
            values.append(value[keep])
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(values)

    def cell_entries(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, values) of the subset's items in the per-(side, cell, option) sums (:data:`SIDES`, each
        :attr:`width` rows): one entry per gold label, per parsed prediction, and per non-zero count and
        probability of the items that have a predicted distribution and counts."""
        width = self.width
        cell_row = self.first_row[self.cell[idx]]
        parsed = self.predicted[idx] >= 0
        rows = [cell_row + self.gold[idx], width + cell_row[parsed] + self.predicted[idx][parsed]]
        cols = [self.slot[idx], self.slot[idx][parsed]]
        values = [np.ones(len(idx)), np.ones(int(parsed.sum()))]
        chosen = self.represented[idx]
        if chosen.any():
            items, k = idx[chosen], self.k[idx][chosen]
            ramp = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
            at = np.repeat(self.start[items], k) + ramp
            row = np.repeat(cell_row[chosen], k) + ramp
            col = np.repeat(self.slot[items], k)
            p, counts, _ = self.flat()
            for side, flat in ((2, counts), (3, p)):
                value = flat[at]
                keep = value != 0
                rows.append(side * width + row[keep])
                cols.append(col[keep])
                values.append(value[keep])
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(values)

    def cell_matrix(self, idx: np.ndarray, points: bool = False) -> tuple[sparse.csc_matrix, np.ndarray | None]:
        """The per-(side, cell, option) sums of the subset's items as a CSC matrix (sums × cluster columns),
        duplicates summed, and with ``points`` and few clusters (:data:`DENSE_SUMS`) the sums with weights all one
        (as :meth:`cell_point_sums`; else None). Few clusters: summed in a dense array of clusters × sums; else
        made a few items at a time, in column order, into arrays of the final size."""
        height = len(SIDES) * self.width
        if self.n_clusters * height <= DENSE_SUMS:
            dense = np.zeros(self.n_clusters * height)
            point = np.zeros(height) if points else None
            for begin in range(0, len(idx), ENTRY_ITEMS):
                rows, cols, values = self.cell_entries(idx[begin:begin + ENTRY_ITEMS])
                dense += np.bincount(cols.astype(np.int64) * height + rows, weights=values, minlength=len(dense))
                if points:
                    point += np.bincount(rows, weights=values, minlength=height)
            dense = dense.reshape(self.n_clusters, height)
            cols, rows = np.nonzero(dense)                  # by column, then row: the CSC order
            indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=self.n_clusters))])
            matrix = sparse.csc_matrix((dense[cols, rows], rows.astype(np.int32), indptr.astype(np.int32)),
                                       shape=(height, self.n_clusters))
            return matrix, None if point is None else point[:, None]
        items = idx[np.argsort(self.slot[idx], kind="stable")]
        total = int(self.entries[items].sum())
        index_type = np.int32 if max(height, total) < np.iinfo(np.int32).max else np.int64
        indptr = np.zeros(self.n_clusters + 1, dtype=index_type)
        indptr[1:] = np.cumsum(np.bincount(self.slot[items], weights=self.entries[items],
                                           minlength=self.n_clusters)).astype(np.int64)
        indices, data = np.empty(total, dtype=index_type), np.empty(total)
        done = 0
        for begin in range(0, len(items), ENTRY_ITEMS):
            rows, cols, values = self.cell_entries(items[begin:begin + ENTRY_ITEMS])
            order = np.argsort(cols, kind="stable")
            indices[done:done + len(rows)] = rows[order]
            data[done:done + len(rows)] = values[order]
            done += len(rows)
        matrix = sparse.csc_matrix((data, indices, indptr), shape=(height, self.n_clusters))
        matrix.sum_duplicates()   # one entry per (row, cluster): fewer entries where a cluster has a cell's items
        return matrix, None

    def cell_point_sums(self, idx: np.ndarray, shifts: tuple = ((None, 1),)) -> list[np.ndarray]:
        """The per-(side, cell, option) sums of the subset's items with weights all one (a column), summed in item
        order (the same whatever the unit), once per (shift, bands) of ``shifts``: with a shift (per cluster
        column, a band number) each cluster's items in its band of ``bands``."""
        height = len(SIDES) * self.width
        sums = [np.zeros(bands * height) for _, bands in shifts]
        for begin in range(0, len(idx), ENTRY_ITEMS):
            rows, cols, values = self.cell_entries(idx[begin:begin + ENTRY_ITEMS])
            for total, (shift, bands) in zip(sums, shifts):
                at = rows if shift is None else rows + shift[cols] * height
                total += np.bincount(at, weights=values, minlength=bands * height)
        return [total[:, None] for total in sums]

    def cell_point(self, idx: np.ndarray) -> tuple[float, float]:
        """(wasserstein, representativeness) of the subset's items, weights all one."""
        cells = np.unique(self.cell[idx])
        units = _Cells(self, self.first_row[cells], self.k_cell[cells], np.zeros(len(cells), dtype=np.int64),
                       np.arange(len(cells)), 1)
        wasserstein, representativeness = units.means(self.cell_point_sums(idx)[0])
        return float(wasserstein[0, 0]), float(representativeness[0, 0])

    def _summarise(self, point: float, boot: np.ndarray) -> tuple[float, float, float]:
        boot = boot[np.isfinite(boot)]
        if not np.isfinite(point) or not len(boot):
            return float(point), float("nan"), float("nan")
        low, high = np.quantile(boot, [self.alpha, 1 - self.alpha])
        return float(point), float(low), float(high)


class _Cells:
    """The cells whose distances a product of per-(side, cell, option) sums gives, and the subsets that average
    them: per cell (a *unit*) the first row of its sums and its K; per K the units and an aggregator (subsets ×
    units, 1 where the subset has the cell), so that a subset's cell metric is the mean over its cells of those
    with a distance (a replicate that drew none of a subset's items in a cell has no distance there).

    A unit's side s, option j is row offset + s × width + j of the sums (the whole table's layout, each side a band),
    or offset + s × K + j in a compact layout (:func:`_compact`). Units of one K whose rows follow each other (a
    *run*) are read as views of the sums; scattered ones are copied out."""

    def __init__(self, e: Evaluation, offsets: np.ndarray, k: np.ndarray, owners: np.ndarray, units: np.ndarray,
                 n_owners: int, compact: bool = False):
        """``offsets``, ``k``: per unit; (``owners``, ``units``): which of ``n_owners`` subsets has which unit."""
        self.width, self.represented, self.n_owners, self.compact = e.width, e.represented_any, n_owners, compact
        self.groups = []
        for size in np.unique(k):
            chosen = np.flatnonzero(k == size)
            chosen = chosen[np.argsort(offsets[chosen], kind="stable")]
            local = np.full(len(k), -1)
            local[chosen] = np.arange(len(chosen))
            pick = local[units] >= 0
            aggregator = sparse.csc_matrix((np.ones(int(pick.sum())), (owners[pick], local[units[pick]])),
                                           shape=(n_owners, len(chosen)))
            first = offsets[chosen]
            stride = len(SIDES) * size if compact else size
            breaks = np.flatnonzero(np.diff(first) != stride) + 1
            runs = np.split(np.arange(len(chosen)), breaks) if len(breaks) < MAX_RUNS else None
            self.groups.append((int(size), first, aggregator, runs))

    def means(self, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(wasserstein, representativeness), owners × replicates, of per-row sums × replicates (changed in
        place)."""
        return _ratios_of(self.totals(sums))

    def totals(self, sums: np.ndarray) -> np.ndarray:
        """Owners × (4 × replicates): per replicate the sums over the owner's units of wasserstein, of
        representativeness, and the counts of units that have each, of per-row sums × replicates (changed in place);
        the units taken a few at a time (copies within an eighth of the block size)."""
        n_rep = sums.shape[1]
        totals = np.zeros((self.n_owners, 4 * n_rep))
        for size, first, aggregator, runs in self.groups:
            step = max(1, BLOCK_ELEMENTS // (8 * size * n_rep))
            pieces = ([run[i:i + step] for run in runs for i in range(0, len(run), step)] if runs is not None
                      else [np.arange(b, min(b + step, len(first))) for b in range(0, len(first), step)])
            for piece in pieces:
                if not len(piece):
                    continue
                parts = self._parts(sums, size, first, piece, runs is not None)
                wasserstein, representativeness = _distances(parts, size)
                missing = np.isnan(np.concatenate([wasserstein, representativeness], axis=1))
                values = np.concatenate([wasserstein, representativeness, ~missing], axis=1, dtype=float)
                values[:, :2 * n_rep][missing] = 0.0
                totals += aggregator[:, piece[0]:piece[-1] + 1] @ values
        return totals

    def _parts(self, sums: np.ndarray, size: int, first: np.ndarray, piece: np.ndarray, run: bool) -> list:
        """The sides' option sums of consecutive units (units × K × replicates each): views of a run, else
        copies."""
        sides = len(SIDES) if self.represented else 2
        n_rep, start = sums.shape[1], int(first[piece[0]])
        if run and self.compact:
            block = sums[start:start + len(piece) * len(SIDES) * size].reshape(len(piece), len(SIDES), size, n_rep)
            return [block[:, side] for side in range(sides)]
        if run:
            return [sums[start + side * self.width:start + side * self.width + len(piece) * size].reshape(
                len(piece), size, n_rep) for side in range(sides)]
        at = first[piece][:, None] + np.arange(size)
        stride = size if self.compact else self.width
        return [sums[at + side * stride] for side in range(sides)]


def _ratios_of(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wasserstein, representativeness), owners × replicates, of :meth:`_Cells.totals` (NaN without a unit)."""
    n_rep = totals.shape[1] // 4
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(totals[:, 2 * n_rep:] > 0, totals[:, :2 * n_rep] / totals[:, 2 * n_rep:], np.nan)
    return means[:, :n_rep], means[:, n_rep:]


def _distances(parts: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit and replicate, from the option sums of its sides (units × K × replicates each, changed in place):
    W1 / (K − 1) of the gold and predicted labels (1 where no prediction parsed; NaN without a gold label) and
    1 − W1 / (K − 1) of the respondents' and the mean predicted distributions (NaN without both; all NaN when only
    the two label sides are given)."""
    for j in range(1, k):                           # cumulative sums over the ordered options, in place
        for part in parts:
            part[:, j] += part[:, j - 1]
    gold_total, predicted_total, wasserstein = _gap(parts[0], parts[1], k)
    wasserstein = np.where(gold_total > 0, np.where(predicted_total > 0, wasserstein, 1.0), np.nan)
    if len(parts) < 4:
        return wasserstein, np.full_like(wasserstein, np.nan)
    counts_total, probs_total, gap = _gap(parts[2], parts[3], k)
    return wasserstein, np.where((counts_total > 0) & (probs_total > 0), 1.0 - gap, np.nan)


def _gap(first: np.ndarray, second: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(totals of each, Σ_j<K−1 |F1_j − F2_j| / (K − 1)) of two cumulative sums (units × K × replicates), the CDFs
    worked out in place."""
    totals = first[:, -1], second[:, -1]             # views: only the first K − 1 options change below
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y = first[:, :-1], second[:, :-1]
        np.multiply(x, (1.0 / totals[0])[:, None], out=x)
        np.multiply(y, (1.0 / totals[1])[:, None], out=y)
        np.subtract(x, y, out=x)
        np.abs(x, out=x)
        return totals[0], totals[1], x.sum(axis=1) / max(k - 1, 1)


class _Plan:
    """Where each subset's sums come from, and the sparse matrices (sums × cluster columns) that give them.

    Ratio sums: a subset that holds whole clusters belongs to a *family* of disjoint such subsets, whose sums are
    the whole table's per-cluster sums with each member's rows shifted apart (one product for the family); any other
    subset has rows of its own. Cell sums: a subset that holds whole cells averages its cells' distances from the
    whole table's product; else a family's shifted product, else a matrix of its own. Only the cells a subset has
    are computed."""

    def __init__(self, evaluation: Evaluation, subsets: list[np.ndarray]):
        e = self.e = evaluation
        n_items, n_columns = len(e.items), e.n_clusters
        height = len(SIDES) * e.width
        cluster_items = np.bincount(e.slot, minlength=n_columns)
        cell_items = np.bincount(e.cell, minlength=e.n_cells)
        self.families: list[dict] = []
        self.own: list[int] = []
        whole_cell: list[tuple[int, np.ndarray]] = []
        self.own_cells: list[tuple[int, sparse.csc_matrix, _Cells]] = []
        family_of, own_points = {}, {}
        for s, idx in enumerate(subsets):
            columns = np.unique(e.slot[idx])
            whole_clusters = bool((np.bincount(e.slot[idx], minlength=n_columns)[columns]
                                   == cluster_items[columns]).all())
            cells = np.unique(e.cell[idx])
            whole_cells = bool((np.bincount(e.cell[idx], minlength=e.n_cells)[cells] == cell_items[cells]).all())
            if whole_clusters:
                family = next((f for f in self.families if (f["owner"][columns] < 0).all()), None)
                if family is None:
                    family = {"owner": np.full(n_columns, -1, dtype=np.int64), "members": [], "cells": []}
                    self.families.append(family)
                family["owner"][columns] = len(family["members"])
                family["members"].append(s)
                family_of[s] = family
            else:
                self.own.append(s)
            if whole_cells:
                whole_cell.append((s, cells))
            elif whole_clusters:
                family_of[s]["cells"].append((s, cells))
            else:
                layout = _compact(e, np.zeros(len(cells), dtype=np.int64), cells, 1)
                matrix, point = e.cell_matrix(idx, points=True)
                matrix = sparse.csc_matrix((matrix.data, layout["lookup"][matrix.indices], matrix.indptr),
                                           shape=(layout["rows"], n_columns))
                units = _Cells(e, layout["offsets"], e.k_cell[cells], np.zeros(len(cells), dtype=np.int64),
                               np.arange(len(cells)), 1, compact=True)
                self.own_cells.append((s, matrix, units))
                if point is not None:
                    wasserstein, representativeness = units.means(point[layout["full_rows"]])
                    own_points[s] = (float(wasserstein[0, 0]), float(representativeness[0, 0]))
        n_rows = len(e.rows)
        whole = np.arange(n_items)
        self.ratio = _csc(*e.per_cluster(whole), shape=(n_rows, n_columns))
        self.cell_sums = None
        if whole_cell or any(f["cells"] for f in self.families):
            self.cell_sums = e.cell_matrix(whole)[0]
        if self.own:  # made row by row (each subset's entries come by score row), then turned to columns
            parts = []
            for s in self.own:
                rows, cols, values = e.per_cluster(subsets[s])
                parts.append((np.bincount(rows, minlength=n_rows), cols.astype(np.int32), values))
            indptr = np.concatenate([[0], np.cumsum(np.concatenate([counts for counts, _, _ in parts]))])
            by_row = sparse.csr_matrix((np.concatenate([v for _, _, v in parts]),
                                        np.concatenate([c for _, c, _ in parts]), indptr),
                                       shape=(len(self.own) * n_rows, n_columns))
            del parts
            self.own_ratio = by_row.tocsc()
            del by_row
        # the whole table's cells, averaged by each whole-cell subset
        self.whole_cell = [s for s, _ in whole_cell]
        self.base_cells = None
        if whole_cell:
            owners = np.concatenate([np.full(len(c), i) for i, (_, c) in enumerate(whole_cell)]).astype(np.int64)
            units = np.concatenate([c for _, c in whole_cell]).astype(np.int64)
            self.base_cells = _Cells(e, e.first_row, e.k_cell, owners, units, len(whole_cell))
        for family in self.families:
            members = len(family["members"])
            uncovered = bool((family["owner"] < 0).any())
            family["shift"] = np.where(family["owner"] < 0, members, family["owner"])  # uncovered: a dummy member
            family["size"] = members + uncovered
            if family["cells"]:  # units: (member, cell) pairs, the member's band shifted by its place
                member = {s: m for m, s in enumerate(family["members"])}
                pairs_member = np.concatenate([np.full(len(c), member[s]) for s, c in family["cells"]])
                pairs_cell = np.concatenate([c for _, c in family["cells"]]).astype(np.int64)
                owners = np.concatenate([np.full(len(c), i) for i, (_, c) in enumerate(family["cells"])])
                compact = len(SIDES) * int(e.k_cell[pairs_cell].sum()) < COMPACT_SHARE * family["size"] * height
                if compact:  # few of the bands' cells have items: their rows only
                    family["layout"] = _compact(e, pairs_member, pairs_cell, family["size"])
                    if self.cell_sums.nnz <= CACHED_ENTRIES:
                        family["indices"] = _shifted(self.cell_sums, family, height, cells=True).indices
                    family["units"] = _Cells(e, family["layout"]["offsets"], e.k_cell[pairs_cell],
                                             owners.astype(np.int64), np.arange(len(pairs_cell)),
                                             len(family["cells"]), compact=True)
                else:  # every cell of each member's band (runs; the cells it lacks have no distance)
                    bands = np.unique(pairs_member)
                    all_member = np.repeat(bands, e.n_cells)
                    all_cell = np.tile(np.arange(e.n_cells), len(bands))
                    unit_of_pair = np.searchsorted(bands, pairs_member) * e.n_cells + pairs_cell
                    family["units"] = _Cells(e, all_member * height + e.first_row[all_cell], e.k_cell[all_cell],
                                             owners.astype(np.int64), unit_of_pair, len(family["cells"]))
        # the point estimates of the cell metrics
        self.cells = own_points
        with_cells = [f for f in self.families if f["cells"]]
        if whole_cell or with_cells:  # one pass over the items' entries: the whole table's, each family's bands
            sums = e.cell_point_sums(whole, ((None, 1),) + tuple((f["shift"], f["size"]) for f in with_cells))
            if whole_cell:
                wasserstein, representativeness = self.base_cells.means(sums[0])
                for i, s in enumerate(self.whole_cell):
                    self.cells[s] = (float(wasserstein[i, 0]), float(representativeness[i, 0]))
            for family, bands in zip(with_cells, sums[1:]):
                if "layout" in family:
                    bands = bands[family["layout"]["full_rows"]]
                wasserstein, representativeness = family["units"].means(bands)
                for i, (s, _) in enumerate(family["cells"]):
                    self.cells[s] = (float(wasserstein[i, 0]), float(representativeness[i, 0]))
        for s, idx in enumerate(subsets):
            if s not in self.cells:
                self.cells[s] = e.cell_point(idx)

    def ratio_sums(self, counts: np.ndarray, block: int):
        """(subset, replicate columns, per-row sums × replicates) for every subset; ``counts``: the clusters' weights
        (columns × replicates), turned to floats ``block`` replicates at a time."""
        n_rows = len(self.e.rows)
        products = [(family, family["members"]) for family in self.families]
        if self.own:
            products.append((self.own_ratio, self.own))
        for matrix, owners in products:
            if isinstance(matrix, dict):
                matrix = _shifted(self.ratio, matrix, n_rows)
            for begin in range(0, counts.shape[1], block):
                sums = matrix @ counts[:, begin:begin + block].astype(float, copy=False)
                for i, s in enumerate(owners):
                    yield s, slice(begin, begin + sums.shape[1]), sums[i * n_rows:(i + 1) * n_rows]
            del matrix

    def cell_metrics(self, counts: np.ndarray, block: int):
        """(subset, replicate columns, wasserstein, representativeness) for every subset: means over its cells;
        ``counts`` as :meth:`ratio_sums` takes them."""
        height = len(SIDES) * self.e.width
        products = []   # (the matrix, or the family whose shifted matrix it is, the units, their subsets)
        if self.base_cells is not None:
            products.append((self.cell_sums, self.base_cells, self.whole_cell))
        for family in self.families:
            if family["cells"]:
                products.append((family, family["units"], [s for s, _ in family["cells"]]))
        products += [(matrix, units, [s]) for s, matrix, units in self.own_cells]
        for matrix, units, owners in products:
            if isinstance(matrix, dict):    # a family's: made when needed, one at a time
                matrix = _shifted(self.cell_sums, matrix, height, cells=True)
            if units is not self.base_cells and self.e.cells_in_clusters:
                yield from self._present_means(matrix, units, owners, counts, block)
                continue
            dtype = float if units is self.base_cells else BREAKDOWN_FLOAT
            matrix = matrix.astype(dtype, copy=False)
            step = max(1, min(block, BLOCK_ELEMENTS // max(matrix.shape[0], 1)))
            for begin in range(0, counts.shape[1], step):
                w = counts[:, begin:begin + step].astype(dtype, copy=False)
                sums = matrix @ w
                wasserstein, representativeness = units.means(sums)
                del sums, w         # before the next product's
                for i, s in enumerate(owners):
                    yield s, slice(begin, begin + wasserstein.shape[1]), wasserstein[i], representativeness[i]
            del matrix


    def _present_means(self, matrix: sparse.csc_matrix, units: _Cells, owners: list[int], counts: np.ndarray,
                       block: int):
        """:meth:`cell_metrics` of one product where every cell lies in one cluster (the question unit): a cell's
        distances do not change with its cluster's weight (they compare normalised sums), so they are worked out
        once per cluster column (weights: the identity), and a replicate averages those of the clusters it drew."""
        step = max(1, BLOCK_ELEMENTS // max(matrix.shape[0], 1))
        parts = [np.split(units.totals(matrix[:, begin:begin + step].toarray()), 4, axis=1)
                 for begin in range(0, matrix.shape[1], step)]
        per_cluster = [np.concatenate(quantity, axis=1) for quantity in zip(*parts)]   # 4 × (owners × clusters)
        for begin in range(0, counts.shape[1], block):
            drawn = (counts[:, begin:begin + block] > 0).astype(float)
            totals = np.concatenate([quantity @ drawn for quantity in per_cluster], axis=1)
            wasserstein, representativeness = _ratios_of(totals)
            for i, s in enumerate(owners):
                yield s, slice(begin, begin + drawn.shape[1]), wasserstein[i], representativeness[i]


def _csc(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sparse.csc_matrix:
    """A CSC matrix of the (rows, columns, values) entries, duplicates summed."""
    index_type = np.int32 if max(*shape, len(rows)) < np.iinfo(np.int32).max else np.int64
    order = np.argsort(cols, kind="stable")
    indptr = np.zeros(shape[1] + 1, dtype=index_type)
    indptr[1:] = np.cumsum(np.bincount(cols, minlength=shape[1]))
    matrix = sparse.csc_matrix((values[order], rows[order].astype(index_type), indptr), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _shifted(matrix: sparse.csc_matrix, family: dict, height: int, cells: bool = False) -> sparse.csc_matrix:
    """``matrix`` (rows × cluster columns) with each column's rows moved to its family member's band: the sums of
    every member of a family of disjoint whole-cluster subsets from one product. ``cells``: the cell sums, in the
    family's compact layout where it has one (its rows made once where cached)."""
    layout = family.get("layout") if cells else None
    rows = layout["rows"] if layout is not None else family["size"] * height
    if cells and "indices" in family:
        return sparse.csc_matrix((matrix.data, family["indices"], matrix.indptr), shape=(rows, matrix.shape[1]))
    if family["size"] == 1 and layout is None:
        return matrix
    dtype = matrix.indices.dtype if family["size"] * height < np.iinfo(np.int32).max else np.int64
    indices = np.repeat((family["shift"] * height).astype(dtype), np.diff(matrix.indptr))
    indices += matrix.indices
    if layout is not None:
        indices = layout["lookup"][indices]
    return sparse.csc_matrix((matrix.data, indices, matrix.indptr), shape=(rows, matrix.shape[1]))


def _compact(e: Evaluation, member: np.ndarray, cell: np.ndarray, bands: int) -> dict:
    """A layout of the per-(side, cell, option) sums with the rows of the given (member band, cell) units only, each
    unit's sides one after the other (K rows each): ``lookup`` (a row of the bands' full layout -> its row here; a
    row no unit has, e.g. of a member read off the whole table, -> the last row, which no unit reads), ``full_rows``
    (the units' rows in the full layout), ``offsets`` (each unit's first row) and ``rows``."""
    height = len(SIDES) * e.width
    k = e.k_cell[cell]
    order = np.lexsort((np.arange(len(cell)), k))     # units of one K together: runs (:class:`_Cells`)
    sizes = np.zeros(len(cell), dtype=np.int64)
    sizes[order] = len(SIDES) * k[order]
    place = np.empty(len(cell), dtype=np.int64)
    place[order] = np.concatenate([[0], np.cumsum(sizes[order])[:-1]]).astype(np.int64)
    offsets = np.concatenate([place, [int(sizes.sum())]])
    full_rows = np.concatenate([member[:, None] * height + side * e.width + e.first_row[cell][:, None]
                                for side in range(len(SIDES))], axis=1)   # units × sides, the first of K rows
    unit = np.repeat(order, sizes[order])                                  # the unit of each compact row
    ramp = np.arange(int(offsets[-1])) - offsets[unit]                     # side × K + option
    side, option = np.divmod(ramp, k[unit])
    full = full_rows[unit, side] + option
    lookup = np.full(bands * height, len(full),
                     dtype=np.int32 if offsets[-1] < np.iinfo(np.int32).max else np.int64)
    lookup[full] = np.arange(len(full))
    return {"lookup": lookup, "full_rows": full, "offsets": offsets[:-1], "rows": len(full) + 1}

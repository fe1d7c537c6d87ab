"""Non-LLM baselines fit on a corpus train split: what a value-prediction model has to beat.

Each baseline predicts an option for every item of an evaluation split and says, in ``fallback``, when its own rule
could not apply (an unseen country or question) and a simpler one answered instead: national label -> global
majority -> option prior (the option position most often chosen in training among questions with as many options).

Every baseline predicts a split in blocks of :data:`BLOCK_ITEMS` items, so its working memory does not grow with the
split (WVS-7's cross_value has about 550,000 items). ``knn`` searches an exact index (bitsets of the training rows
per question and attribute value, see :class:`NearestProfiles`); ``knn`` and ``gbt`` work out each distinct
evaluation profile of a question once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from ..errors import DvmapError
from ..schema import attribute_columns

KINDS = ("uniform", "global_majority", "national_label", "knn", "gbt")
RULE_NAMES = {"country_question": "national_label", "question": "global_majority"}
#: Evaluation items predicted at a time.
BLOCK_ITEMS = 50_000
#: kNN: query profiles x 64-bit words of training rows searched at a time (each bit plane of a chunk ~0.5 MB).
KNN_CHUNK_WORDS = 1 << 16


def make_baseline(kind: str, seed: int = 0, k: int = 5) -> "Baseline":
    factories = {"uniform": lambda: Uniform(seed), "global_majority": lambda: Majority(("question",)),
                 "national_label": lambda: Majority(("country_question", "question")),
                 "knn": lambda: NearestProfiles(k), "gbt": lambda: BoostedTrees(seed)}
    if kind not in factories:
        raise DvmapError(f"unknown baseline {kind!r}; choose from {list(KINDS)}")
    return factories[kind]()


class Baseline:
    """fit(train) once, then predict(items) -> DataFrame(prediction_index, fallback) for any split."""

    def fit(self, train: pd.DataFrame) -> "Baseline":
        if train.empty:
            raise DvmapError("the training corpus is empty")
        self.train = train.reset_index(drop=True)
        self.tables = {
            "country_question": _majority(self.train, ["Country", "question_id"]),
            "question": _majority(self.train, ["question_id"]),
        }
        relative = self.train[["answer_index"]].assign(k=self.train["options"].map(len))
        self.prior = _majority(relative, ["k"]).set_index("k")["answer_index"]
        return self

    def predict(self, items: pd.DataFrame) -> pd.DataFrame:
        """Predictions for ``items`` (any index; rows in their order), computed block by block."""
        blocks = [predicted for _, predicted in self.predict_stream([items])]
        if not blocks:
            return pd.DataFrame({"prediction_index": np.zeros(0, dtype=np.int64), "fallback": np.empty(0, object)})
        return pd.concat(blocks, ignore_index=True)

    def predict_stream(self, parts: Iterable[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """(items, predictions) per block of at most :data:`BLOCK_ITEMS` items, for a split given in consecutive
        parts (e.g. parquet record batches): the same as :meth:`predict` on the whole split, without holding it."""
        state = self.start()
        for part in parts:
            for start in range(0, len(part), BLOCK_ITEMS):
                block = part.iloc[start:start + BLOCK_ITEMS].reset_index(drop=True)
                index, fallback = self.predict_block(block, state)
                yield block, pd.DataFrame({"prediction_index": np.asarray(index, dtype=np.int64),
                                           "fallback": np.asarray(fallback, dtype=object)})

    def start(self):
        """What the blocks of one split share (e.g. a random stream)."""
        return None

    def predict_block(self, items: pd.DataFrame, state) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def majority(self, items: pd.DataFrame, levels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(answer index, rule) per item: the first level that knows the item answers, else the option prior;
        the rule is a name of :data:`RULE_NAMES` or ``option_prior``."""
        index = np.full(len(items), -1)
        rule = np.full(len(items), "option_prior", dtype=object)
        for level in reversed(levels):  # the more specific levels overwrite
            keys = ["Country", "question_id"] if level == "country_question" else ["question_id"]
            found = items[keys].merge(self.tables[level], how="left", on=keys)["answer_index"].to_numpy()
            hit = ~np.isnan(found)
            index[hit], rule[hit] = found[hit], RULE_NAMES[level]
        unknown = index < 0
        index[unknown] = items["options"].map(len)[unknown].map(self.prior).fillna(0).astype(int)
        return index, rule


class Uniform(Baseline):
    def __init__(self, seed: int):
        self.seed = seed

    def start(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)  # one stream over the blocks: the draws of one call on all items

    def predict_block(self, items: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        index = np.floor(rng.random(len(items)) * items["options"].map(len).to_numpy()).astype(int)
        return index, np.full(len(items), None, dtype=object)


class Majority(Baseline):
    """Global per-question majority, or with ('country_question', 'question') the national label."""

    def __init__(self, levels: tuple[str, ...]):
        self.levels = levels

    def predict_block(self, items: pd.DataFrame, state) -> tuple[np.ndarray, np.ndarray]:
        index, rule = self.majority(items, self.levels)
        return index, np.where(rule == RULE_NAMES[self.levels[0]], None, rule)


class PerQuestion(Baseline):
    """A model per training question; items of unseen questions get the option prior. A question with a single
    answer in training needs no model: the global majority is that answer."""

    def fit(self, train: pd.DataFrame) -> "PerQuestion":
        super().fit(train)
        self.attributes = attribute_columns(self.train)
        grouped = self.train.groupby("question_id", sort=False)
        self.pools = grouped.indices  # question -> its training rows, in training order
        self.varied = grouped["answer_index"].nunique() > 1
        return self

    def start(self) -> dict[str, int]:
        """Options per question, filled block by block: the length of the split's first item's options."""
        return {}

    def predict_block(self, items: pd.DataFrame, n_options: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        first = items.drop_duplicates("question_id")
        for qid, options in zip(first["question_id"], first["options"]):
            n_options.setdefault(qid, len(options))
        index, rule = self.majority(items, ("question",))
        fallback = rule  # global_majority where the question is known, else option_prior ...
        codes, questions = pd.factorize(items["question_id"])
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(questions) + 1))
        for c, qid in enumerate(questions):
            if qid not in self.pools:
                continue
            rows = order[bounds[c]:bounds[c + 1]]
            fallback[rows] = None  # ... but a known question is the model's (one answer: the majority is it)
            if self.varied[qid]:
                index[rows] = self.predict_question(qid, items.iloc[rows], n_options[qid])
        return index, fallback

    def predict_question(self, qid: str, group: pd.DataFrame, n_options: int) -> np.ndarray:
        raise NotImplementedError


class NearestProfiles(PerQuestion):
    """Majority answer of the k training profiles nearest in Hamming distance on the attributes (same question).

    Of the training rows at the same distance, the earlier ones (in training order) are nearer, so exactly k rows
    vote; a tied vote goes to the earlier option. The search is exact and needs no distance matrix: per question,
    each attribute value has a bitset of the training rows holding it; a query's bitsets are summed bit-parallel into
    per-row match counters, and the distance rings (rows within distance 0, 1, ...) are read off the counters until
    one holds k rows."""

    def __init__(self, k: int):
        self.k = k

    def fit(self, train: pd.DataFrame) -> "NearestProfiles":
        super().fit(train)
        # attribute values as codes; compared as text, the way the attributes are written
        self.values = [pd.Index(pd.factorize(self.train[a].astype(str), use_na_sentinel=False)[1])
                       for a in self.attributes]
        self.codes = np.stack([v.get_indexer(self.train[a].astype(str)) for v, a in zip(self.values, self.attributes)],
                              axis=1) if self.attributes else np.zeros((len(self.train), 0), dtype=np.int64)
        self.answers = self.train["answer_index"].to_numpy(dtype=float)
        self.indexes: dict[str, _BitIndex] = {}  # built on first use
        return self

    def query_codes(self, group: pd.DataFrame) -> np.ndarray:
        """Attribute codes of items; a value unseen in training gets a code no training row has."""
        columns = []
        for values, a in zip(self.values, self.attributes):
            code = values.get_indexer(group[a].astype(str))
            columns.append(np.where(code < 0, len(values), code))
        return np.stack(columns, axis=1) if columns else np.zeros((len(group), 0), dtype=np.int64)

    def predict_question(self, qid: str, group: pd.DataFrame, n_options: int) -> np.ndarray:
        if qid not in self.indexes:
            rows = self.pools[qid]
            self.indexes[qid] = _BitIndex(self.codes[rows], [len(v) for v in self.values], self.answers[rows])
        profiles, inverse = np.unique(self.query_codes(group), axis=0, return_inverse=True)
        votes = self.indexes[qid].votes(profiles, self.k, n_options)
        return votes.argmax(axis=1)[inverse.reshape(-1)]


class _BitIndex:
    """The training rows of one question as bitsets: bit r of ``bits[a][v]`` is set when row r (in training order)
    has value v of attribute a; ``bits[a][-1]`` (values unseen in training) is empty."""

    def __init__(self, codes: np.ndarray, cardinalities: list[int], answers: np.ndarray):
        self.size, self.n_attributes = codes.shape
        self.words = -(-self.size // 64)
        self.answers = answers
        self.local: list[np.ndarray] = []  # per attribute: training code -> row of bits (values absent: the last)
        self.bits: list[np.ndarray] = []
        positions = np.arange(self.size)
        word, bit = positions // 64, np.left_shift(np.uint64(1), (positions % 64).astype(np.uint64))
        for a, cardinality in enumerate(cardinalities):
            present, local = np.unique(codes[:, a], return_inverse=True)
            lookup = np.full(cardinality + 1, len(present))
            lookup[present] = np.arange(len(present))
            key = local.reshape(-1) * self.words + word
            order = np.argsort(key, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
            flat = np.zeros((len(present) + 1) * self.words, dtype=np.uint64)
            flat[key[order][starts]] = np.bitwise_or.reduceat(bit[order], starts)
            self.local.append(lookup)
            self.bits.append(flat.reshape(len(present) + 1, self.words))
        valid = np.zeros(self.words * 64, dtype=bool)
        valid[: self.size] = True
        self.valid = np.packbits(valid, bitorder="little").view("<u8")

    def votes(self, profiles: np.ndarray, k: int, n_options: int) -> np.ndarray:
        """Per query profile, the answers of its k nearest rows counted per option (options >= n_options and
        missing answers do not count)."""
        if self.size <= k:  # every row votes
            return np.tile(_count(np.zeros(self.size, dtype=np.int64), self.answers, 1, n_options), (len(profiles), 1))
        chunk = max(1, KNN_CHUNK_WORDS // self.words)
        return np.concatenate([self._votes(profiles[s:s + chunk], k, n_options)
                               for s in range(0, len(profiles), chunk)] or [np.zeros((0, n_options), np.int64)])

    def _votes(self, profiles: np.ndarray, k: int, n_options: int) -> np.ndarray:
        planes = self._match_counts(profiles)
        n = len(profiles)
        found = np.zeros(n, dtype=bool)
        inner = np.zeros((n, self.words), dtype=np.uint64)  # rows nearer than the ring that completes k
        ring = np.zeros((n, self.words), dtype=np.uint64)  # rows of that ring
        previous = np.zeros((n, self.words), dtype=np.uint64)
        for distance in range(self.n_attributes + 1):
            within = _at_least(planes, self.n_attributes - distance, self.valid, n)
            done = ~found & (np.bitwise_count(within).sum(axis=1) >= k)
            inner[done], ring[done] = previous[done], within[done] & ~previous[done]
            found |= done
            if found.all():
                break
            previous = within
        taken = np.bitwise_count(inner).sum(axis=1)
        rows, positions = _first_bits(inner, np.full(n, k))
        more_rows, more_positions = _first_bits(ring, k - taken)
        return _count(np.r_[rows, more_rows], self.answers[np.r_[positions, more_positions]], n, n_options)

    def _match_counts(self, profiles: np.ndarray) -> list[np.ndarray]:
        """Per query and row, the number of attributes on which they agree, as bit planes (least significant
        first), summed attribute by attribute with a ripple-carry adder on whole words."""
        planes: list[np.ndarray] = []
        for a in range(self.n_attributes):
            carry = self.bits[a][self.local[a][profiles[:, a]]]
            for b, plane in enumerate(planes):
                planes[b] = plane ^ carry
                carry = plane & carry
            if len(planes) < (a + 1).bit_length():
                planes.append(carry)
        return planes


def _at_least(planes: list[np.ndarray], threshold: int, valid: np.ndarray, n: int) -> np.ndarray:
    """Bitsets of the rows whose bit-sliced counter is >= ``threshold``."""
    if threshold <= 0:
        return np.broadcast_to(valid, (n, len(valid))).copy()
    if threshold >= 1 << len(planes):
        return np.zeros((n, len(valid)), dtype=np.uint64)
    result = None  # None: all ones
    for b, plane in enumerate(planes):
        if threshold >> b & 1:
            result = plane if result is None else plane & result
        elif result is not None:
            result = plane | result
    return result


def _first_bits(bits: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, position) of the first ``limit[query]`` set bits of each query's bitset."""
    counts = np.bitwise_count(bits)
    before = np.cumsum(counts, axis=1, dtype=np.int64) - counts
    rows, words = np.nonzero((counts > 0) & (before < limit[:, None]))
    unpacked = np.unpackbits(bits[rows, words].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    rank = before[rows, words][:, None] + np.cumsum(unpacked, axis=1, dtype=np.int64) - 1
    hit, bit = np.nonzero(unpacked.astype(bool) & (rank < limit[rows][:, None]))
    return rows[hit], words[hit] * 64 + bit


def _count(rows: np.ndarray, answers: np.ndarray, n: int, n_options: int) -> np.ndarray:
    """(n, n_options) counts of ``answers`` per query row."""
    valid = np.isfinite(answers) & (answers >= 0) & (answers < n_options)
    flat = rows[valid] * n_options + answers[valid].astype(np.int64)
    return np.bincount(flat, minlength=n * n_options).reshape(n, n_options)


class BoostedTrees(PerQuestion):
    """Gradient-boosted trees (scikit-learn) on one-hot attributes; unseen categories are ignored.

    A question's training rows are its profiles (one row per profile and question in any corpus dvmap makes or
    imports), so there is nothing to collapse; identical rows, where a hand-made table has them, are fitted as they
    are: scikit-learn's HistGradientBoosting counts rows, not weights, for ``min_samples_leaf`` (scikit-learn issue
    #34745), so one weighted row per distinct row would grow other trees. Each distinct evaluation profile is
    predicted once. Fitting and predicting use one OpenMP thread: a baseline job has one core, the trees do not
    depend on the thread count, and threads competing for a busy core slow these small fits down several times."""

    def __init__(self, seed: int):
        self.seed = seed

    def fit(self, train: pd.DataFrame) -> "BoostedTrees":
        self.models: dict[str, tuple] = {}  # fitted lazily per question, for the questions asked about
        return super().fit(train)

    def predict_question(self, qid: str, group: pd.DataFrame, n_options: int) -> np.ndarray:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.preprocessing import OneHotEncoder
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            if qid not in self.models:
                pool = self.train.iloc[self.pools[qid]]
                encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                x = encoder.fit_transform(pool[self.attributes].astype(str))
                model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, early_stopping=False,
                                                       random_state=self.seed)
                self.models[qid] = (encoder, model.fit(x, pool["answer_index"].to_numpy()))
            encoder, model = self.models[qid]
            profiles = group[self.attributes].astype(str)
            ids = profiles.groupby(self.attributes, sort=False, dropna=False).ngroup().to_numpy()
            first = np.unique(ids, return_index=True)[1]  # each distinct profile predicted once
            return model.predict(encoder.transform(profiles.iloc[first]))[ids]


def _majority(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The most frequent answer_index per key (ties to the earlier option)."""
    counts = frame.groupby(keys + ["answer_index"], observed=True).size().rename("c").reset_index()
    counts = counts.sort_values(keys + ["c", "answer_index"], ascending=[True] * len(keys) + [False, True])
    return counts.drop_duplicates(keys)[keys + ["answer_index"]].reset_index(drop=True)

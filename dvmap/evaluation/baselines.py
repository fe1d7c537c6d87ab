"""Non-LLM baselines fit on a corpus train split: what a value-prediction model has to beat.

Each baseline predicts an option for every item of an evaluation split and says, in ``fallback``, when its own rule
could not apply (an unseen country or question) and a simpler one answered instead: national label -> global
majority -> option prior (the option position most often chosen in training among questions with as many options).

With ``probs`` (``dvmap baseline`` asks for them) each baseline also gives its distribution over every item's
options (``option_probs``): the class frequencies of what it fits on, so that it compares fairly with an LLM's
distribution. ``uniform``: 1/K. ``global_majority``: the answer frequencies of the question in training.
``national_label``: those of the (country, question) in training. ``knn``: the vote shares of the k neighbours.
``gbt``: the trees' ``predict_proba`` on the item's options (classes absent from training get 0). Where a fallback
answered, the distribution is that of the level that answered: the question's frequencies where the national label
fell back to the global majority (and for a question with a single answer in training, which needs no model), and
where the option prior answered, the frequencies of the option positions in training among questions with as many
options (uniform when training has no question with as many). The most probable option of every distribution is
the prediction (ties to the earlier option), except for ``uniform`` (a random option) and where the trees' raw
score and their probabilities disagree in the last bit.

Every baseline predicts a split in blocks of :data:`BLOCK_ITEMS` items, so its working memory does not grow with the
split (WVS-7's cross_value has about 550,000 items). ``knn`` searches an exact index (bitsets of the training rows
per question and attribute value, see :class:`NearestProfiles`); ``knn`` and ``gbt`` work out each distinct
evaluation profile of a question once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

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
    """fit(train) once, then predict(items) -> DataFrame(prediction_index, fallback[, option_probs]) for any split."""

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
        self.frequencies = {
            "country_question": _frequencies(self.train, ["Country", "question_id"]),
            "question": _frequencies(self.train, ["question_id"]),
            "option_prior": _frequencies(relative, ["k"]),
        }
        return self

    def predict(self, items: pd.DataFrame, probs: bool = False) -> pd.DataFrame:
        """Predictions for ``items`` (any index; rows in their order), computed block by block; with ``probs`` an
        ``option_probs`` column too (an Arrow list per item, see the module docstring)."""
        blocks = [predicted for _, predicted in self.predict_stream([items], probs)]
        if not blocks:
            empty = pd.DataFrame({"prediction_index": np.zeros(0, dtype=np.int64), "fallback": np.empty(0, object)})
            if probs:
                empty["option_probs"] = _arrow_lists(np.zeros((0, 1)), np.zeros(0, dtype=np.int64))
            return empty
        return pd.concat(blocks, ignore_index=True)

    def predict_stream(self, parts: Iterable[pd.DataFrame], probs: bool = False
                       ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """(items, predictions) per block of at most :data:`BLOCK_ITEMS` items, for a split given in consecutive
        parts (e.g. parquet record batches): the same as :meth:`predict` on the whole split, without holding it."""
        state = self.start()
        for part in parts:
            for start in range(0, len(part), BLOCK_ITEMS):
                block = part.iloc[start:start + BLOCK_ITEMS].reset_index(drop=True)
                index, fallback, distribution = self.predict_block(block, state, probs)
                predicted = pd.DataFrame({"prediction_index": np.asarray(index, dtype=np.int64),
                                          "fallback": np.asarray(fallback, dtype=object)})
                if probs:
                    k = block["options"].map(len).to_numpy(dtype=np.int64)
                    predicted["option_probs"] = _arrow_lists(_normalised(distribution, k), k)
                yield block, predicted

    def start(self):
        """What the blocks of one split share (e.g. a random stream)."""
        return None

    def predict_block(self, items: pd.DataFrame, state, probs: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(prediction_index, fallback, and with ``probs`` the distributions: items × options, before
        normalisation) of one block."""
        raise NotImplementedError

    def distribution(self, items: pd.DataFrame, rule: np.ndarray) -> np.ndarray:
        """Items × options (the block's most): the training frequencies of the level named by each item's ``rule``
        (:meth:`majority`'s), zeros where that level has none (normalised to uniform later)."""
        k = items["options"].map(len).to_numpy(dtype=np.int64)
        out = np.zeros((len(items), int(k.max(initial=1))))
        for level, name in (("country_question", "national_label"), ("question", "global_majority"),
                            ("option_prior", "option_prior")):
            rows = np.flatnonzero(rule == name)
            if not len(rows):
                continue
            keys = {"country_question": ["Country", "question_id"], "question": ["question_id"]}.get(level, ["k"])
            table, matrix = self.frequencies[level]
            wanted = items.iloc[rows][keys] if level != "option_prior" else pd.DataFrame({"k": k[rows]})
            found = wanted.merge(table, how="left", on=keys)["row"].to_numpy(dtype=float)
            hit = ~np.isnan(found)
            width = min(out.shape[1], matrix.shape[1])
            out[rows[hit], :width] = matrix[found[hit].astype(np.int64), :width]
        return out

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

    def predict_block(self, items: pd.DataFrame, rng: np.random.Generator, probs: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        k = items["options"].map(len).to_numpy()
        index = np.floor(rng.random(len(items)) * k).astype(int)
        distribution = np.ones((len(items), int(k.max(initial=1)))) if probs else None  # 1/K once normalised
        return index, np.full(len(items), None, dtype=object), distribution


class Majority(Baseline):
    """Global per-question majority, or with ('country_question', 'question') the national label."""

    def __init__(self, levels: tuple[str, ...]):
        self.levels = levels

    def predict_block(self, items: pd.DataFrame, state, probs: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        index, rule = self.majority(items, self.levels)
        distribution = self.distribution(items, rule) if probs else None
        return index, np.where(rule == RULE_NAMES[self.levels[0]], None, rule), distribution


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

    def predict_block(self, items: pd.DataFrame, n_options: dict[str, int], probs: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        first = items.drop_duplicates("question_id")
        for qid, options in zip(first["question_id"], first["options"]):
            n_options.setdefault(qid, len(options))
        index, rule = self.majority(items, ("question",))
        # the question's frequencies (one answer: that answer), or the option prior's
        distribution = self.distribution(items, rule) if probs else None
        fallback = rule.copy()  # global_majority where the question is known, else option_prior ...
        codes, questions = pd.factorize(items["question_id"])
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(questions) + 1))
        for c, qid in enumerate(questions):
            if qid not in self.pools:
                continue
            rows = order[bounds[c]:bounds[c + 1]]
            fallback[rows] = None  # ... but a known question is the model's (one answer: the majority is it)
            if self.varied[qid]:
                index[rows], shares = self.predict_question(qid, items.iloc[rows], n_options[qid], probs)
                if probs:
                    width = min(distribution.shape[1], shares.shape[1])
                    distribution[rows] = 0.0
                    distribution[rows, :width] = shares[:, :width]
        return index, fallback, distribution

    def predict_question(self, qid: str, group: pd.DataFrame, n_options: int, probs: bool = False
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """(prediction_index, and with ``probs`` the distribution: items × n_options) of a question's items."""
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

    def predict_question(self, qid: str, group: pd.DataFrame, n_options: int, probs: bool = False
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        if qid not in self.indexes:
            rows = self.pools[qid]
            self.indexes[qid] = _BitIndex(self.codes[rows], [len(v) for v in self.values], self.answers[rows])
        profiles, inverse = np.unique(self.query_codes(group), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        votes = self.indexes[qid].votes(profiles, self.k, n_options)
        shares = votes[inverse].astype(float) if probs else None  # normalised later (no vote: uniform)
        return votes.argmax(axis=1)[inverse], shares


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

    def predict_question(self, qid: str, group: pd.DataFrame, n_options: int, probs: bool = False
                         ) -> tuple[np.ndarray, np.ndarray | None]:
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
            x = encoder.transform(profiles.iloc[first])
            shares = None
            if probs:  # the classes (answer indices) the trees know, on the item's options; the others 0
                proba = model.predict_proba(x)
                classes = model.classes_.astype(np.int64)
                known = (classes >= 0) & (classes < n_options)
                shares = np.zeros((len(first), n_options))
                shares[:, classes[known]] = proba[:, known]
                shares = shares[ids]
            return model.predict(x)[ids], shares


def _frequencies(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """(the keys with their row number, the answer_index counts per key: keys × options)."""
    counts = frame.groupby(keys + ["answer_index"], observed=True).size().rename("c").reset_index()
    table = counts[keys].drop_duplicates().reset_index(drop=True)
    table["row"] = np.arange(len(table))
    row = counts[keys].merge(table, how="left", on=keys)["row"].to_numpy()
    answer = counts["answer_index"].to_numpy(dtype=np.int64)
    keep = answer >= 0
    matrix = np.zeros((len(table), int(answer.max(initial=0)) + 1))
    np.add.at(matrix, (row[keep], answer[keep]), counts["c"].to_numpy(dtype=float)[keep])
    return table, matrix


def _normalised(distribution: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Rows cut to each item's K options and divided by their sum (uniform where nothing is left)."""
    distribution = np.where(np.arange(distribution.shape[1]) < k[:, None], distribution, 0.0)
    total = distribution.sum(axis=1, keepdims=True)
    uniform = (np.arange(distribution.shape[1]) < k[:, None]) / np.maximum(k, 1)[:, None]
    return np.where(total > 0, distribution / np.where(total > 0, total, 1.0), uniform)


def _arrow_lists(distribution: np.ndarray, k: np.ndarray) -> pd.Series:
    """Each row's first K values as an Arrow-backed list<double> column."""
    values = distribution[np.arange(distribution.shape[1]) < k[:, None]]
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    array = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.float64()))
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def _majority(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The most frequent answer_index per key (ties to the earlier option)."""
    counts = frame.groupby(keys + ["answer_index"], observed=True).size().rename("c").reset_index()
    counts = counts.sort_values(keys + ["c", "answer_index"], ascending=[True] * len(keys) + [False, True])
    return counts.drop_duplicates(keys)[keys + ["answer_index"]].reset_index(drop=True)

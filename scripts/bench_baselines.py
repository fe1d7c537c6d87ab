"""Benchmark: the non-LLM baselines and one prompt style at WVS-7 scale, with the previous kNN beside the new one.

Builds item tables of WVS-7's size directly (no survey file): 64,895 distinct 11-attribute profiles in 66 countries
(2 held out), the 25 catalog questions (9 held out), about 255,000 corpus train items and about 600,000 benchmark
items (cross_value alone 61,216 profiles x 9 questions = 550,944 items), plus the income flip of cross_demographic.
Answers follow a latent model (country and attribute effects), profiles cluster within their country.

Then, each in a fresh subprocess: wall time of the work (reading excluded), the process's peak RSS
(resource.getrusage: the inputs, imports and the work) and the highest RSS during the work above the RSS before it
(sampled from /proc every 2 ms; for the baselines, the largest over the fit and the four predict calls):
- every baseline: fit on train, predict cross_demographic, cross_country, cross_value and flip, one split at a time
  (each read whole, as `dvmap baseline` reads them); and knn again with each split read in parquet record batches
  through ``predict_stream`` (the peak RSS without a whole split in memory);
- one prompt style for the train items: prompt_corpus, the veRL and DVMap-fork exports, and writing the three files;
- the previous kNN implementation (a copy kept in this script, below, only to measure it) and the new one on the
  same subsample of evaluation items, which the previous one can hold; their predictions must be equal.

    python scripts/bench_baselines.py [--scale 1.0] [--old-knn-items 12000] [--keep DIR] [--only knn gbt ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dvmap import ATTRIBUTES, NOT_ANSWERED

HELDOUT_QUESTIONS = ["Q47", "Q56", "Q71", "Q73", "Q121", "Q165", "Q173", "Q195", "Q209"]
SPLITS = ["cross_demographic", "cross_country", "cross_value", "flip"]
KINDS = ["uniform", "global_majority", "national_label", "knn", "gbt"]
#: Categories per attribute (Country is set apart); Not Answered is one more category where WVS-7 has it.
CARDINALITY = {"Gender": 2, "Marital Status": 6, "Has Children": 2, "Education Level": 9, "Occupation": 8,
               "Work Nature": 3, "Religion": 10, "Life Stage": 5, "Income Bracket": 3, "Common Language": 40}
INCOME = ["Low income", "Middle income", "High income"]


# --------------------------------------------------------------------------------------------------------------
# The WVS-scale case
# --------------------------------------------------------------------------------------------------------------

def make_case(folder: Path, scale: float, seed: int = 0) -> dict[str, int]:
    """Write train.parquet and the evaluation splits into ``folder``; return their sizes."""
    from dvmap.corpus.items import add_frequency, order_items
    from dvmap.evaluation.flips import flip_items
    from dvmap.io import write_parquet
    from dvmap.survey.catalog import load_catalog

    rng = np.random.default_rng(seed)
    catalog = load_catalog()
    n_profiles, n_heldout = round(64_895 * scale), round(3_679 * scale)
    countries = [f"Country {i:02d}" for i in range(66)]
    # profiles: a country, then each attribute from the country's own skewed distribution; distinct, most singletons
    country = np.r_[rng.integers(0, 64, n_profiles - n_heldout), rng.integers(64, 66, n_heldout)]
    columns = {"Country": np.array(countries, dtype=object)[country]}
    for attribute, k in CARDINALITY.items():
        labels = INCOME if attribute == "Income Bracket" else [f"{attribute} {v}" for v in range(k)]
        labels = np.array(labels + [NOT_ANSWERED], dtype=object)
        weights = rng.dirichlet(np.full(k, 0.7), size=66)
        weights = np.c_[weights * 0.97, np.full(66, 0.03)]  # a few Not Answered
        cumulative = weights.cumsum(axis=1)[country]
        pick = (rng.random(n_profiles)[:, None] > cumulative).sum(axis=1).clip(0, k)
        if attribute in ("Life Stage", "Income Bracket"):
            pick = pick.clip(0, k - 1)  # DVMap's required attributes are never Not Answered
        columns[attribute] = labels[pick]
    profiles = pd.DataFrame(columns)[list(ATTRIBUTES)]
    profiles = profiles.drop_duplicates().reset_index(drop=True)
    profiles["profile_id"] = [f"p{i:06d}" for i in range(len(profiles))]
    heldout = profiles["Country"].isin(countries[64:]).to_numpy()
    part = np.where(heldout, "cross_country",
                    rng.choice(["train", "dev", "test", "cross_demographic"], len(profiles), p=[0.7, 0.1, 0.1, 0.1]))

    # answers: per question an ordinal latent score from country and attribute effects, plus noise
    codes = np.stack([pd.factorize(profiles[a])[0] for a in ATTRIBUTES], axis=1)
    questions = list(catalog)
    effects = {q: [rng.normal(0, 1.0 if a == "Country" else 0.5, codes[:, i].max() + 1)
                   for i, a in enumerate(ATTRIBUTES)] for q in questions}

    def items_of(rows: np.ndarray, qids: list[str], keep: float, split: str) -> pd.DataFrame:
        frames = []
        for qid in qids:
            chosen = rows[rng.random(len(rows)) < keep]
            q = catalog[qid]
            score = sum(effects[qid][i][codes[chosen, i]] for i in range(len(ATTRIBUTES)))
            score = score + rng.normal(0, 0.8, len(chosen))
            cuts = np.quantile(score, np.linspace(0, 1, len(q.options) + 1)[1:-1]) if len(chosen) else []
            answer = np.searchsorted(cuts, score)
            frame = profiles.iloc[chosen].reset_index(drop=True)
            frame["question_id"] = qid
            frame["item_id"] = frame["profile_id"] + ":" + qid
            frame["category"], frame["question"] = q.section, q.text
            frame["options"] = [list(q.options)] * len(frame)
            frame["answer_index"] = answer
            frame["answer"] = np.array(q.options, dtype=object)[answer]
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True)
        frame["n"], frame["entropy"], frame["frequency"] = 1, 0.0, 0.0
        frame["split"], frame["data_source"] = split, "wvs"
        frame["options"] = [list(o) for o in frame["options"]]
        return order_items(add_frequency(frame))

    seen_questions = [q for q in questions if q not in HELDOUT_QUESTIONS]
    seen = np.flatnonzero(~heldout)
    train_rows = np.flatnonzero(part == "train")
    n_train = 255_243 * scale
    tables = {
        "train": items_of(train_rows, seen_questions, n_train / (len(train_rows) * len(seen_questions)), "train"),
        "cross_demographic": items_of(np.flatnonzero(part == "cross_demographic"), seen_questions, 0.3,
                                      "cross_demographic"),
        "cross_country": items_of(np.flatnonzero(heldout), seen_questions, 0.35, "cross_country"),
        "cross_value": items_of(seen, HELDOUT_QUESTIONS, 1.0, "cross_value"),
    }
    tables["flip"] = flip_items(tables["cross_demographic"], "Income Bracket", ("Low income", "High income"))
    for name, table in tables.items():
        write_parquet(table, folder / f"{name}.parquet")
    sizes = {name: len(table) for name, table in tables.items()}
    sizes["profiles"] = len(profiles)
    return sizes


# --------------------------------------------------------------------------------------------------------------
# The previous kNN implementation (dvmap commit 22450a1), kept here only to measure it: a distance matrix of every
# evaluation item of a question against every training row of it, then a stable argsort.
# --------------------------------------------------------------------------------------------------------------

class PreviousKnn:
    """PREVIOUS IMPLEMENTATION, not used by dvmap: NearestProfiles as it was before the bitset index."""

    RULE_NAMES = {"country_question": "national_label", "question": "global_majority"}

    def __init__(self, k: int):
        self.k = k

    @staticmethod
    def _majority(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        counts = frame.groupby(keys + ["answer_index"], observed=True).size().rename("c").reset_index()
        counts = counts.sort_values(keys + ["c", "answer_index"], ascending=[True] * len(keys) + [False, True])
        return counts.drop_duplicates(keys)[keys + ["answer_index"]].reset_index(drop=True)

    def fit(self, train: pd.DataFrame) -> "PreviousKnn":
        self.train = train.reset_index(drop=True)
        self.tables = {"country_question": self._majority(self.train, ["Country", "question_id"]),
                       "question": self._majority(self.train, ["question_id"])}
        relative = self.train.assign(k=self.train["options"].map(len))
        self.prior = self._majority(relative, ["k"]).set_index("k")["answer_index"]
        return self

    def majority(self, items: pd.DataFrame, levels: tuple[str, ...]) -> pd.DataFrame:
        index = np.full(len(items), -1)
        rule = np.full(len(items), "option_prior", dtype=object)
        for level in reversed(levels):
            keys = ["Country", "question_id"] if level == "country_question" else ["question_id"]
            found = items[keys].merge(self.tables[level], how="left", on=keys)["answer_index"].to_numpy()
            hit = ~np.isnan(found)
            index[hit], rule[hit] = found[hit], self.RULE_NAMES[level]
        unknown = index < 0
        index[unknown] = items["options"].map(len)[unknown].map(self.prior).fillna(0).astype(int)
        fallback = np.where(rule == self.RULE_NAMES[levels[0]], None, rule)
        return pd.DataFrame({"prediction_index": index, "fallback": fallback})

    def predict(self, items: pd.DataFrame) -> pd.DataFrame:
        items = items.reset_index(drop=True)
        out = self.majority(items, ("question",))
        out["fallback"] = out["fallback"].fillna("global_majority")
        for qid, group in items.groupby("question_id", sort=False):
            pool = self.train[self.train["question_id"] == qid]
            if not pool.empty and pool["answer_index"].nunique() > 1:
                out.loc[group.index, "prediction_index"] = self.predict_question(qid, pool, group)
                out.loc[group.index, "fallback"] = None
            elif not pool.empty:
                out.loc[group.index, "fallback"] = None
        return out

    def predict_question(self, qid: str, pool: pd.DataFrame, group: pd.DataFrame) -> np.ndarray:
        from dvmap.schema import attribute_columns

        attributes = attribute_columns(self.train)
        both = pd.concat([pool[attributes], group[attributes]]).astype(str)
        codes = np.stack([pd.factorize(both[a])[0] for a in attributes], axis=1)
        pool_codes, item_codes = codes[: len(pool)], codes[len(pool):]
        distance = (item_codes[:, None, :] != pool_codes[None, :, :]).sum(axis=2)
        nearest = np.argsort(distance, axis=1, kind="stable")[:, : self.k]
        votes = pool["answer_index"].to_numpy()[nearest]
        n_options = len(group["options"].iloc[0])
        return np.stack([(votes == o).sum(axis=1) for o in range(n_options)], axis=1).argmax(axis=1)


# --------------------------------------------------------------------------------------------------------------
# Measurements, each in a fresh process
# --------------------------------------------------------------------------------------------------------------

def rss_now_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampled:
    """The highest RSS while the block runs, sampled every 2 ms, above the RSS when it started."""

    def __enter__(self) -> "Sampled":
        import threading

        self.start, self.high, self.stop = rss_now_mib(), 0.0, threading.Event()
        self.high = self.start

        def sample():
            while not self.stop.wait(0.002):
                self.high = max(self.high, rss_now_mib())

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.high = max(self.high, rss_now_mib())

    @property
    def above(self) -> float:
        return self.high - self.start


def child_baseline(folder: Path, kind: str) -> dict:
    from dvmap.evaluation.baselines import make_baseline

    train = pd.read_parquet(folder / "train.parquet")
    start = time.perf_counter()
    with Sampled() as fitting:
        model = make_baseline(kind, seed=0, k=5).fit(train)
    fit_s = time.perf_counter() - start
    predict_s, read_s, items, above = 0.0, 0.0, 0, fitting.above
    for split in SPLITS:
        t0 = time.perf_counter()
        table = pd.read_parquet(folder / f"{split}.parquet")
        t1 = time.perf_counter()
        with Sampled() as predicting:
            out = model.predict(table)
        predict_s += time.perf_counter() - t1
        read_s += t1 - t0
        items += len(out)
        above = max(above, predicting.above)
        del table, out
    return {"work_s": fit_s + predict_s, "fit_s": fit_s, "predict_s": predict_s, "read_s": read_s, "items": items,
            "above_mib": above, "peak_mib": peak_mib()}


def child_baseline_streamed(folder: Path, kind: str) -> dict:
    """As child_baseline, but each split read in parquet record batches fed to predict_stream (as `dvmap
    baseline` does, holding no whole split)."""
    import pyarrow.parquet as pq

    from dvmap.evaluation.baselines import BLOCK_ITEMS, make_baseline

    train = pd.read_parquet(folder / "train.parquet")
    start = time.perf_counter()
    with Sampled() as work:
        model = make_baseline(kind, seed=0, k=5).fit(train)
        items = 0
        for split in SPLITS:
            batches = pq.ParquetFile(folder / f"{split}.parquet").iter_batches(batch_size=BLOCK_ITEMS)
            for block, _ in model.predict_stream(batch.to_pandas() for batch in batches):
                items += len(block)
    return {"work_s": time.perf_counter() - start, "items": items, "above_mib": work.above, "peak_mib": peak_mib()}


def subsample(folder: Path, n: int) -> pd.DataFrame:
    """A seeded sample of ``n`` evaluation items of questions seen in training (where the kNN search runs)."""
    items = pd.concat([pd.read_parquet(folder / f"{s}.parquet") for s in ("cross_demographic", "cross_country")],
                      ignore_index=True)
    return items.sample(n=min(n, len(items)), random_state=0).reset_index(drop=True)


def child_knn_sample(folder: Path, which: str, n: int) -> dict:
    from dvmap.evaluation.baselines import make_baseline

    train = pd.read_parquet(folder / "train.parquet")
    items = subsample(folder, n)
    start = time.perf_counter()
    with Sampled() as work:
        model = PreviousKnn(5).fit(train) if which == "previous" else make_baseline("knn", k=5).fit(train)
        out = model.predict(items)
    seconds = time.perf_counter() - start
    fallback = np.array(["" if f is None or pd.isna(f) else f for f in out["fallback"]])
    np.save(folder / f"knn_{which}.npy", np.stack([out["prediction_index"].to_numpy().astype(str), fallback]))
    return {"work_s": seconds, "items": len(items), "above_mib": work.above, "peak_mib": peak_mib()}


def child_prompts(folder: Path, style: str) -> dict:
    from dvmap.corpus.prompts import prompt_corpus, verl_layout
    from dvmap.corpus.release import dvmap_verl_layout
    from dvmap.io import write_parquet

    train = pd.read_parquet(folder / "train.parquet")
    times = {}
    with Sampled() as sampled, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        corpus = prompt_corpus(train, style)
        times["prompt_corpus_s"] = time.perf_counter() - start
        t = time.perf_counter()
        verl = verl_layout(corpus)
        times["verl_layout_s"] = time.perf_counter() - t
        t = time.perf_counter()
        fork = dvmap_verl_layout(corpus)
        times["dvmap_verl_layout_s"] = time.perf_counter() - t
        t = time.perf_counter()
        write_parquet(corpus, Path(tmp) / "corpus.parquet")
        write_parquet(verl, Path(tmp) / "verl.parquet")
        write_parquet(fork, Path(tmp) / "fork.parquet")
        times["write_s"] = time.perf_counter() - t
        work = time.perf_counter() - start
    return {"work_s": work, **times, "items": len(train), "above_mib": sampled.above, "peak_mib": peak_mib()}


def measure(folder: Path, *task: str) -> dict:
    """Run one measurement in a fresh interpreter and return what it reports."""
    command = [sys.executable, __file__, "--child", str(folder), *task]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(task)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(name: str, r: dict) -> None:
    extra = "  ".join(f"{k[:-2]} {v:6.2f} s" for k, v in r.items() if k.endswith("_s") and k != "work_s")
    print(f"{name:30s} {r['work_s']:7.2f} s  peak RSS {r['peak_mib']:6.0f} MiB, "
          f"{r['above_mib']:5.0f} MiB above its inputs"
          f"  {r['items']:>9,} items  {extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of WVS-7's size")
    parser.add_argument("--old-knn-items", type=int, default=12_000,
                        help="evaluation items (seen questions) for the previous kNN and the new one, side by side")
    parser.add_argument("--style", default="structured_cot", help="prompt style to build for the train items")
    parser.add_argument("--only", nargs="*", help="measure only these (baselines, 'streamed', 'prompts', "
                                                    "'knn_previous')")
    parser.add_argument("--keep", help="build the case in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        folder, task, *rest = args.child
        if task == "case":  # built in a child too: Linux keeps a parent's peak RSS in a forked child's ru_maxrss
            result = make_case(Path(folder), float(rest[0]))
        elif task == "baseline":
            result = child_baseline(Path(folder), rest[0])
        elif task == "streamed":
            result = child_baseline_streamed(Path(folder), rest[0])
        elif task == "knn_sample":
            result = child_knn_sample(Path(folder), rest[0], int(rest[1]))
        else:
            result = child_prompts(Path(folder), rest[0])
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        sizes = measure(folder, "case", str(args.scale))
        print(f"case ({time.perf_counter() - start:.0f} s to build): "
              + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), flush=True)
        wanted = set(args.only or [*KINDS, "streamed", "prompts", "knn_previous"])
        for kind in KINDS:
            if kind in wanted:
                show(kind, measure(folder, "baseline", kind))
        if "streamed" in wanted:
            show("knn, splits streamed", measure(folder, "streamed", "knn"))
        if "prompts" in wanted:
            show(f"prompts {args.style} (train)", measure(folder, "prompts", args.style))
        if "knn_previous" in wanted:
            n = args.old_knn_items
            previous = measure(folder, "knn_sample", "previous", str(n))
            new = measure(folder, "knn_sample", "new", str(n))
            show("knn, previous (subsample)", previous)
            show("knn, new (same subsample)", new)
            same = np.array_equal(np.load(folder / "knn_previous.npy"), np.load(folder / "knn_new.npy"))
            searched = sizes["cross_demographic"] + sizes["cross_country"] + sizes["flip"]
            estimate = previous["work_s"] * searched / previous["items"]
            print(f"previous knn, extrapolated linearly in items to the {searched:,} items of seen questions "
                  f"(cross_demographic, cross_country, flip): {estimate:.0f} s")
            print(f"knn subsample: previous / new time = {previous['work_s'] / new['work_s']:.1f}x, memory above the "
                  f"inputs {previous['above_mib'] / max(new['above_mib'], 1):.0f}x; predictions and fallbacks "
                  f"{'identical' if same else 'DIFFER'}")
            if not same:
                raise SystemExit("the new kNN differs from the previous one")


if __name__ == "__main__":
    main()

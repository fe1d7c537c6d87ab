"""`dvmap baseline` and `dvmap evaluate` on DVMap's released dev split (imported), split by profile within dev."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dvmap.survey.catalog import load_catalog
from dvmap.answers import SAMPLE_SEPARATOR
from dvmap.cli import main
from dvmap.io import write_parquet
from dvmap.evaluation.metrics import PAIRED
from dvmap.evaluation.predictions import prediction_table
from dvmap.corpus.release import import_part

from .conftest import RELEASE, require_shared
from .items_factory import make_items


def test_national_label_beats_global_majority_on_released_dev(tmp_path):
    dev = import_part(pd.read_parquet(require_shared(RELEASE / "dev.parquet")), "dev", load_catalog(), "dev")
    profiles = np.sort(dev["profile_id"].unique())
    rng = np.random.default_rng(0)
    train_profiles = set(rng.permutation(profiles)[: int(0.7 * len(profiles))])
    train = dev[dev["profile_id"].isin(train_profiles)].assign(split="train")
    held = dev[~dev["profile_id"].isin(train_profiles)].assign(split="cross_demographic")
    train.to_parquet(tmp_path / "train.parquet")
    held.to_parquet(tmp_path / "cross_demographic.parquet")

    for kind in ("global_majority", "national_label"):
        assert main(["-q", "baseline", "--kind", kind, "--train", str(tmp_path / "train.parquet"),
                     "--eval", str(tmp_path / "cross_demographic.parquet"), "--threshold", "release",
                     "-o", str(tmp_path / kind)]) == 0
    assert main(["-q", "evaluate", str(tmp_path / "global_majority/cross_demographic.parquet"),
                 str(tmp_path / "national_label/cross_demographic.parquet"), "--bootstrap", "300",
                 "-o", str(tmp_path / "summary.tsv"), "--breakdown", str(tmp_path / "breakdown.tsv")]) == 0

    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t").set_index("model")
    national, global_ = summary.loc["national_label"], summary.loc["global_majority"]
    assert national["accuracy"] > global_["accuracy"]
    for row in (national, global_):
        assert row["accuracy_ci_low"] < row["accuracy"] < row["accuracy_ci_high"]
        assert row["n_items"] == len(held)
    breakdown = pd.read_csv(tmp_path / "breakdown.tsv", sep="\t")
    assert set(breakdown["group_type"]) >= {"country", "question", "attribute:Income Bracket"}
    # national-label predictions among the inputs: the paired difference, on the same profile resamples
    assert (summary["protocol"] == "lenient").all() and (summary["bootstrap_unit"] == "profile").all()
    assert tuple(national[[PAIRED, f"{PAIRED}_ci_low", f"{PAIRED}_ci_high"]]) == (0, 0, 0)
    assert global_[PAIRED] == pytest.approx(global_["accuracy"] - national["accuracy"], abs=1e-6)
    assert global_[f"{PAIRED}_ci_low"] < global_[PAIRED] < global_[f"{PAIRED}_ci_high"] < 0


def test_evaluate_rejects_a_file_outside_the_schema(tmp_path, capsys):
    path = tmp_path / "not_predictions.parquet"
    pd.DataFrame({"item_id": ["a"], "answer": ["x"]}).to_parquet(path)
    assert main(["evaluate", str(path), "-o", str(tmp_path / "summary.tsv")]) == 2
    assert "not_predictions.parquet" in capsys.readouterr().err
    assert not (tmp_path / "summary.tsv").exists()


# --------------------------------------------------------------------------------------------------------------
# Bootstrap unit, protocol and the paired difference through the command line (hand-built predictions)
# --------------------------------------------------------------------------------------------------------------

OPTIONS = ["Agree strongly", "Agree", "Disagree", "Disagree strongly"]


def write_predictions(folder, model: str, index, raw_output=None, split: str = "cross_demographic", keep=None):
    """Predictions of ``model`` for 4 profiles × 2 questions (gold: Agree), written as FOLDER/MODEL/SPLIT.parquet."""
    rows = [{"question_id": q, "options": OPTIONS, "answer_index": 1, "Gender": g, "Country": c}
            for g, c in [("Female", "Xland"), ("Male", "Xland"), ("Female", "Yland"), ("Male", "Yland")]
            for q in ("Q1", "Q2")]
    items = make_items(rows, split)
    table = prediction_table(items, index, model, "0.0", 0, raw_output=raw_output)
    path = folder / model / f"{split}.parquet"
    write_parquet(table if keep is None else table.iloc[keep], path)
    return str(path)


def test_evaluate_protocol_unit_and_reference_options(tmp_path):
    raw = ["<answer>Agree</answer>", "Agree", "<answer>agree</answer>", "<answer>Agree</answer>",
           SAMPLE_SEPARATOR.join(["<answer>Disagree</answer>", "Agree", "Agree"]), "<answer>Agree</answer>",
           "<answer>Disagree</answer>", "<answer>Agree</answer>"]
    llm = write_predictions(tmp_path, "llm", [1] * 8, raw_output=raw)
    national = write_predictions(tmp_path, "national_label", [1, 2, 1, 2, 1, 2, 1, 2])
    out = {}
    for protocol in ("lenient", "strict"):
        out[protocol] = tmp_path / f"{protocol}.tsv"
        assert main(["-q", "evaluate", llm, "--reference", national, "--protocol", protocol, "--bootstrap", "200",
                     "-o", str(out[protocol])]) == 0
    lenient = pd.read_csv(out["lenient"], sep="\t").iloc[0]
    strict = pd.read_csv(out["strict"], sep="\t").iloc[0]
    for column in ("protocol", "bootstrap_unit", PAIRED, f"{PAIRED}_ci_low", f"{PAIRED}_ci_high"):
        assert column in lenient.index
    # lenient: every item but the 7th (Disagree) is Agree: 7/8; the reference is right on 4 of 8
    assert lenient["protocol"] == "lenient" and lenient["bootstrap_unit"] == "profile"
    assert lenient["accuracy"] == 7 / 8 and lenient[PAIRED] == 3 / 8
    # strict: the 2nd (no tags) and 3rd (lower case) are unparseable, the 5th votes Disagree: 4/8
    assert strict["protocol"] == "strict"
    assert strict["accuracy"] == 4 / 8 and strict["unparseable_rate"] == 2 / 8 and strict[PAIRED] == 0
    assert lenient[f"{PAIRED}_ci_low"] <= 3 / 8 <= lenient[f"{PAIRED}_ci_high"]
    # the same command twice: the same bytes
    again = tmp_path / "again.tsv"
    main(["-q", "evaluate", llm, "--reference", national, "--protocol", "strict", "--bootstrap", "200",
          "-o", str(again)])
    assert again.read_bytes() == out["strict"].read_bytes()
    # forcing the unit, and no reference: empty paired columns
    item = tmp_path / "item.tsv"
    assert main(["-q", "evaluate", llm, "--bootstrap-unit", "item", "--bootstrap", "50", "-o", str(item)]) == 0
    row = pd.read_csv(item, sep="\t").iloc[0]
    assert row["bootstrap_unit"] == "item" and np.isnan(row[PAIRED]) and np.isnan(row[f"{PAIRED}_ci_low"])


def test_evaluate_reference_missing_items_exits_2(tmp_path, capsys):
    model = write_predictions(tmp_path, "gbt", [1] * 8)
    national = write_predictions(tmp_path, "national_label", [1] * 8, keep=slice(0, 6))
    assert main(["evaluate", model, "--reference", national, "--bootstrap", "20",
                 "-o", str(tmp_path / "summary.tsv")]) == 2
    err = capsys.readouterr().err
    assert "dvmap evaluate: error:" in err and national in err and "2 of the 8" in err
    assert not (tmp_path / "summary.tsv").exists()


def test_merge_summaries_keeps_the_new_columns(tmp_path):
    national = write_predictions(tmp_path, "national_label", [1, 2] * 4)
    summaries = []
    for seed, index in ((0, [1] * 8), (1, [1, 1, 2, 2] * 2)):
        model = write_predictions(tmp_path / f"s{seed}", "knn", index)
        frame = pd.read_parquet(model).assign(seed=seed, predictor=f"knn.tau~0.0.seed~{seed}")
        frame["seed"] = frame["seed"].astype("Int64")
        write_parquet(frame, model)
        summaries.append(str(tmp_path / f"summary{seed}.tsv"))
        assert main(["-q", "evaluate", model, "--reference", national, "--bootstrap", "20",
                     "-o", summaries[-1]]) == 0
    assert main(["-q", "summary", *summaries, "-o", str(tmp_path / "merged.tsv")]) == 0
    merged = pd.read_csv(tmp_path / "merged.tsv", sep="\t", dtype={"seed": str}, keep_default_na=False)
    rows = merged.set_index("seed")
    assert rows.loc["0", PAIRED] == 0.5 and rows.loc["1", PAIRED] == 0.0
    assert rows.loc["mean", PAIRED] == 0.25 and rows.loc["mean", "protocol"] == "lenient"
    assert rows.loc["mean", "bootstrap_unit"] == "profile"

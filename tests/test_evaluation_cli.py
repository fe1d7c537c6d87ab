"""`dvmap baseline` and `dvmap evaluate` on DVMap's released dev split (imported), split by profile within dev."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dvmap.catalog import load_catalog
from dvmap.cli import main
from dvmap.release import import_part

from .conftest import RELEASE, require_shared


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


def test_evaluate_rejects_a_file_outside_the_schema(tmp_path, capsys):
    path = tmp_path / "not_predictions.parquet"
    pd.DataFrame({"item_id": ["a"], "answer": ["x"]}).to_parquet(path)
    assert main(["evaluate", str(path), "-o", str(tmp_path / "summary.tsv")]) == 2
    assert "not_predictions.parquet" in capsys.readouterr().err
    assert not (tmp_path / "summary.tsv").exists()

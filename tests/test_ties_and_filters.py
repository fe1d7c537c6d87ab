"""DVMap's respondent filter (data.required_attributes), tied modal labels (splits.ties), corpus countries and
benchmark sizes (splits.corpus_countries, splits.benchmark_items), on hand-built and synthetic data."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from dvmap import NOT_ANSWERED, REQUIRED_ATTRIBUTES
from dvmap.survey.archetypes import archetype_stats
from dvmap.survey.catalog import Question, load_catalog
from dvmap.cli import main
from dvmap.survey.diagnostics import diagnostics
from dvmap.errors import DvmapError
from dvmap.io import read_tsv
from dvmap.corpus.items import break_ties, items_from_archetypes, tied_pairs
from dvmap.survey.respondents import drop_incomplete
from dvmap.corpus.splits import assign_profiles, benchmark_items
from dvmap.schema import PARTITIONS, UNUSED
from dvmap.survey.synth import write_synthetic_sav

K4 = ("A", "B", "C", "D")
CATALOG = {"QX": Question("QX", "SECTION X", "Which?", K4, {i + 1: o for i, o in enumerate(K4)})}
# (Country, Gender, answer) per respondent.
ROWS = (
    [("Aland", "Female", a) for a in "AAB"]        # counts [2, 1, 0, 0]: no tie, label A
    + [("Aland", "Male", a) for a in "BDDB"]       # [0, 2, 0, 2]: tied between B and D
    + [("Borduria", "Female", a) for a in "ABCD"]  # [1, 1, 1, 1]: tied four ways
    + [("Borduria", "Male", a) for a in "CC"]      # [0, 0, 2, 0]: consensus C
)


def hand_stats():
    frame = pd.DataFrame(ROWS, columns=["Country", "Gender", "QX"])
    frame.insert(0, "respondent_id", [f"r{i}" for i in range(len(frame))])
    frame["QX"] = pd.Categorical(frame["QX"], categories=list(K4))
    return archetype_stats(frame, CATALOG)


def labels(items: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {(c, g): a for c, g, a in zip(items["Country"], items["Gender"], items["answer"])}


def test_tied_pairs_are_found_from_the_counts():
    stats = hand_stats()
    tied = dict(zip(zip(stats["Country"].to_pylist(), stats["Gender"].to_pylist()), tied_pairs(stats)))
    assert tied == {("Aland", "Female"): False, ("Aland", "Male"): True, ("Borduria", "Female"): True,
                    ("Borduria", "Male"): False}


def test_ties_drop_keeps_only_untied_pairs():
    items = items_from_archetypes(hand_stats(), CATALOG, split="", data_source="t", ties="drop")
    assert labels(items) == {("Aland", "Female"): "A", ("Borduria", "Male"): "C"}
    assert items["answer_index"].tolist() == [K4.index(a) for a in items["answer"]]


def test_ties_random_draws_among_the_tied_options_only():
    drawn = {key: set() for key in [("Aland", "Male"), ("Borduria", "Female")]}
    for seed in range(40):
        items = items_from_archetypes(hand_stats(), CATALOG, split="", data_source="t", ties="random", seed=seed)
        got = labels(items)
        assert got[("Aland", "Female")] == "A" and got[("Borduria", "Male")] == "C"  # untied pairs untouched
        for key in drawn:
            drawn[key].add(got[key])
        assert items["answer_index"].tolist() == [K4.index(a) for a in items["answer"]]
    assert drawn[("Aland", "Male")] == {"B", "D"}  # never only the first tied option
    assert drawn[("Borduria", "Female")] == set(K4)


def test_ties_random_is_seeded_and_does_not_depend_on_the_other_rows():
    stats = hand_stats()
    whole = labels(items_from_archetypes(stats, CATALOG, "", "t", ties="random", seed=5))
    again = labels(items_from_archetypes(stats, CATALOG, "", "t", ties="random", seed=5))
    alone = labels(items_from_archetypes(stats.slice(1, 2), CATALOG, "", "t", ties="random", seed=5))
    assert whole == again
    assert all(whole[key] == value for key, value in alone.items())


def test_unknown_tie_policy_names_the_key():
    frame = items_from_archetypes(hand_stats(), CATALOG, "", "t", ties="random")
    with pytest.raises(DvmapError, match="splits.ties"):
        break_ties(frame, CATALOG, "first", 0)


def test_diagnostics_count_tied_pairs_per_country():
    stats = hand_stats()
    sizes = pd.Series([3, 4, 4, 2], index=stats["profile_id"].to_pylist())
    table = diagnostics(stats, stats, sizes)
    ties = table[table["section"] == "ties"].set_index("country")["value"].to_dict()
    assert ties == {"Aland": 1, "Borduria": 1}


def respondents_table() -> pd.DataFrame:
    return pd.DataFrame({
        "respondent_id": [f"r{i}" for i in range(6)],
        "Country": ["Aland", "Aland", "Aland", "Borduria", "Borduria", "Borduria"],
        "Life Stage": ["Young Adulthood", NOT_ANSWERED, NOT_ANSWERED, "Older Adulthood", "Late Adulthood",
                       "Older Adulthood"],
        "Income Bracket": [NOT_ANSWERED, "Low income", NOT_ANSWERED, "High income", "Low income", NOT_ANSWERED],
        "Gender": ["Male", "Female", NOT_ANSWERED, "Male", "Female", "Male"],
    })


def test_drop_incomplete_drops_and_counts_per_country_and_attribute():
    kept, report = drop_incomplete(respondents_table(), list(REQUIRED_ATTRIBUTES))
    assert kept["respondent_id"].tolist() == ["r3", "r4"]  # a missing Gender does not matter
    counts = {(r.country, r.attribute): (r.respondents, r.dropped) for r in report.itertuples()}
    assert counts == {("Aland", "any"): (3, 3), ("Aland", "Life Stage"): (3, 2), ("Aland", "Income Bracket"): (3, 2),
                      ("Borduria", "any"): (3, 1), ("Borduria", "Life Stage"): (3, 0),
                      ("Borduria", "Income Bracket"): (3, 1)}
    kept, report = drop_incomplete(respondents_table(), [])
    assert len(kept) == 6
    assert report[["country", "attribute", "respondents", "dropped"]].values.tolist() == [
        ["Aland", "any", 3, 0], ["Borduria", "any", 3, 0]]


def test_drop_incomplete_errors_name_the_key():
    with pytest.raises(DvmapError, match=r"data.required_attributes: \['Religion'\]"):
        drop_incomplete(respondents_table(), ["Religion"])
    everyone = respondents_table().assign(**{"Income Bracket": NOT_ANSWERED})
    with pytest.raises(DvmapError, match="every respondent lacks"):
        drop_incomplete(everyone, ["Income Bracket"])


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "survey.sav"
    write_synthetic_sav(path, load_catalog(), respondents_per_country=150, n_countries=5, seed=4)
    return path


def test_respondents_command_applies_the_default_filter_and_reports_it(survey, tmp_path):
    out, report = tmp_path / "respondents.parquet", tmp_path / "dropped.tsv"
    assert main(["-q", "respondents", str(survey), "-o", str(out), "--dropped-report", str(report)]) == 0
    kept = pd.read_parquet(out)
    for attribute in REQUIRED_ATTRIBUTES:
        assert not (kept[attribute] == NOT_ANSWERED).any()
    dropped = read_tsv(report)
    total = dropped[dropped["attribute"] == "any"]
    assert total["dropped"].sum() > 0, "the synthetic survey has respondents without age or income"
    assert total["respondents"].sum() - total["dropped"].sum() == len(kept)
    assert set(total["country"]) == set(kept["Country"])

    everyone = tmp_path / "everyone.parquet"
    assert main(["-q", "respondents", str(survey), "-o", str(everyone), "--required-attributes"]) == 0
    assert len(pd.read_parquet(everyone)) == total["respondents"].sum()

    stats, archetypes, diag = tmp_path / "stats.parquet", tmp_path / "a.parquet", tmp_path / "d.tsv"
    assert main(["-q", "archetype-stats", str(out), "-o", str(stats)]) == 0
    assert main(["-q", "archetypes", str(stats), "--tau", "majority", "-o", str(archetypes)]) == 0
    assert main(["-q", "diagnostics", str(stats), str(archetypes), "--respondents", str(out), "--dropped",
                 str(report), "--tau", "majority", "-o", str(diag)]) == 0
    table = read_tsv(diag)
    section = table[(table["section"] == "respondent_filter") & (table["key"] == "any")]
    assert dict(zip(section["country"], section["value"])) == dict(zip(total["country"], total["dropped"]))


@pytest.fixture(scope="module")
def survey_stats(survey, tmp_path_factory):
    folder = tmp_path_factory.mktemp("stats")
    assert main(["-q", "respondents", str(survey), "-o", str(folder / "r.parquet")]) == 0
    assert main(["-q", "archetype-stats", str(folder / "r.parquet"), "-o", str(folder / "s.parquet")]) == 0
    return pq.read_table(folder / "s.parquet")


FRACTIONS = {"train": 0.7, "dev": 0.1, "test": 0.1, "cross_demographic": 0.1}


def test_corpus_countries_leave_the_other_countries_out_of_every_split(survey_stats):
    countries = sorted(set(survey_stats["Country"].to_pylist()))
    heldout, corpus = countries[:1], countries[1:3]
    assignment = assign_profiles(survey_stats, FRACTIONS, heldout, 13, corpus_countries=corpus)
    by_country = assignment.groupby("Country")["split"].agg(set).to_dict()
    assert by_country[heldout[0]] == {"cross_country"}
    assert all(by_country[c] <= set(PARTITIONS) for c in corpus)
    assert all(by_country[c] == {UNUSED} for c in countries[3:])
    bench = benchmark_items(survey_stats, assignment, load_catalog(), ["Q121"], None, "t")
    assert set(bench["cross_value"]["Country"]) == set(corpus)
    assert set(bench["cross_demographic"]["Country"]) <= set(corpus)


def test_corpus_countries_errors(survey_stats):
    countries = sorted(set(survey_stats["Country"].to_pylist()))
    with pytest.raises(DvmapError, match=r"splits.corpus_countries: \['Atlantis'\]"):
        assign_profiles(survey_stats, FRACTIONS, [], 13, corpus_countries=["Atlantis"])
    with pytest.raises(DvmapError, match="both list"):
        assign_profiles(survey_stats, FRACTIONS, countries[:1], 13, corpus_countries=countries[:2])


def test_benchmark_items_are_a_seeded_sample(survey_stats, tmp_path):
    stats_path = tmp_path / "stats.parquet"
    pq.write_table(survey_stats, stats_path)
    country = sorted(set(survey_stats["Country"].to_pylist()))[0]
    args = ["-q", "split", str(stats_path), "--heldout-countries", country, "--heldout-questions", "Q121"]
    assert main([*args, "-o", str(tmp_path / "full")]) == 0
    assert main([*args, "--benchmark-items", "cross_value=50", "cross_country=40", "-o", str(tmp_path / "a")]) == 0
    assert main([*args, "--benchmark-items", "cross_value=50", "cross_country=40", "-o", str(tmp_path / "b")]) == 0
    full = {s: pd.read_parquet(tmp_path / "full" / f"{s}.parquet") for s in ("cross_value", "cross_country",
                                                                              "cross_demographic")}
    sample = {s: pd.read_parquet(tmp_path / "a" / f"{s}.parquet") for s in full}
    assert len(sample["cross_value"]) == 50 and len(sample["cross_country"]) == 40
    assert len(sample["cross_demographic"]) == len(full["cross_demographic"])
    assert set(sample["cross_value"]["item_id"]) <= set(full["cross_value"]["item_id"])
    assert (tmp_path / "a" / "cross_value.parquet").read_bytes() == (tmp_path / "b" / "cross_value.parquet").read_bytes()
    assert main([*args, "--benchmark-items", "cross_value=0", "-o", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()

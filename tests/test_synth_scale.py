"""The synthetic survey at the real survey's scale (``synthesize(..., scale="wvs")``) and the default scale unchanged.

At the WVS scale every WVS-7 country has its real sample size (66 countries, 97,220 respondents) and the attributes
their real cardinalities, so that most 11-attribute profiles are singletons as in the real file. Most checks run on
a reduced WVS-scale survey — the first six countries, which are the six real extracts' (USA, DEU, JPN, MEX, NGA,
KOR), at their real sizes — through the real ingestion path; the full 66 countries are drawn in memory (about a
second) but not ingested. ``-m slow`` adds the whole scale through ``dvmap respondents`` and ``archetype-stats``
and the comparison with the real extracts in ../shared.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from dvmap import ATTRIBUTES, REQUIRED_ATTRIBUTES
from dvmap.survey.archetypes import archetype_stats
from dvmap.survey.attribute_map import load_attribute_map
from dvmap.survey.catalog import load_catalog
from dvmap.survey.countries import country_table
from dvmap.survey.respondents import build_respondents, drop_incomplete
from dvmap.survey.synth import WVS_DENOMINATIONS, synthesize, wvs_languages, wvs_table, write_synthetic_sav
from dvmap.errors import DvmapError

from .conftest import REPO, WVS7, require_shared

#: SHA-256 of the default `dvmap synth` output (and of one small setting the other tests use), recorded before
#: the WVS scale was added: the default scale must stay byte-identical. (A pyreadstat upgrade that changes its
#: .sav writer would change them too.)
DEFAULT_DIGESTS = {
    (): "14b60c0bc05f98e2aa28b632a19e2fcbb72123c7c2831d24fa2a82ae6ea5e3b7",
    (("respondents_per_country", 80), ("n_countries", 3), ("seed", 11)):
        "e63a06a02980950fee45ed1e54f0e8545724cbe432852f97a9b8f7a41361c2f4",
}
#: Sample sizes of the six real extracts in ../shared/data/wvs7 (counted there).
EXTRACT_SIZES = {"USA": 2596, "DEU": 1528, "JPN": 1353, "MEX": 1741, "NGA": 1237, "KOR": 1245}
#: The six extracts after the required-attribute filter, on their 10 attributes (no Q272 there): 9,405 respondents,
#: 6,448 profiles, 80.4% of them singletons (measured with build_respondents + drop_incomplete; see
#: test_six_countries_match_the_real_extracts).
REAL_PROFILES_PER_RESPONDENT = 0.686
REAL_SINGLETON_SHARE = 0.804
SIX = 6


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def full(catalog):
    """The whole WVS scale, in memory: (codes, value labels, variable labels)."""
    return synthesize(catalog, scale="wvs")


@pytest.fixture(scope="module")
def six(catalog, tmp_path_factory):
    """The first six WVS-scale countries written as .sav and read back as the pipeline does: (path, respondents
    after the required-attribute filter)."""
    path = tmp_path_factory.mktemp("wvs-scale") / "six.sav"
    write_synthetic_sav(path, catalog, scale="wvs", n_countries=SIX)
    respondents = build_respondents([path], catalog, load_attribute_map())
    return path, drop_incomplete(respondents, list(REQUIRED_ATTRIBUTES))[0]


def profile_figures(respondents: pd.DataFrame, attributes: list[str]) -> tuple[int, float, float]:
    """(profiles, profiles per respondent, share of singleton profiles)."""
    sizes = respondents.groupby(attributes, observed=True).size()
    return len(sizes), len(sizes) / len(respondents), float((sizes == 1).mean())


# ------------------------------------------------------------------------------------------ the default is unchanged


@pytest.mark.parametrize("params", list(DEFAULT_DIGESTS))
def test_default_scale_output_is_unchanged(params, catalog, tmp_path):
    path = tmp_path / "default.sav"
    write_synthetic_sav(path, catalog, **dict(params))
    assert sha256(path) == DEFAULT_DIGESTS[params]


def test_unknown_scale_and_too_many_countries_are_errors(catalog):
    with pytest.raises(DvmapError, match="synth.scale"):
        synthesize(catalog, scale="huge")
    with pytest.raises(DvmapError, match="between 1 and 66"):
        synthesize(catalog, scale="wvs", n_countries=67)
    with pytest.raises(DvmapError, match="between 1 and 16"):
        synthesize(catalog, n_countries=17)


# --------------------------------------------------------------------------------------------- countries and sizes


def test_table_covers_every_wvs7_country_at_its_real_size():
    table = wvs_table()
    assert len(table) == 66 and set(table["alpha3"]) == set(country_table()["alpha3"])
    assert table["respondents"].sum() == 97_220
    sizes = table.set_index("alpha3")["respondents"]
    assert sizes[list(EXTRACT_SIZES)].to_dict() == EXTRACT_SIZES
    # The real range: Northern Ireland's 447, otherwise 1,000 (Chile, Cyprus, Uruguay) to 4,018 (Canada).
    assert sizes.drop("NIR").between(1000, 4018).all() and sizes["NIR"] == 447
    assert table["alpha3"].iloc[:SIX].tolist() == list(EXTRACT_SIZES)   # the default countries come first
    for column in ("languages", "religions"):
        assert all(abs(sum(shares.values()) - 1) < 0.02 for shares in table[column]), column


def test_full_scale_has_every_country_with_its_size(full):
    codes, value_labels, _ = full
    table = wvs_table().set_index("alpha3")
    counts = codes["B_COUNTRY_ALPHA"].value_counts()
    assert len(codes) == 97_220 and len(counts) == 66
    assert counts.sort_index().to_dict() == table["respondents"].sort_index().to_dict()
    assert codes["D_INTERVIEW"].is_unique
    assert set(value_labels["B_COUNTRY"].values()) == set(country_table()["name"])


def test_extract_sizes_agree_with_the_real_files():
    import pyreadstat

    for iso3, size in EXTRACT_SIZES.items():
        _, meta = pyreadstat.read_sav(require_shared(WVS7 / f"wvs7_{iso3}.sav"), metadataonly=True)
        assert meta.number_rows == size, iso3


# ------------------------------------------------------------------------------------------ attribute cardinalities


def test_full_scale_has_the_real_cardinalities(full):
    codes, value_labels, _ = full
    demographics = ["Q260", "Q262", "Q273", "Q274", "Q275", "Q279", "Q284", "Q288", "Q289", "Q289CS9", "Q272"]
    answered = {}
    for var in demographics:
        values = codes[var].to_numpy()
        answered[var] = set(np.unique(values[values >= 0]).astype(int).tolist())
    assert answered["Q260"] == {1, 2}
    assert answered["Q273"] == set(range(1, 7))                      # marital status: 6
    assert answered["Q275"] == set(range(9))                         # education: ISCED 0-8
    assert answered["Q279"] == set(range(1, 9))                      # employment: 8
    assert answered["Q284"] == {1, 2, 3}
    assert answered["Q289"] == set(range(10))                        # Q289's 10 groups
    assert answered["Q289CS9"] == set(WVS_DENOMINATIONS)             # detailed denominations
    assert answered["Q272"] == set(wvs_languages())
    assert min(answered["Q262"]) == 16 and max(answered["Q262"]) == 90 and answered["Q288"] == set(range(1, 11))
    assert set(value_labels["Q289CS9"]) >= answered["Q289CS9"] and set(value_labels["Q272"]) >= answered["Q272"]
    # Not applicable (-3) for many without work, as in the real file (8-40% of Q284 missing per country).
    missing_sector = (codes["Q284"] < 0).groupby(codes["B_COUNTRY_ALPHA"]).mean()
    assert missing_sector.between(0.02, 0.6).all() and missing_sector.mean() > 0.1

    per_country = codes[codes["Q289CS9"] >= 0].groupby("B_COUNTRY_ALPHA")
    assert per_country["Q289CS9"].nunique().median() >= 8             # several denominations, one dominant
    languages = codes[codes["Q272"] >= 0].groupby("B_COUNTRY_ALPHA")["Q272"].nunique()
    table = wvs_table().set_index("alpha3")
    assert (languages == table["languages"].map(len)[languages.index]).mean() > 0.9


def test_ingested_attributes_have_the_real_categories(six):
    _, respondents = six
    assert respondents["Country"].nunique() == SIX
    answered = {a: set(respondents[a]) - {"Not Answered"} for a in ATTRIBUTES}
    assert len(answered["Gender"]) == 2 and len(answered["Has Children"]) == 2
    assert len(answered["Marital Status"]) == 6 and len(answered["Education Level"]) == 9
    assert len(answered["Occupation"]) == 8 and len(answered["Work Nature"]) == 3
    assert len(answered["Income Bracket"]) == 3 and len(answered["Life Stage"]) >= 4
    assert len(answered["Religion"]) >= 20 and "Roman Catholic; Latin Church;" in answered["Religion"]
    assert {"English", "Spanish", "German", "Japanese", "Korean", "Hausa"} <= answered["Common Language"]
    # Demographics are correlated as in life: the young are mostly single students or workers, the old retired.
    young = respondents["Life Stage"] == "Young Adulthood"
    old = respondents["Life Stage"] == "Older Adulthood"
    assert (respondents.loc[young, "Marital Status"] == "Single").mean() > 2 * (
        respondents.loc[old, "Marital Status"] == "Single").mean()
    assert (respondents.loc[old, "Occupation"] == "Retired/pensioned").mean() > 0.4


# ------------------------------------------------------------------------------------------------ profile structure


def test_most_profiles_are_singletons_as_in_the_real_file(six, catalog):
    _, respondents = six
    profiles, per_respondent, singletons = profile_figures(respondents, list(ATTRIBUTES))
    assert 0.60 <= per_respondent <= 0.78 and 0.74 <= singletons <= 0.86
    # Apples to apples with the six real extracts (which lack Q272): 10 attributes.
    _, per_respondent, singletons = profile_figures(respondents, [a for a in ATTRIBUTES if a != "Common Language"])
    assert abs(per_respondent - REAL_PROFILES_PER_RESPONDENT) < 0.05
    assert abs(singletons - REAL_SINGLETON_SHARE) < 0.04
    stats = archetype_stats(respondents, catalog)
    stats = stats.to_pandas() if hasattr(stats, "to_pandas") else stats
    assert 0.74 <= (stats["n"] == 1).mean() <= 0.86                       # singleton (profile, question) pairs
    shared = stats[stats["n"] >= 2]
    assert 0.25 <= (shared["entropy"] == 0).mean() <= 0.5                 # real: 36% of them unanimous


def test_answers_carry_demographic_signal(six, catalog):
    """Within a country, answers differ by demographic group beyond noise (the latent model's category effects)."""
    _, respondents = six
    us = respondents[respondents["Country"] == "United States of America"]
    question = next(iter(catalog))
    options = list(catalog[question].recode.values())
    score = us[question].astype(object).map({label: i for i, label in enumerate(options)}).astype(float)
    means = score.groupby(us["Education Level"].astype(str)).mean()
    assert means.max() - means.min() > 0.3


# ------------------------------------------------------------------------------------------------ reproducibility


def test_same_seed_gives_the_same_file(catalog, six, tmp_path):
    path, _ = six
    again = tmp_path / "again.sav"
    write_synthetic_sav(again, catalog, scale="wvs", n_countries=SIX)
    assert sha256(again) == sha256(path)
    other = tmp_path / "other.sav"
    write_synthetic_sav(other, catalog, scale="wvs", n_countries=SIX, seed=8)
    assert sha256(other) != sha256(path)


# ------------------------------------------------------------------------------------------------------- the recipe


def test_recipe_runs_the_dag_without_llms():
    recipe = yaml.safe_load((REPO / "config/recipes/wvs_scale.yaml").read_text())
    assert recipe["synth"]["scale"] == "wvs" and recipe["synth"]["n_countries"] == 66
    assert recipe["inference"]["models"] == [] and recipe["training"]["models"] == []
    assert recipe["archetypes"]["thresholds"] == [0.0, 0.5, 1.0, "majority"]
    assert recipe["evaluation"]["baselines"] == ["uniform", "global_majority", "national_label", "knn", "gbt"]

    from snakemake.utils import update_config, validate

    schema_path = REPO / "workflow/schemas/config.schema.yaml"
    if "scale" not in yaml.safe_load(schema_path.read_text())["properties"]["synth"]["properties"]:
        pytest.skip("the config schema has no synth.scale yet")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, recipe)
    validate(config, str(schema_path))
    assert config["synth"]["scale"] == "wvs"


# --------------------------------------------------------------------------------------- the whole scale (-m slow)


@pytest.mark.slow
def test_whole_scale_through_the_pipeline(catalog, tmp_path):
    """Draw and write all 97,220 respondents in seconds; ingest them and count profiles as the DAG does."""
    path = tmp_path / "wvs.sav"
    start = time.perf_counter()
    write_synthetic_sav(path, catalog, scale="wvs")
    assert time.perf_counter() - start < 20
    respondents = build_respondents([path], catalog, load_attribute_map())
    respondents, _ = drop_incomplete(respondents, list(REQUIRED_ATTRIBUTES))
    assert respondents["Country"].nunique() == 66 and 0.94 < len(respondents) / 97_220 < 0.98
    profiles, per_respondent, singletons = profile_figures(respondents, list(ATTRIBUTES))
    assert 58_000 <= profiles <= 70_000 and 0.62 <= per_respondent <= 0.74 and 0.77 <= singletons <= 0.84
    stats = archetype_stats(respondents, catalog)
    stats = stats.to_pandas() if hasattr(stats, "to_pandas") else stats
    assert 0.77 <= (stats["n"] == 1).mean() <= 0.84


@pytest.mark.slow
def test_six_countries_match_the_real_extracts(six, catalog):
    """The figures REAL_* above, recomputed from ../shared, and the synthetic six countries beside them."""
    real = []
    for iso3 in EXTRACT_SIZES:
        table = build_respondents([require_shared(WVS7 / f"wvs7_{iso3}.sav")], catalog, load_attribute_map(),
                                  absent_attributes={"Common Language": "not-answered"}, absent_questions="skip")
        real.append(drop_incomplete(table, list(REQUIRED_ATTRIBUTES))[0])
    attributes = [a for a in ATTRIBUTES if a != "Common Language"]
    _, per_respondent, singletons = profile_figures(pd.concat(real, ignore_index=True), attributes)
    assert round(per_respondent, 3) == REAL_PROFILES_PER_RESPONDENT and round(singletons, 3) == REAL_SINGLETON_SHARE
    _, synthetic_ratio, synthetic_singletons = profile_figures(six[1], attributes)
    assert np.isclose(synthetic_ratio, per_respondent, atol=0.05)
    assert np.isclose(synthetic_singletons, singletons, atol=0.04)

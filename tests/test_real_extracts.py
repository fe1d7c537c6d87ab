"""Real WVS-7 extracts from ../shared through ingest: DVMap's released dev rows are found among respondents."""

from __future__ import annotations

import pandas as pd
import pytest

from dvmap import ATTRIBUTES, NOT_ANSWERED, REQUIRED_ATTRIBUTES
from dvmap.survey.attribute_map import load_attribute_map
from dvmap.survey.catalog import load_catalog
from dvmap.errors import DvmapError
from dvmap.survey.respondents import build_respondents, drop_incomplete

from .conftest import RELEASE, WVS7, require_shared

#: Attributes the extracts and DVMap's rows share with the same vocabulary (the extracts lack Q272 and Q289CS9).
SHARED_ATTRIBUTES = ["Country", "Gender", "Marital Status", "Has Children", "Education Level", "Occupation",
                     "Work Nature", "Life Stage", "Income Bracket"]


def ingest(iso3: str) -> pd.DataFrame:
    path = require_shared(WVS7 / f"wvs7_{iso3}.sav")
    return build_respondents([path], load_catalog(), load_attribute_map(),
                             absent_attributes={"Common Language": "not-answered"}, absent_questions="skip")


@pytest.mark.parametrize("iso3", ["USA", "DEU", "JPN"])
def test_released_dev_rows_are_found_among_respondents(iso3):
    respondents = ingest(iso3)
    dev = pd.read_parquet(require_shared(RELEASE / "dev.parquet"))
    dev = dev[dev["Country"] == respondents["Country"].iloc[0]]
    questions = [q for q in dev["Q_id"].unique() if q in respondents.columns]
    dev = dev[dev["Q_id"].isin(questions)]
    assert len(questions) >= 5 and len(dev) > 200

    long = respondents.melt(id_vars=SHARED_ATTRIBUTES, value_vars=questions, var_name="Q_id", value_name="answer")
    long = long.dropna(subset=["answer"]).astype(str)
    known = set(map(tuple, long[SHARED_ATTRIBUTES + ["Q_id", "answer"]].to_numpy()))
    rows = dev[SHARED_ATTRIBUTES + ["Q_id", "answer"]].astype(str).to_numpy()
    found = sum(tuple(row) in known for row in rows) / len(rows)
    assert found >= 0.94, f"{iso3}: only {found:.1%} of DVMap's dev rows match a respondent"


def test_absent_variables_are_an_error_unless_configured():
    path = require_shared(WVS7 / "wvs7_USA.sav")
    with pytest.raises(DvmapError, match=r"wvs7_USA\.sav.*Common Language.*Q272"):
        build_respondents([path], load_catalog(), load_attribute_map(), absent_questions="skip")
    dropped = build_respondents([path], load_catalog(), load_attribute_map(),
                                absent_attributes={"Common Language": "drop"}, absent_questions="skip")
    assert "Common Language" not in dropped.columns
    assert dropped["Religion"].isin(["Non-religious", "Catholic, nfd", "Protestant; nfd", "Not Answered"]).any()


def test_country_names_follow_dvmap():
    names = {iso3: ingest(iso3)["Country"].unique().tolist() for iso3 in ["USA", "KOR"]}
    assert names == {"USA": ["United States of America"], "KOR": ["Republic of Korea"]}


def test_required_attributes_default_follows_the_release():
    """data.required_attributes' default: no released dev row lacks Life Stage or Income Bracket, while the
    attributes DVMap kept missing values of have some; on a real extract the filter drops the respondents
    without age or income and says so per attribute."""
    dev = pd.read_parquet(require_shared(RELEASE / "dev.parquet"))
    missing = {a: int((dev[a] == NOT_ANSWERED).sum()) for a in ATTRIBUTES}
    assert all(missing[a] == 0 for a in REQUIRED_ATTRIBUTES)
    for attribute in ["Marital Status", "Has Children", "Education Level", "Occupation", "Work Nature", "Religion"]:
        assert missing[attribute] > 0, attribute

    respondents = ingest("USA")
    kept, report = drop_incomplete(respondents, list(REQUIRED_ATTRIBUTES))
    lacking = (respondents["Life Stage"] == NOT_ANSWERED) | (respondents["Income Bracket"] == NOT_ANSWERED)
    assert 0 < lacking.sum() < len(respondents) and len(kept) == len(respondents) - lacking.sum()
    counts = report.set_index("attribute")["dropped"].to_dict()
    assert counts["any"] == lacking.sum()
    assert counts["Income Bracket"] == (respondents["Income Bracket"] == NOT_ANSWERED).sum()

"""Ingest stage: WVS-7 files (.sav, .dta, .csv) -> the respondents table (``build_respondents``, ``dvmap respondents``).

All inputs are built from the seeded synthetic survey (``dvmap.survey.synth``), small enough to keep the file fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

from dvmap import ATTRIBUTES, NOT_ANSWERED
from dvmap.survey.attribute_map import DEFAULT_ATTRIBUTE_MAP, load_attribute_map
from dvmap.survey.catalog import load_catalog
from dvmap.cli import main
from dvmap.errors import DvmapError
from dvmap.survey.readers import available_columns
from dvmap.survey.respondents import build_respondents
from dvmap.survey.synth import LANGUAGES, synthesize, write_synthetic_sav

SYNTH = dict(respondents_per_country=30, n_countries=3, seed=1)
EXPECTED_ATTRIBUTES = [
    "Country", "Gender", "Marital Status", "Has Children", "Education Level", "Occupation", "Work Nature",
    "Religion", "Life Stage", "Income Bracket", "Common Language",
]
#: attribute -> the WVS variable it is read from in the synthetic survey (no Q289CS9 there: Religion uses Q289)
ATTRIBUTE_VARS = {
    "Gender": "Q260", "Marital Status": "Q273", "Has Children": "Q274", "Education Level": "Q275",
    "Occupation": "Q279", "Work Nature": "Q284", "Religion": "Q289", "Life Stage": "Q262", "Income Bracket": "Q288",
    "Common Language": "Q272",
}


# ----------------------------------------------------------------------------------------------- fixtures / helpers


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def attribute_map():
    return load_attribute_map()


@pytest.fixture(scope="module")
def survey(catalog):
    """(codes, value labels, variable labels) of the small synthetic survey; tests copy ``codes`` before editing."""
    return synthesize(catalog, **SYNTH)


@pytest.fixture
def codes(survey):
    return survey[0].copy()


def write_sav(frame: pd.DataFrame, path: Path, survey, missing_ranges=None, extra_labels=None) -> Path:
    """Write ``frame`` like ``write_synthetic_sav`` does: value labels, variable labels, declared -5..-1 missing."""
    _, value_labels, variable_labels = survey
    labels = {k: v for k, v in {**value_labels, **(extra_labels or {})}.items() if k in frame}
    numeric = [c for c in frame.columns if c != "B_COUNTRY_ALPHA"]
    ranges = {c: [{"lo": -5, "hi": -1}] for c in numeric if c not in ("B_COUNTRY", "D_INTERVIEW")}
    ranges.update(missing_ranges or {})
    pyreadstat.write_sav(
        frame, str(path), column_labels={k: v for k, v in variable_labels.items() if k in frame},
        variable_value_labels=labels, missing_ranges=ranges,
    )
    return path


def write_dta(frame: pd.DataFrame, path: Path, survey) -> Path:
    """Stata .dta with value labels (negative codes stay literal: Stata has no declared-missing ranges)."""
    _, value_labels, variable_labels = survey
    labels = {k: {int(c): text for c, text in v.items()} for k, v in value_labels.items() if k in frame}
    pyreadstat.write_dta(
        frame, str(path), variable_value_labels=labels,
        column_labels={k: v[:80] for k, v in variable_labels.items() if k in frame},  # Stata: labels <= 80 chars
    )
    return path


def write_csv(frame: pd.DataFrame, path: Path, encoding: str = "utf-8-sig") -> Path:
    """Official-style WVS CSV: UTF-8 with a BOM, integer codes, literal negative codes, B_COUNTRY_ALPHA as text."""
    out = frame.copy()
    for column in out.columns:
        if column != "B_COUNTRY_ALPHA":
            out[column] = out[column].astype("Int64")
    out.to_csv(path, index=False, encoding=encoding, lineterminator="\n")
    return path


def csv_attribute_map(path: Path) -> Path:
    """The packaged attribute map with Q272's labels (languages) given in the map itself.

    A CSV carries no value labels, and Common Language's source (Q272) has labels only in the .sav/.dta metadata.
    An absent-attribute policy cannot fix that: the policy is consulted only when Q272 is not in the file or is
    entirely missing, whereas here Q272 is present with codes, so decoding would fail on unlabelled codes
    (and "not-answered"/"drop" would change the table, so it could no longer equal the .sav's). The attribute map's
    per-source ``labels`` override is the documented way to supply labels, so the CSV gets this map.
    """
    spec = yaml.safe_load(DEFAULT_ATTRIBUTE_MAP.read_text(encoding="utf-8"))
    spec["attributes"]["Common Language"]["source"] = [{"var": "Q272", "labels": dict(LANGUAGES)}]
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain strings (missing stays missing), every column as object, for cross-format equality."""
    out = {}
    for name, column in table.items():
        values = column.astype(object)
        out[name] = pd.Series(
            [None if pd.isna(v) else str(v) for v in values], index=table.index, dtype=object, name=name
        )
    return pd.DataFrame(out)


def run_cli(argv, capsys):
    """Run ``dvmap`` in-process; return (exit code, stderr)."""
    capsys.readouterr()
    rc = main(["-q", *map(str, argv)])
    return rc, capsys.readouterr().err


def assert_cli_fails_cleanly(tmp_path, inputs, capsys, *expected, extra=()):
    """The CLI exits non-zero, names ``expected`` in its message, and leaves no output nor temp file behind."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    output = out_dir / "respondents.parquet"
    rc, err = run_cli(["respondents", *inputs, "-o", output, *extra], capsys)
    assert rc != 0
    assert "error" in err
    for text in expected:
        assert str(text) in err, (text, err)
    assert not output.exists()
    assert list(out_dir.iterdir()) == [], "stray files left in the output folder"
    return err


def bins_expected(value: float, bins) -> str:
    if pd.isna(value) or value < 0:
        return NOT_ANSWERED
    for low, high, label in bins:
        if (low is None or value >= low) and (high is None or value <= high):
            return label
    raise AssertionError(f"no bin for {value}")


# --------------------------------------------------------------------------------------- 1. the .sav respondents table


def test_sav_gives_respondents_table(tmp_path, catalog, attribute_map, survey):
    path = tmp_path / "wvs.sav"
    write_synthetic_sav(path, catalog, **SYNTH)
    codes = survey[0]
    table = build_respondents([path], catalog, attribute_map)

    # Columns: respondent_id, DVMap's attributes in DVMap's order, then the catalog questions in catalog order.
    assert list(table.columns) == ["respondent_id", *EXPECTED_ATTRIBUTES, *catalog]
    assert tuple(EXPECTED_ATTRIBUTES) == ATTRIBUTES
    assert len(table) == len(codes) == 90
    assert table["respondent_id"].tolist() == [str(int(v)) for v in codes["D_INTERVIEW"]]
    assert table["respondent_id"].is_unique

    # Countries by name, in file order.
    assert table["Country"].tolist() == ["United States of America"] * 30 + ["Germany"] * 30 + ["Japan"] * 30

    # Negative WVS codes: null answers, "Not Answered" attributes; the others are decoded.
    for attribute, var in ATTRIBUTE_VARS.items():
        negative = (codes[var] < 0).to_numpy()
        not_answered = (table[attribute] == NOT_ANSWERED).to_numpy()
        np.testing.assert_array_equal(not_answered, negative, err_msg=attribute)
        assert table[attribute].notna().all()
    assert (codes["Q284"] < 0).any() and (codes["Q1"] < 0).any()  # the fixture does exercise negatives
    for qid, question in catalog.items():
        assert isinstance(table[qid].dtype, pd.CategoricalDtype)
        assert tuple(table[qid].cat.categories) == question.options
        np.testing.assert_array_equal(table[qid].isna().to_numpy(), (codes[qid] < 0).to_numpy(), err_msg=qid)
        present = codes[qid] >= 0
        expected = codes.loc[present, qid].map(lambda c: question.recode[int(c)])
        assert table.loc[present, qid].astype(str).tolist() == expected.tolist(), qid

    # Bins follow dvmap/data/attributes.yaml, for every row.
    for attribute in ("Life Stage", "Income Bracket", "Has Children"):
        rule_bins = attribute_map[attribute].bins
        expected = [bins_expected(v, rule_bins) for v in codes[ATTRIBUTE_VARS[attribute]]]
        assert table[attribute].tolist() == expected, attribute


def test_sav_hand_checked_rows(tmp_path, catalog, attribute_map, survey, codes):
    """Boundary values of the bins, DVMap's Occupation wording and the Q289 Religion fallback, checked by hand."""
    rows = {
        # row: (age Q262, income Q288, children Q274, occupation Q279, religion Q289, Q1)
        0: (17, 3, 0, 1, 0, 1),
        1: (18, 4, 1, 5, 2, 2),
        2: (34, 7, 6, 8, 3, 3),
        3: (35, 8, 2, 2, 1, 4),
        4: (50, 10, 0, 3, 5, 1),
        5: (51, 1, 0, 4, 9, 1),
        6: (64, 5, 0, 6, 7, 1),
        7: (65, 9, 0, 7, 6, 1),
        8: (90, 2, 0, 1, 8, 1),
    }
    for row, values in rows.items():
        codes.loc[row, ["Q262", "Q288", "Q274", "Q279", "Q289", "Q1"]] = [float(v) for v in values]
    codes.loc[0, ["Q260", "Q273", "Q275", "Q284", "Q272"]] = [2.0, 6.0, 7.0, 2.0, 4.0]
    # Row 9: every attribute variable and a few questions carry a negative (declared-missing) code.
    codes.loc[9, ["Q260", "Q273", "Q274", "Q275", "Q279", "Q284", "Q289", "Q262", "Q288", "Q272"]] = [
        -1.0, -2.0, -3.0, -4.0, -5.0, -1.0, -2.0, -3.0, -4.0, -5.0]
    codes.loc[9, ["Q1", "Q2", "Q3", "Q4", "Q5"]] = [-1.0, -2.0, -3.0, -4.0, -5.0]
    assert "Q289CS9" not in codes
    table = build_respondents([write_sav(codes, tmp_path / "hand.sav", survey)], catalog, attribute_map)

    expected = {
        0: ("Adolescence", "Low income", "has no children", "Full time employee (30 hours a week or more)",
            "Non-religious", "Very important"),
        1: ("Young Adulthood", "Middle income", "has at least one child", "Housewife not otherwise employed",
            "Protestant; nfd", "Rather important"),
        2: ("Young Adulthood", "Middle income", "has at least one child", "Other (write in):", "Orthodox ; nfd",
            "Not very important"),
        3: ("Middle Adulthood", "High income", "has at least one child", "Part time employee (less than 30 hours a week)",
            "Catholic, nfd", "Not at all important"),
        4: ("Middle Adulthood", "High income", "has no children", "Self employed", "Islam; nfd", "Very important"),
        5: ("Late Adulthood", "Low income", "has no children", "Retired/pensioned", "Other; nfd", "Very important"),
        6: ("Late Adulthood", "Middle income", "has no children", "Student", "Buddhist", "Very important"),
        7: ("Older Adulthood", "High income", "has no children", "Unemployed", "Hindu", "Very important"),
        8: ("Older Adulthood", "Low income", "has no children", "Full time employee (30 hours a week or more)",
            "Other Christian; nfd", "Very important"),
    }
    columns = ["Life Stage", "Income Bracket", "Has Children", "Occupation", "Religion", "Q1"]
    for row, values in expected.items():
        got = tuple(str(table.loc[row, c]) for c in columns)
        assert got == values, row

    first = table.loc[0]
    assert first["respondent_id"] == "84000001"
    assert first["Country"] == "United States of America"
    assert first["Gender"] == "Female"
    assert first["Marital Status"] == "Single"
    assert first["Education Level"] == "Master or equivalent (ISCED 7)"
    assert first["Work Nature"] == "Private business or industry"
    assert first["Common Language"] == "Spanish"  # from the file's value labels (no labels in the map)

    missing_row = table.loc[9]
    for attribute in EXPECTED_ATTRIBUTES[1:]:
        assert missing_row[attribute] == NOT_ANSWERED, attribute
    assert missing_row["Country"] == "United States of America"
    for qid in ("Q1", "Q2", "Q3", "Q4", "Q5"):
        assert pd.isna(missing_row[qid]), qid


def test_religion_prefers_q289cs9_when_present(tmp_path, catalog, attribute_map, survey, codes):
    codes["Q289CS9"] = np.where(codes.index % 2 == 0, 10.0, 20.0)
    labels = {"Q289CS9": {10: "Roman Catholic", 20: "Sunni"}}
    table = build_respondents([write_sav(codes, tmp_path / "cs9.sav", survey, extra_labels=labels)],
                              catalog, attribute_map)
    assert table["Religion"].tolist() == ["Roman Catholic", "Sunni"] * 45


def test_religion_falls_back_to_q289_when_q289cs9_is_entirely_missing(tmp_path, catalog, attribute_map, survey, codes):
    """A Q289CS9 column that is there but holds only missing codes (e.g. -4 "Not asked" in a country's file) gives
    no religion; the next source, Q289, should be used, as when Q289CS9 is absent (respondents.build_respondents:
    the absent policy is for an attribute "whose variables are all absent from a file (or entirely missing in it)")."""
    codes["Q289CS9"] = -4.0
    labels = {"Q289CS9": {10: "Roman Catholic"}}
    path = write_sav(codes, tmp_path / "cs9_not_asked.sav", survey, extra_labels=labels)
    expected = build_respondents([write_sav(codes.drop(columns=["Q289CS9"]), tmp_path / "plain.sav", survey)],
                                 catalog, attribute_map)
    table = build_respondents([path], catalog, attribute_map)
    assert table["Religion"].tolist() == expected["Religion"].tolist()
    assert (table["Religion"] != NOT_ANSWERED).any()


# ------------------------------------------------------------------------------- 2. same data as .dta and as CSV


def test_dta_and_csv_equal_sav(tmp_path, catalog, attribute_map, survey, codes):
    sav = write_sav(codes, tmp_path / "wvs.sav", survey)
    dta = write_dta(codes, tmp_path / "wvs.dta", survey)
    csv = write_csv(codes, tmp_path / "wvs.csv")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbfB_COUNTRY,B_COUNTRY_ALPHA,")
    assert b",-1," in csv.read_bytes() or b",-2," in csv.read_bytes()
    # The BOM is not part of the first column's name (else Country would silently come from B_COUNTRY_ALPHA).
    assert available_columns(csv)[:3] == ["B_COUNTRY", "B_COUNTRY_ALPHA", "D_INTERVIEW"]

    from_sav = build_respondents([sav], catalog, attribute_map)
    from_dta = build_respondents([dta], catalog, attribute_map)
    # CSV: Common Language labels come from an attribute-map override (see csv_attribute_map for why).
    from_csv = build_respondents([csv], catalog, load_attribute_map(csv_attribute_map(tmp_path / "map.yaml")))

    assert list(from_sav.columns) == ["respondent_id", *EXPECTED_ATTRIBUTES, *catalog]
    pd.testing.assert_frame_equal(comparable(from_dta), comparable(from_sav))
    pd.testing.assert_frame_equal(comparable(from_csv), comparable(from_sav))
    assert (from_sav["Common Language"] != NOT_ANSWERED).any()


def test_csv_without_labels_for_q272_is_an_error(tmp_path, catalog, attribute_map, codes):
    csv = write_csv(codes, tmp_path / "wvs.csv")
    with pytest.raises(DvmapError) as info:
        build_respondents([csv], catalog, attribute_map)
    message = str(info.value)
    assert str(csv) in message and "Q272" in message and "Common Language" in message


# ------------------------------------------------------------------------- 3. per-country files equal one pooled file


@pytest.mark.parametrize("fmt", ["sav", "csv"])
def test_per_country_files_equal_pooled_file(tmp_path, catalog, survey, codes, capsys, fmt):
    attribute_map = load_attribute_map(csv_attribute_map(tmp_path / "map.yaml"))

    def write(frame, name):
        if fmt == "sav":
            return write_sav(frame, tmp_path / f"{name}.sav", survey)
        return write_csv(frame, tmp_path / f"{name}.csv")

    pooled = build_respondents([write(codes, "pooled")], catalog, attribute_map)
    countries = list(dict.fromkeys(codes["B_COUNTRY_ALPHA"]))
    assert countries == ["USA", "DEU", "JPN"]
    parts = [write(codes[codes["B_COUNTRY_ALPHA"] == c].reset_index(drop=True), f"wvs_{c}") for c in countries]
    split = build_respondents(parts, catalog, attribute_map)

    assert len(split) == len(pooled) == 90
    pd.testing.assert_frame_equal(comparable(split), comparable(pooled))
    # Answers keep the catalog's categories after concatenation.
    for qid, question in catalog.items():
        assert tuple(split[qid].cat.categories) == question.options

    # Same through the CLI.
    out = tmp_path / "out.parquet"
    rc, err = run_cli(["respondents", *parts, "-o", out, "--attribute-map", tmp_path / "map.yaml",
                       "--required-attributes"], capsys)  # keep everyone, as build_respondents does
    assert rc == 0, err
    pd.testing.assert_frame_equal(comparable(pd.read_parquet(out)), comparable(pooled))


# ----------------------------------------------------------------------------------------------- 4. bad input


def _truncated_sav(tmp_path, codes, survey):
    good = write_sav(codes, tmp_path / "good.sav", survey)
    bad = tmp_path / "truncated.sav"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    good.unlink()
    return [bad], ()


def _text_named_sav(tmp_path, codes, survey):
    bad = tmp_path / "notes.sav"
    bad.write_text("B_COUNTRY,Q260\n840,1\n", encoding="utf-8")
    return [bad], ()


def _missing_required_variable(tmp_path, codes, survey):
    return [write_sav(codes.drop(columns=["Q260"]), tmp_path / "no_q260.sav", survey)], ("Q260", "Gender")


def _entirely_missing_attribute(tmp_path, codes, survey):
    codes["Q274"] = np.nan
    return [write_sav(codes, tmp_path / "no_children.sav", survey)], ("Q274", "Has Children")


def _unlabelled_attribute_code(tmp_path, codes, survey):
    codes.loc[4, "Q273"] = 9.0
    return [write_sav(codes, tmp_path / "marital9.sav", survey)], ("Q273", "Marital Status", "9")


def _unlabelled_question_code(tmp_path, codes, survey):
    codes.loc[4, "Q1"] = 9.0
    return [write_sav(codes, tmp_path / "q1_9.sav", survey)], ("Q1", "9")


def _duplicate_ids(tmp_path, codes, survey):
    codes.loc[5, "D_INTERVIEW"] = codes.loc[4, "D_INTERVIEW"]
    return [write_sav(codes, tmp_path / "dups.sav", survey)], ("84000005",)


def _duplicate_ids_across_files(tmp_path, codes, survey):
    first = write_sav(codes, tmp_path / "first.sav", survey)
    second = write_sav(codes.iloc[:3], tmp_path / "second.sav", survey)
    return [first, second], ("84000001",)


def _latin1_csv(tmp_path, codes, survey):
    codes = codes.astype({"B_COUNTRY_ALPHA": object})
    codes.loc[2, "B_COUNTRY_ALPHA"] = "ESPAÑA"
    return [write_csv(codes, tmp_path / "latin1.csv", encoding="latin-1")], ("UTF-8",)


def _unsupported_suffix(tmp_path, codes, survey):
    bad = tmp_path / "wvs.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a workbook")
    return [bad], (".xlsx",)


def _absent_question(tmp_path, codes, survey):
    return [write_sav(codes.drop(columns=["Q1"]), tmp_path / "no_q1.sav", survey)], ("Q1",)


BAD_INPUTS = {
    "truncated-sav": _truncated_sav,
    "text-named-sav": _text_named_sav,
    "missing-required-variable": _missing_required_variable,
    "entirely-missing-attribute": _entirely_missing_attribute,
    "unlabelled-attribute-code": _unlabelled_attribute_code,
    "unlabelled-question-code": _unlabelled_question_code,
    "duplicate-ids": _duplicate_ids,
    "duplicate-ids-across-files": _duplicate_ids_across_files,
    "latin1-csv": _latin1_csv,
    "unsupported-suffix": _unsupported_suffix,
    "absent-question": _absent_question,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error(tmp_path, catalog, attribute_map, survey, codes, case):
    inputs, expected = BAD_INPUTS[case](tmp_path, codes, survey)
    with pytest.raises(DvmapError) as info:
        build_respondents(inputs, catalog, attribute_map)
    message = str(info.value)
    assert any(str(p) in message for p in inputs), f"message does not name the file: {message}"
    for text in expected:
        assert text in message, (text, message)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_cli_fails_without_output(tmp_path, survey, codes, capsys, case):
    inputs, expected = BAD_INPUTS[case](tmp_path, codes, survey)
    err = assert_cli_fails_cleanly(tmp_path, inputs, capsys, *expected)
    assert any(str(p) in err for p in inputs)


def test_duplicate_id_message_names_the_id_column(tmp_path, catalog, attribute_map, survey, codes):
    """The user needs to know which variable held the duplicate ids (D_INTERVIEW, settable by --id-column)."""
    inputs, _ = _duplicate_ids(tmp_path, codes, survey)
    with pytest.raises(DvmapError, match="D_INTERVIEW"):
        build_respondents(inputs, catalog, attribute_map)


def test_truncated_and_text_sav_errors_say_unreadable(tmp_path, catalog, attribute_map, survey, codes):
    for make in (_truncated_sav, _text_named_sav):
        (path,), _ = make(tmp_path, codes.copy(), survey)
        with pytest.raises(DvmapError, match="not a readable .sav file"):
            build_respondents([path], catalog, attribute_map)


def test_unsupported_suffix_lists_supported_types(tmp_path, catalog, attribute_map, survey, codes):
    (path,), _ = _unsupported_suffix(tmp_path, codes, survey)
    with pytest.raises(DvmapError) as info:
        build_respondents([path], catalog, attribute_map)
    for suffix in (".sav", ".dta", ".csv"):
        assert suffix in str(info.value)


def test_entirely_missing_attribute_policies(tmp_path, catalog, attribute_map, survey, codes, capsys):
    (path,), _ = _entirely_missing_attribute(tmp_path, codes, survey)

    answered = build_respondents([path], catalog, attribute_map, absent_attributes="not-answered")
    assert list(answered.columns) == ["respondent_id", *EXPECTED_ATTRIBUTES, *catalog]
    assert (answered["Has Children"] == NOT_ANSWERED).all()
    assert (answered["Life Stage"] != NOT_ANSWERED).any()  # other attributes are still decoded

    dropped = build_respondents([path], catalog, attribute_map, absent_attributes="drop")
    assert "Has Children" not in dropped.columns
    assert list(dropped.columns) == ["respondent_id", *[a for a in EXPECTED_ATTRIBUTES if a != "Has Children"],
                                     *catalog]
    pd.testing.assert_frame_equal(dropped, answered.drop(columns=["Has Children"]))

    # The same through the CLI's --absent-attributes.
    for policy, check in (("not-answered", lambda t: (t["Has Children"] == NOT_ANSWERED).all()),
                          ("drop", lambda t: "Has Children" not in t.columns)):
        out = tmp_path / f"{policy}.parquet"
        rc, err = run_cli(["respondents", path, "-o", out, "--absent-attributes", policy], capsys)
        assert rc == 0, err
        assert check(pd.read_parquet(out)), policy


def test_absent_question_error_versus_skip(tmp_path, catalog, attribute_map, survey, codes, capsys):
    without_q1 = write_sav(codes.drop(columns=["Q1"]), tmp_path / "no_q1.sav", survey)
    with pytest.raises(DvmapError) as info:
        build_respondents([without_q1], catalog, attribute_map, absent_questions="error")
    assert str(without_q1) in str(info.value) and "Q1" in str(info.value)

    # skip, one file: Q1 has no answer anywhere, so it is left out; the other questions are kept.
    skipped = build_respondents([without_q1], catalog, attribute_map, absent_questions="skip")
    assert "Q1" not in skipped.columns
    assert list(skipped.columns) == ["respondent_id", *EXPECTED_ATTRIBUTES, *[q for q in catalog if q != "Q1"]]

    # skip, with another file that has Q1: null answers for the file without it, answers for the other.
    usa = codes[codes["B_COUNTRY_ALPHA"] == "USA"].reset_index(drop=True)
    deu = codes[codes["B_COUNTRY_ALPHA"] == "DEU"].drop(columns=["Q1"]).reset_index(drop=True)
    mixed = build_respondents([write_sav(usa, tmp_path / "usa.sav", survey),
                               write_sav(deu, tmp_path / "deu.sav", survey)],
                              catalog, attribute_map, absent_questions="skip")
    assert list(mixed.columns) == ["respondent_id", *EXPECTED_ATTRIBUTES, *catalog]
    assert mixed["Q1"].iloc[30:].isna().all()
    np.testing.assert_array_equal(mixed["Q1"].iloc[:30].isna().to_numpy(), (usa["Q1"] < 0).to_numpy())
    assert tuple(mixed["Q1"].cat.categories) == catalog["Q1"].options

    out = tmp_path / "skip.parquet"
    rc, err = run_cli(["respondents", without_q1, "-o", out, "--absent-questions", "skip"], capsys)
    assert rc == 0, err
    assert "Q1" not in pd.read_parquet(out).columns


# --------------------------------------------------------------------------- 5. negative and declared-missing codes


def test_csv_literal_negative_codes_are_missing(tmp_path, catalog, codes):
    attribute_map = load_attribute_map(csv_attribute_map(tmp_path / "map.yaml"))
    for i, code in enumerate([-1, -2, -3, -4, -5]):
        codes.loc[i, ["Q1", "Q2", "Q260", "Q262", "Q274", "Q279", "Q272"]] = float(code)
    codes.loc[10:14, ["Q1", "Q260", "Q262"]] = [1.0, 1.0, 40.0]  # control rows with answers
    csv = write_csv(codes, tmp_path / "neg.csv")
    text = csv.read_text(encoding="utf-8-sig")
    for code in (-1, -2, -3, -4, -5):
        assert f",{code}," in text

    table = build_respondents([csv], catalog, attribute_map)
    head = table.iloc[:5]
    assert head["Q1"].isna().all() and head["Q2"].isna().all()
    for attribute in ("Gender", "Life Stage", "Has Children", "Occupation", "Common Language"):
        assert (head[attribute] == NOT_ANSWERED).all(), attribute
    rest = table.iloc[10:15]
    assert (rest["Q1"] == "Very important").all()
    assert (rest["Gender"] == "Male").all()
    assert (rest["Life Stage"] == "Middle Adulthood").all()


def test_sav_declared_missing_value_is_missing(tmp_path, catalog, attribute_map, survey, codes):
    # 9 is not a Q1 option nor a Q273 label: declared missing, it must be read as missing, not as an unknown code.
    codes.loc[3, "Q1"] = 9.0
    codes.loc[4, "Q273"] = 99.0
    codes.loc[5, "Q1"] = 1.0
    codes.loc[5, "Q273"] = 1.0
    ranges = {"Q1": [9, {"lo": -5, "hi": -1}], "Q273": [99, {"lo": -5, "hi": -1}]}
    path = write_sav(codes, tmp_path / "declared.sav", survey, missing_ranges=ranges)
    meta = pyreadstat.read_sav(str(path), metadataonly=True, user_missing=True)[1]
    assert "Q1" in meta.missing_ranges  # the file really declares them

    table = build_respondents([path], catalog, attribute_map)
    assert pd.isna(table.loc[3, "Q1"])
    assert table.loc[4, "Marital Status"] == NOT_ANSWERED
    assert table.loc[5, "Q1"] == "Very important"
    assert table.loc[5, "Marital Status"] == "Married"


# ------------------------------------------------------------------------ 6. per-attribute --absent-attribute option


def test_cli_per_attribute_policy(tmp_path, survey, codes, capsys):
    path = write_sav(codes.drop(columns=["Q272"]), tmp_path / "no_language.sav", survey)

    # Without a policy for it, the missing Common Language source is an error naming Q272 and the attribute.
    assert_cli_fails_cleanly(tmp_path, [path], capsys, path, "Q272", "Common Language")

    out = tmp_path / "answered.parquet"
    rc, err = run_cli(["respondents", path, "-o", out, "--absent-attribute", "Common Language=not-answered"], capsys)
    assert rc == 0, err
    table = pd.read_parquet(out)
    assert list(table.columns[:12]) == ["respondent_id", *EXPECTED_ATTRIBUTES]
    assert (table["Common Language"] == NOT_ANSWERED).all()
    assert (table["Gender"] != NOT_ANSWERED).any()

    out = tmp_path / "dropped.parquet"
    rc, err = run_cli(["respondents", path, "-o", out, "--absent-attribute", "Common Language=drop"], capsys)
    assert rc == 0, err
    assert "Common Language" not in pd.read_parquet(out).columns

    # The per-attribute policy applies to that attribute only: others keep --absent-attributes (default error).
    both = write_sav(codes.drop(columns=["Q272", "Q260"]), tmp_path / "no_language_no_sex.sav", survey)
    assert_cli_fails_cleanly(tmp_path, [both], capsys, both, "Q260", "Gender",
                             extra=["--absent-attribute", "Common Language=not-answered"])
    out = tmp_path / "mixed.parquet"
    rc, err = run_cli(["respondents", both, "-o", out, "--absent-attributes", "drop",
                       "--absent-attribute", "Common Language=not-answered"], capsys)
    assert rc == 0, err
    table = pd.read_parquet(out)
    assert "Gender" not in table.columns
    assert (table["Common Language"] == NOT_ANSWERED).all()


def test_cli_per_attribute_policy_unknown_name(tmp_path, catalog, attribute_map, survey, codes, capsys):
    path = write_sav(codes, tmp_path / "wvs.sav", survey)
    assert_cli_fails_cleanly(tmp_path, [path], capsys, "Common Langauge",
                             extra=["--absent-attribute", "Common Langauge=not-answered"])
    assert_cli_fails_cleanly(tmp_path, [path], capsys, "Common Language", "sometimes",
                             extra=["--absent-attribute", "Common Language=sometimes"])
    with pytest.raises(DvmapError, match="Bogus"):
        build_respondents([path], catalog, attribute_map, absent_attributes={"Bogus": "drop"})


# ----------------------------------------------------------------------- 5. generated ids of files without an id column


def _without_ids(codes):
    return codes.drop(columns=["D_INTERVIEW"])


def test_single_file_without_id_column_keeps_stem_ids(tmp_path, catalog, attribute_map, survey, codes):
    path = write_sav(_without_ids(codes), tmp_path / "wvs.sav", survey)
    table = build_respondents([path], catalog, attribute_map)
    assert table["respondent_id"].tolist() == [f"wvs-{i:06d}" for i in range(1, 91)]


def test_same_named_files_from_different_folders_get_distinct_ids(tmp_path, catalog, attribute_map, survey, codes):
    """Per-country folders holding files of the same name (usa/wvs.sav, deu/wvs.sav) used to collide on
    ``wvs-000001``; the ids now carry as many folders as it takes to tell the files apart."""
    parts = []
    for country in ("USA", "DEU", "JPN"):
        (tmp_path / country.lower()).mkdir()
        part = _without_ids(codes[codes["B_COUNTRY_ALPHA"] == country].reset_index(drop=True))
        parts.append(write_sav(part, tmp_path / country.lower() / "wvs.sav", survey))
    table = build_respondents(parts, catalog, attribute_map)
    assert table["respondent_id"].is_unique and len(table) == 90
    assert table["respondent_id"].tolist()[:2] == ["usa/wvs-000001", "usa/wvs-000002"]
    assert table["respondent_id"].tolist()[30] == "deu/wvs-000001"
    # a file's ids depend on the files sharing its name, not on the order of the inputs
    reordered = build_respondents(parts[::-1], catalog, attribute_map)
    assert set(reordered["respondent_id"]) == set(table["respondent_id"])
    # differently named files keep their stems
    other = write_sav(_without_ids(codes.iloc[:5]), tmp_path / "extra.sav", survey)
    mixed = build_respondents([parts[0], other], catalog, attribute_map)
    assert mixed["respondent_id"].tolist()[-5:] == [f"extra-{i:06d}" for i in range(1, 6)]
    assert mixed["respondent_id"].tolist()[0] == "wvs-000001"


def test_file_labels():
    from dvmap.survey.respondents import file_labels

    assert file_labels([Path("x/wvs.sav")]) == ["wvs"]
    assert file_labels([Path("a/wvs.sav"), Path("b/wvs.sav"), Path("c.sav")]) == ["a/wvs", "b/wvs", "c"]
    assert file_labels([Path("a/wvs.sav"), Path("a/wvs.dta")]) == ["wvs.sav", "wvs.dta"]
    assert file_labels([Path("p/a/wvs.sav"), Path("q/a/wvs.sav")]) == ["p/a/wvs", "q/a/wvs"]
    assert file_labels([Path("a/wvs.sav"), Path("a/wvs.sav")]) == ["wvs", "wvs"]


def test_duplicate_id_error_names_where_the_ids_came_from(tmp_path, catalog, attribute_map, survey, codes, capsys):
    """Files without the id column: the message says their ids were generated (it used to blame D_INTERVIEW, a
    column the files lack); the same file listed twice is named as such."""
    path = write_sav(_without_ids(codes), tmp_path / "wvs.sav", survey)
    with pytest.raises(DvmapError) as info:
        build_respondents([path, path], catalog, attribute_map)
    message = str(info.value)
    assert "no column D_INTERVIEW" in message and "wvs-000001" in message and "more than once" in message
    assert "ids from column D_INTERVIEW" not in message

    # the id column of files that have it is named as the source of the duplicates
    first = write_sav(codes.rename(columns={"D_INTERVIEW": "ID"}), tmp_path / "first.sav", survey)
    second = write_sav(codes.rename(columns={"D_INTERVIEW": "ID"}).iloc[:3], tmp_path / "second.sav", survey)
    err = assert_cli_fails_cleanly(tmp_path, [first, second], capsys, "ids from column ID", "84000001",
                                   extra=["--id-column", "ID"])
    assert "D_INTERVIEW" not in err and "--id-column" in err

    # a file with the id column and one without: each is named with its own source
    with_ids = write_sav(codes, tmp_path / "with_ids.sav", survey)
    numbered = write_sav(_without_ids(codes).iloc[:2], tmp_path / "numbered.sav", survey)
    table = build_respondents([with_ids, numbered], catalog, attribute_map)
    assert table["respondent_id"].tolist()[-2:] == ["numbered-000001", "numbered-000002"]

"""A WVS-7-shaped synthetic survey (the embedded default): seeded, written as an SPSS .sav file.

Answers come from a latent model: each question has an ordinal latent score made of a country effect plus one
effect per demographic category. Respondents are drawn from per-country profile templates (so profiles repeat);
in "consensus" templates everybody answers the template's modal answer, elsewhere answers are noisy. The file
keeps WVS variable names, value labels, declared missing codes (-5…-1) and a share of negative codes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from .catalog import Question
from .countries import country_table
from ..errors import DvmapError
from ..io import atomic_path

log = logging.getLogger(__name__)

#: WVS-7 countries used by default, first ``n_countries`` of them (ISO alpha-3).
DEFAULT_COUNTRIES = (
    "USA", "DEU", "JPN", "MEX", "NGA", "KOR", "BRA", "IND", "EGY", "RUS", "GBR", "CAN", "CHN", "IDN", "TUR", "ARG",
)
MISSING_LABELS = {-5: "Other missing", -4: "Not asked", -3: "Not applicable", -2: "No answer", -1: "Don't know"}
#: variable -> (question text, {code: label}); codes are WVS-7's.
DEMOGRAPHICS = {
    "Q260": ("Sex", {1: "Male", 2: "Female"}),
    "Q273": ("Marital status", {1: "Married", 2: "Living together as married", 3: "Divorced", 4: "Separated",
                                5: "Widowed", 6: "Single"}),
    "Q275": ("Highest educational level: Respondent [ISCED 2011]", {
        0: "Early childhood education (ISCED 0) / no education", 1: "Primary education (ISCED 1)",
        2: "Lower secondary education (ISCED 2)", 3: "Upper secondary education (ISCED 3)",
        4: "Post-secondary non-tertiary education (ISCED 4)", 5: "Short-cycle tertiary education (ISCED 5)",
        6: "Bachelor or equivalent (ISCED 6)", 7: "Master or equivalent (ISCED 7)",
        8: "Doctoral or equivalent (ISCED 8)"}),
    "Q279": ("Employment status", {1: "Full time (30 hours a week or more)", 2: "Part time (less than 30 hours a week)",
                                   3: "Self employed", 4: "Retired/pensioned", 5: "Homemaker not otherwise employed",
                                   6: "Student", 7: "Unemployed", 8: "Other"}),
    "Q284": ("Sector of employment", {1: "Government or public institution", 2: "Private business or industry",
                                      3: "Private non-profit organization"}),
    "Q289": ("Religious denominations - major groups", {
        0: "Do not belong to a denomination", 1: "Catholic (Roman/Greek/etc)", 2: "Protestant",
        3: "Orthodox (Russian/Greek/etc.)", 4: "Jew", 5: "Muslim", 6: "Hindu", 7: "Buddhist",
        8: "Other Christian (Jehova withness...)", 9: "Other"}),
}
#: Ranges (inclusive) for numeric demographics; template values are drawn inside the bracket of a base value.
AGE_BRACKETS = ((16, 17), (18, 34), (35, 50), (51, 64), (65, 90))
INCOME_BRACKETS = ((1, 3), (4, 7), (8, 10))
CHILD_BRACKETS = ((0, 0), (1, 6))
LANGUAGES = {1: "English", 2: "German", 3: "Japanese", 4: "Spanish", 5: "Hausa", 6: "Korean", 7: "Portuguese",
             8: "Hindi", 9: "Arabic", 10: "Russian", 11: "Mandarin", 12: "Indonesian", 13: "Turkish", 14: "French",
             15: "Other"}
HOME_LANGUAGE = {"USA": 1, "DEU": 2, "JPN": 3, "MEX": 4, "NGA": 5, "KOR": 6, "BRA": 7, "IND": 8, "EGY": 9, "RUS": 10,
                 "GBR": 1, "CAN": 1, "CHN": 11, "IDN": 12, "TUR": 13, "ARG": 4}


def synthesize(
    catalog: dict[str, Question],
    respondents_per_country: int = 400,
    n_countries: int = 12,
    seed: int = 7,
    template_share: float = 0.8,
    consensus_share: float = 0.4,
    missing_rate: float = 0.02,
) -> tuple[pd.DataFrame, dict[str, dict[int, str]], dict[str, str]]:
    """Draw the synthetic survey; return (codes, value labels, variable labels)."""
    countries = _countries(n_countries)
    rng = np.random.default_rng(seed)
    n = respondents_per_country * len(countries)
    country_idx = np.repeat(np.arange(len(countries)), respondents_per_country)

    # Per-country profile templates: a respondent copies one (repeated profiles) or is drawn afresh.
    n_templates = max(1, respondents_per_country // 10)
    templates = _draw_demographics(rng, len(countries) * n_templates)
    template_id = country_idx * n_templates + rng.integers(0, n_templates, n)
    from_template = rng.random(n) < template_share
    fresh = _draw_demographics(rng, n)
    demo = {k: np.where(from_template, v[template_id], fresh[k]) for k, v in templates.items()}
    language = countries["alpha3"].map(HOME_LANGUAGE).fillna(len(LANGUAGES)).to_numpy(dtype=int)[country_idx]
    language = np.where(rng.random(n) < 0.1, len(LANGUAGES), language)
    consensus = from_template & (rng.random(len(countries) * n_templates) < consensus_share)[template_id]
    group = np.where(from_template, template_id, -1 - np.arange(n))

    data = {
        "B_COUNTRY": countries["iso_numeric"].to_numpy(dtype=float)[country_idx],
        "B_COUNTRY_ALPHA": countries["alpha3"].to_numpy()[country_idx],
        "D_INTERVIEW": (countries["iso_numeric"].to_numpy(dtype=float)[country_idx] * 1e5
                        + np.tile(np.arange(1, respondents_per_country + 1), len(countries))),
        **{k: v.astype(float) for k, v in demo.items()},
        "Q272": language.astype(float),
    }
    # No Q289CS9 (detailed religion), as in many extracts: Religion falls back to Q289.
    for qid, question in catalog.items():
        data[qid] = _answers(rng, question, country_idx, demo, consensus, group)
    frame = pd.DataFrame(data)
    _inject_missing(rng, frame, missing_rate)
    frame.loc[frame["Q279"].isin([4, 5, 6, 7]) & (rng.random(n) < 0.5), "Q284"] = -3.0

    value_labels = {k: {**MISSING_LABELS, **labels} for k, (_, labels) in DEMOGRAPHICS.items()}
    value_labels["B_COUNTRY"] = dict(zip(countries["iso_numeric"].astype(int), countries["name"]))
    value_labels["Q272"] = {**MISSING_LABELS, **LANGUAGES}
    for key, brackets in (("Q262", AGE_BRACKETS), ("Q288", INCOME_BRACKETS), ("Q274", CHILD_BRACKETS)):
        value_labels[key] = {**MISSING_LABELS, **{v: str(v) for lo, hi in brackets for v in range(lo, hi + 1)}}
    for qid, question in catalog.items():
        value_labels[qid] = {**MISSING_LABELS, **question.recode}
    variable_labels = {k: text for k, (text, _) in DEMOGRAPHICS.items()}
    variable_labels.update({"Q262": "Age", "Q274": "How many children do you have", "Q288": "Scale of incomes",
                            "Q272": "Language at home", "B_COUNTRY": "ISO 3166-1 numeric country code",
                            "B_COUNTRY_ALPHA": "ISO 3166-1 alpha-3 country code", "D_INTERVIEW": "Interview ID"})
    variable_labels.update({qid: q.text[:120] for qid, q in catalog.items()})
    log.info("synthetic survey: %d respondents, %d countries, %d questions", n, len(countries), len(catalog))
    return frame, value_labels, variable_labels


def write_synthetic_sav(path: str | Path, catalog: dict[str, Question], **params) -> None:
    """Draw the synthetic survey and write it as a .sav with a fixed header timestamp (byte-reproducible)."""
    frame, value_labels, variable_labels = synthesize(catalog, **params)
    numeric = [c for c in frame.columns if c != "B_COUNTRY_ALPHA"]
    with atomic_path(path) as tmp:
        pyreadstat.write_sav(
            frame, tmp, file_label="dvmap synthetic WVS-7", column_labels=variable_labels,
            variable_value_labels={k: v for k, v in value_labels.items() if k in frame},
            missing_ranges={c: [{"lo": -5, "hi": -1}] for c in numeric if c not in ("B_COUNTRY", "D_INTERVIEW")},
            row_compress=True,
        )
        _pin_sav_timestamp(tmp)


def _countries(n: int) -> pd.DataFrame:
    if not 1 <= n <= len(DEFAULT_COUNTRIES):
        raise DvmapError(f"synth.n_countries must be between 1 and {len(DEFAULT_COUNTRIES)}, not {n}")
    table = country_table().set_index("alpha3")
    return table.loc[list(DEFAULT_COUNTRIES[:n])].reset_index()


def _draw_demographics(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    def pick(values, p=None):
        return rng.choice(np.asarray(values), size=n, p=p)

    def within(brackets, p):
        which = rng.choice(len(brackets), size=n, p=p)
        lo = np.array([b[0] for b in brackets])[which]
        hi = np.array([b[1] for b in brackets])[which]
        return lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(int)

    return {
        "Q260": pick([1, 2]),
        "Q262": within(AGE_BRACKETS, [0.03, 0.32, 0.27, 0.2, 0.18]),
        "Q273": pick([1, 2, 3, 4, 5, 6], [0.45, 0.1, 0.1, 0.03, 0.07, 0.25]),
        "Q274": within(CHILD_BRACKETS, [0.3, 0.7]),
        "Q275": pick(np.arange(9), [0.04, 0.08, 0.12, 0.3, 0.08, 0.08, 0.17, 0.1, 0.03]),
        "Q279": pick(np.arange(1, 9), [0.35, 0.1, 0.1, 0.16, 0.1, 0.07, 0.08, 0.04]),
        "Q284": pick([1, 2, 3], [0.3, 0.6, 0.1]),
        "Q288": within(INCOME_BRACKETS, [0.3, 0.55, 0.15]),
        "Q289": pick(np.arange(10), [0.25, 0.2, 0.15, 0.08, 0.02, 0.12, 0.06, 0.06, 0.04, 0.02]),
    }


def _answers(rng, question: Question, country_idx, demo, consensus, group) -> np.ndarray:
    """Ordinal answers: latent = country effect + demographic effects (+ noise outside consensus templates)."""
    codes = np.array(sorted(question.recode))
    n_codes = len(codes)
    latent = rng.normal(0, 1.2, country_idx.max() + 1)[country_idx]
    for var, values in demo.items():
        bucket = _bucket(var, values)
        latent = latent + rng.normal(0, 0.5, bucket.max() + 1)[bucket]
    noise = rng.normal(0, 1.0, len(latent))
    latent = latent + np.where(consensus, 0.0, noise)
    cuts = np.quantile(latent, np.linspace(0, 1, n_codes + 1)[1:-1]) if n_codes > 1 else np.array([])
    return codes[np.searchsorted(cuts, latent)].astype(float)


def _bucket(var: str, values: np.ndarray) -> np.ndarray:
    """Map a demographic's raw values to small category indices (brackets for numeric ones)."""
    brackets = {"Q262": AGE_BRACKETS, "Q288": INCOME_BRACKETS, "Q274": CHILD_BRACKETS}.get(var)
    if brackets is None:
        return values.astype(int)
    return np.searchsorted(np.array([hi for _, hi in brackets]), values)


def _inject_missing(rng, frame: pd.DataFrame, rate: float) -> None:
    """Replace a share of answers and demographics by WVS negative codes (-1 Don't know, -2 No answer, …)."""
    for column in frame.columns:
        if column in ("B_COUNTRY", "B_COUNTRY_ALPHA", "D_INTERVIEW"):
            continue
        hit = rng.random(len(frame)) < rate
        frame.loc[hit, column] = rng.choice([-1.0, -2.0, -4.0, -5.0], size=int(hit.sum()))


def _pin_sav_timestamp(path: Path) -> None:
    """Overwrite the .sav header's creation date and time (bytes 92–108) with a fixed value."""
    with open(path, "r+b") as handle:
        header = handle.read(176)
        if header[:4] not in (b"$FL2", b"$FL3"):
            raise DvmapError(f"{path}: unexpected SPSS header while pinning its timestamp")
        handle.seek(92)
        handle.write(b"01 Jan 2500:00:00")

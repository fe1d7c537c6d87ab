"""A WVS-7-shaped synthetic survey (the embedded default): seeded, written as an SPSS .sav file.

Answers come from a latent model: each question has an ordinal latent score made of a country effect plus one
effect per demographic category. Respondents are drawn from per-country profile templates (so profiles repeat);
in "consensus" templates everybody answers the template's modal answer, elsewhere answers are noisy. The file
keeps WVS variable names, value labels, declared missing codes (-5…-1) and a share of negative codes.

Two scales. ``default``: ``n_countries`` (≤ 16) countries of ``respondents_per_country`` respondents each, small
enough for the embedded run and the tests. ``wvs``: the real survey's shape — every WVS-7 country (66) at its real
sample size (97,220 respondents in all, ``dvmap/data/wvs7_synth.tsv``), the real attribute cardinalities (detailed
religion Q289CS9 beside Q289's 10 groups, a few home languages per country, 9 education levels, 8 employment
statuses, 6 marital statuses, …), country-specific marginals and age-dependent marital status, children and
employment, so that most 11-attribute profiles are singletons as in the real file; the same latent answer model.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

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


SCALES = ("default", "wvs")


def synthesize(
    catalog: dict[str, Question],
    respondents_per_country: int = 400,
    n_countries: int | None = None,
    seed: int = 7,
    template_share: float | None = None,
    consensus_share: float | None = None,
    missing_rate: float = 0.02,
    scale: str = "default",
) -> tuple[pd.DataFrame, dict[str, dict[int, str]], dict[str, str]]:
    """Draw the synthetic survey; return (codes, value labels, variable labels).

    ``scale="default"``: ``n_countries`` (default 12) × ``respondents_per_country``. ``scale="wvs"``: the first
    ``n_countries`` (default all 66) WVS-7 countries at their real sample sizes; ``respondents_per_country`` is
    ignored. ``template_share`` / ``consensus_share`` default to each scale's own values.
    """
    if scale == "wvs":
        return _synthesize_wvs(
            catalog, n_countries, seed,
            WVS_TEMPLATE_SHARE if template_share is None else template_share,
            WVS_CONSENSUS_SHARE if consensus_share is None else consensus_share, missing_rate)
    if scale != "default":
        raise DvmapError(f"synth.scale must be one of {', '.join(SCALES)}, not {scale!r}")
    n_countries = 12 if n_countries is None else n_countries
    template_share = 0.8 if template_share is None else template_share
    consensus_share = 0.4 if consensus_share is None else consensus_share
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

    value_labels, variable_labels = _labels(countries, catalog, LANGUAGES)
    log.info("synthetic survey: %d respondents, %d countries, %d questions", n, len(countries), len(catalog))
    return frame, value_labels, variable_labels


def write_synthetic_sav(path: str | Path, catalog: dict[str, Question], **params) -> None:
    """Draw the synthetic survey and write it as a .sav with a fixed header timestamp (byte-reproducible)."""
    import pyreadstat

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


def _answers(rng, question: Question, country_idx, demo, consensus, group, noise_sd: float = 1.0) -> np.ndarray:
    """Ordinal answers: latent = country effect + demographic effects (+ noise outside consensus templates)."""
    codes = np.array(sorted(question.recode))
    n_codes = len(codes)
    latent = rng.normal(0, 1.2, country_idx.max() + 1)[country_idx]
    for var, values in demo.items():
        bucket = _bucket(var, values)
        latent = latent + rng.normal(0, 0.5, bucket.max() + 1)[bucket]
    noise = rng.normal(0, noise_sd, len(latent))
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


# ------------------------------------------------------------------------------------------------ the WVS scale

WVS_TABLE = resources.files("dvmap") / "data" / "wvs7_synth.tsv"
#: Tuned on the whole WVS scale (seed 7) against the six real extracts of ../shared/data/wvs7 (9,405 respondents
#: kept after the required-attribute filter, 10 attributes): there 0.686 profiles per respondent, 80.4% of profiles
#: and 80.5% of (profile, question) pairs singletons, 36% of the pairs of n >= 2 unanimous; here 63,950 profiles
#: from 93,394 kept respondents (0.685), 80.4% and 80.4% singletons, 36% unanimous. A share WVS_TEMPLATE_SHARE of
#: the respondents copies one of its country's templates (about WVS_TEMPLATE_GROUP copies each, popular ones more:
#: the index is n_templates · u^WVS_TEMPLATE_SKEW); WVS_CONSENSUS_SHARE of the templates answer without noise, the
#: others with noise of standard deviation WVS_NOISE_SD (the default scale's 1.0 makes same-profile answers agree
#: more often than the real file's do).
WVS_TEMPLATE_SHARE = 0.4
WVS_CONSENSUS_SHARE = 0.1
WVS_TEMPLATE_GROUP = 3
WVS_TEMPLATE_SKEW = 1.5
WVS_NOISE_SD = 1.5
#: Missing shares per demographic (negative codes), near those of the six real extracts; answers use missing_rate.
WVS_MISSING = {"Q260": 0.001, "Q262": 0.01, "Q273": 0.003, "Q274": 0.007, "Q275": 0.005, "Q279": 0.012,
               "Q284": 0.01, "Q288": 0.03, "Q289": 0.017, "Q272": 0.005}
#: Detailed religious denominations (Q289CS9): code -> (label, Q289 major group, weight within its group). The
#: codes are dvmap's own (group × 100 + k), not WVS's; labels follow DVMap's released Religion vocabulary where it
#: shows them. Each country reweights the denominations of a group (a seeded Dirichlet draw).
WVS_DENOMINATIONS = {
    1: ("Non-religious", 0, 0.6), 2: ("Secular /Nonreligious /Agnostic/Atheist; nfd", 0, 0.3),
    3: ("Atheist", 0, 0.1),
    101: ("Roman Catholic; Latin Church;", 1, 0.8), 102: ("Catholic, nfd", 1, 0.15),
    103: ("Eastern Catholic Churches", 1, 0.05),
    201: ("Protestant; nfd", 2, 0.35), 202: ("Evangelical; nfd", 2, 0.2), 203: ("Methodist; nfd", 2, 0.1),
    204: ("Presbyterianism", 2, 0.08), 205: ("Lutheran; nfd", 2, 0.12), 206: ("Pentecostal; nfd", 2, 0.1),
    207: ("Anglican; nfd", 2, 0.05),
    301: ("Eastern Orthodox; nfd", 3, 0.6), 302: ("Orthodox ; nfd", 3, 0.25), 303: ("Oriental Orthodox; nfd", 3, 0.15),
    401: ("Judaism", 4, 1.0),
    501: ("Islam; nfd", 5, 0.6), 502: ("Sunni", 5, 0.3), 503: ("Shia", 5, 0.1),
    601: ("Hindu", 6, 1.0),
    701: ("Buddhist", 7, 0.85), 702: ("Mahayana Buddhism", 7, 0.1), 703: ("Theravada Buddhism", 7, 0.05),
    801: ("Other Christian; nfd", 8, 0.5), 802: ("The Church of Jesus Christ of Latter-day Saints", 8, 0.2),
    803: ("Jehovah's Witnesses", 8, 0.2), 804: ("Independent African Churches", 8, 0.1),
    901: ("Other; nfd", 9, 0.5), 902: ("Sikhism", 9, 0.15), 903: ("Spiritism", 9, 0.15),
    904: ("Ethnic religions", 9, 0.2),
}
#: Attribute marginals around which each country's own are drawn (Dirichlet, concentration per attribute), near the
#: pooled shares of the six real extracts; then multipliers by life stage (rows: the 5 AGE_BRACKETS).
WVS_AGE = (0.003, 0.34, 0.29, 0.21, 0.16)
WVS_MARITAL = (0.58, 0.07, 0.056, 0.02, 0.046, 0.228)                      # Q273 1..6
WVS_MARITAL_BY_AGE = ((0.02, 0.05, 0.001, 0.001, 0.001, 1.0), (0.6, 1.4, 0.3, 0.5, 0.05, 2.5),
                      (1.3, 1.0, 1.2, 1.2, 0.3, 0.5), (1.3, 0.7, 1.3, 1.0, 1.2, 0.3), (1.0, 0.3, 1.0, 0.7, 4.0, 0.2))
WVS_CHILDREN = (0.29, 0.71)                                                  # none, at least one
WVS_CHILDREN_BY_AGE = ((1.0, 0.02), (1.8, 0.6), (0.5, 1.2), (0.35, 1.3), (0.3, 1.3))
WVS_EDUCATION = (0.033, 0.065, 0.058, 0.335, 0.141, 0.1, 0.176, 0.07, 0.018)  # Q275 0..8
WVS_EDUCATION_BY_AGE = ((0.5, 1.5, 3.0, 1.5, 0.3, 0.2, 0.1, 0.05, 0.01), (0.7, 0.7, 0.9, 1.0, 1.0, 1.1, 1.2, 1.1, 0.8),
                        (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), (1.3, 1.3, 1.1, 1.0, 1.0, 0.9, 0.8, 0.8, 1.0),
                        (2.0, 1.8, 1.3, 0.9, 0.9, 0.8, 0.6, 0.6, 0.8))
WVS_EMPLOYMENT = (0.4, 0.094, 0.136, 0.122, 0.124, 0.046, 0.066, 0.012)    # Q279 1..8
WVS_EMPLOYMENT_BY_AGE = ((0.05, 0.2, 0.05, 0.001, 0.05, 20.0, 0.3, 0.2), (1.0, 1.2, 0.8, 0.01, 0.8, 3.0, 1.5, 0.8),
                         (1.4, 1.0, 1.3, 0.05, 1.0, 0.05, 1.0, 1.0), (1.0, 0.8, 1.2, 1.5, 1.1, 0.01, 0.8, 1.0),
                         (0.1, 0.3, 0.4, 6.0, 0.8, 0.001, 0.1, 0.8))
WVS_SECTOR = (0.22, 0.67, 0.11)                                              # Q284 1..3 among those who answer
WVS_INCOME = (0.29, 0.63, 0.08)                                              # INCOME_BRACKETS
WVS_INCOME_BY_EDUCATION = ((1.6, 1.0, 0.5), (1.0, 1.0, 1.0), (0.6, 1.0, 1.8))  # Q275 0–2, 3–5, 6–8


@cache
def wvs_table() -> pd.DataFrame:
    """Every WVS-7 country in the WVS scale's order (the default countries first, then countries.tsv's order):
    iso_numeric, alpha2, alpha3, name, respondents (real sample size), languages and religions ({name: share})."""
    spec = pd.read_csv(WVS_TABLE, sep="\t", comment="#", dtype=str, keep_default_na=False)
    spec["respondents"] = spec["respondents"].astype(int)
    for column in ("languages", "religions"):
        spec[column] = spec[column].map(_shares)
    spec["religions"] = spec["religions"].map(lambda shares: {int(k): v for k, v in shares.items()})
    countries = country_table()
    missing = set(countries["alpha3"]) ^ set(spec["alpha3"])
    if missing or len(spec) != len(countries):
        raise DvmapError(f"{WVS_TABLE.name} and countries.tsv disagree on the WVS-7 countries: {sorted(missing)}")
    table = countries.merge(spec, on="alpha3", validate="one_to_one")
    order = {alpha3: i for i, alpha3 in enumerate(DEFAULT_COUNTRIES)}
    rank = [order.get(a, len(order) + i) for i, a in enumerate(table["alpha3"])]
    return table.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)


@cache
def wvs_languages() -> dict[int, str]:
    """Q272 codes of the WVS scale (dvmap's own numbering: alphabetical, "Other" last) -> language name."""
    names = sorted({name for shares in wvs_table()["languages"] for name in shares} - {"Other"}) + ["Other"]
    return {code: name for code, name in enumerate(names, start=1)}


def _shares(text: str) -> dict[str, float]:
    shares = {}
    for item in text.split(" | "):
        match = re.fullmatch(r"(.+)=([0-9]*\.?[0-9]+)", item.strip())
        if not match:
            raise DvmapError(f"{WVS_TABLE.name}: cannot read the share {item!r}")
        shares[match[1]] = float(match[2])
    return shares


def _synthesize_wvs(catalog, n_countries, seed, template_share, consensus_share, missing_rate):
    table = wvs_table()
    n_countries = len(table) if n_countries is None else n_countries
    if not 1 <= n_countries <= len(table):
        raise DvmapError(f"synth.n_countries must be between 1 and {len(table)} with scale wvs, not {n_countries}")
    countries = table.iloc[:n_countries].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    sizes = countries["respondents"].to_numpy()
    n = int(sizes.sum())
    country_idx = np.repeat(np.arange(len(countries)), sizes)
    within = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)

    margins = _wvs_margins(rng, countries)
    fresh = _draw_wvs_demographics(rng, margins, country_idx)
    # A share template_share of the respondents copies one of its country's templates (about WVS_TEMPLATE_GROUP
    # copies each); the others are drawn afresh from the country's margins.
    n_templates = np.maximum(1, np.round(sizes * template_share / WVS_TEMPLATE_GROUP)).astype(int)
    first = np.cumsum(n_templates) - n_templates
    templates = _draw_wvs_demographics(rng, margins, np.repeat(np.arange(len(countries)), n_templates))
    # Popular templates are copied more often (index ~ n_templates · u^WVS_TEMPLATE_SKEW): group sizes decay slowly.
    pick = np.floor(rng.random(n) ** WVS_TEMPLATE_SKEW * n_templates[country_idx]).astype(int)
    template_id = first[country_idx] + pick
    from_template = rng.random(n) < template_share
    demo = {k: np.where(from_template, templates[k][template_id], v) for k, v in fresh.items()}
    consensus = from_template & (rng.random(int(n_templates.sum())) < consensus_share)[template_id]
    group = np.where(from_template, template_id, -1 - np.arange(n))

    iso = countries["iso_numeric"].to_numpy(dtype=float)
    data = {
        "B_COUNTRY": iso[country_idx],
        "B_COUNTRY_ALPHA": countries["alpha3"].to_numpy()[country_idx],
        "D_INTERVIEW": iso[country_idx] * 1e5 + within + 1,
        **{k: demo[k].astype(float) for k in (*DEMOGRAPHICS, "Q262", "Q274", "Q288", "Q289CS9", "Q272")},
    }
    for qid, question in catalog.items():
        data[qid] = _answers(rng, question, country_idx, demo, consensus, group, WVS_NOISE_SD)
    # Sector of employment does not apply to most of those without work (-3), as often as the country's margin says.
    not_working = np.isin(demo["Q279"], [4, 5, 6, 7]) & (rng.random(n) < margins["sector_na"][country_idx])
    data["Q284"][not_working] = -3.0
    for column, values in data.items():
        if column in ("B_COUNTRY", "B_COUNTRY_ALPHA", "D_INTERVIEW", "Q289CS9"):
            continue
        hit = rng.random(n) < WVS_MISSING.get(column, missing_rate)
        values[hit] = rng.choice([-1.0, -2.0, -4.0, -5.0], size=int(hit.sum()))
    data["Q289CS9"] = np.where(data["Q289"] < 0, data["Q289"], data["Q289CS9"])
    frame = pd.DataFrame(data)

    denominations = {code: label for code, (label, _, _) in WVS_DENOMINATIONS.items()}
    value_labels, variable_labels = _labels(countries, catalog, wvs_languages(),
                                            {"Q289CS9": ("Religious denomination - detailed list", denominations)})
    log.info("synthetic survey (WVS scale): %d respondents, %d countries, %d questions", n, len(countries),
             len(catalog))
    return frame, value_labels, variable_labels


def _wvs_margins(rng, countries: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each country's own attribute distributions: Dirichlet draws around the pooled margins, times the life-stage
    (or education) multipliers, as probability tables keyed by country (× condition)."""
    n = len(countries)

    def around(base, concentration, by=None):
        p = rng.dirichlet(concentration * np.asarray(base), size=n)
        if by is not None:
            p = (p[:, None, :] * np.asarray(by)[None]).reshape(-1, len(base))
        return p / p.sum(axis=1, keepdims=True)

    languages = {name: code for code, name in wvs_languages().items()}
    language = np.zeros((n, len(languages)))
    for i, shares in enumerate(countries["languages"]):
        for name, share in shares.items():
            language[i, languages[name] - 1] = share
    codes = np.array(list(WVS_DENOMINATIONS))
    groups = np.array([g for _, g, _ in WVS_DENOMINATIONS.values()])
    weights = np.array([w for _, _, w in WVS_DENOMINATIONS.values()])
    religion = np.zeros((n, len(codes)))
    for i, shares in enumerate(countries["religions"]):
        for g, share in shares.items():
            members = groups == g
            religion[i, members] = share * rng.dirichlet(3.0 * weights[members] / weights[members].sum())
    return {
        "sex": around((0.5, 0.5), 400.0),
        "age": around(WVS_AGE, 40.0),
        "marital": around(WVS_MARITAL, 20.0, WVS_MARITAL_BY_AGE),
        "children": around(WVS_CHILDREN, 20.0, WVS_CHILDREN_BY_AGE),
        "education": around(WVS_EDUCATION, 6.0, WVS_EDUCATION_BY_AGE),
        "employment": around(WVS_EMPLOYMENT, 15.0, WVS_EMPLOYMENT_BY_AGE),
        "sector": around(WVS_SECTOR, 15.0),
        "income": around(WVS_INCOME, 20.0, WVS_INCOME_BY_EDUCATION),
        "sector_na": rng.uniform(0.1, 0.9, n),
        "language": language / language.sum(axis=1, keepdims=True),
        "religion": religion / religion.sum(axis=1, keepdims=True),
        "religion_codes": codes,
        "religion_groups": groups,
    }


def _draw_wvs_demographics(rng, margins: dict[str, np.ndarray], country_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Respondents of the given countries (indices into ``margins``' rows): raw WVS codes per variable."""
    n = len(country_idx)
    stages = len(AGE_BRACKETS)
    age_bracket = _categorical(rng, margins["age"], country_idx)
    by_age = country_idx * stages + age_bracket
    education = _categorical(rng, margins["education"], by_age)
    level = np.searchsorted([2, 5], education)                     # Q275 0–2, 3–5, 6–8
    income_bracket = _categorical(rng, margins["income"], country_idx * 3 + level)
    has_children = _categorical(rng, margins["children"], by_age)
    religion = _categorical(rng, margins["religion"], country_idx)
    return {
        "Q260": 1 + _categorical(rng, margins["sex"], country_idx),
        "Q273": 1 + _categorical(rng, margins["marital"], by_age),
        "Q275": education,
        "Q279": 1 + _categorical(rng, margins["employment"], by_age),
        "Q284": 1 + _categorical(rng, margins["sector"], country_idx),
        "Q289": margins["religion_groups"][religion],
        "Q262": _within(rng, AGE_BRACKETS, age_bracket),
        "Q274": np.where(has_children == 1, rng.integers(1, 7, n), 0),
        "Q288": _within(rng, INCOME_BRACKETS, income_bracket),
        "Q289CS9": margins["religion_codes"][religion],
        "Q272": 1 + _categorical(rng, margins["language"], country_idx),
    }


def _categorical(rng, probabilities: np.ndarray, key: np.ndarray) -> np.ndarray:
    """One draw per element of ``key`` from row ``key`` of ``probabilities`` (rows summing to 1), vectorised:
    rows are laid end to end (row r spans (r, r + 1]) and one sorted search finds every draw."""
    rows, k = probabilities.shape
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative[:, -1] = 1.0
    flat = (cumulative + np.arange(rows)[:, None]).ravel()
    position = np.searchsorted(flat, key + rng.random(len(key)), side="right") - key * k
    return np.minimum(position, k - 1)


def _within(rng, brackets, which: np.ndarray) -> np.ndarray:
    lo = np.array([b[0] for b in brackets])[which]
    hi = np.array([b[1] for b in brackets])[which]
    return lo + np.floor(rng.random(len(which)) * (hi - lo + 1)).astype(int)


def _labels(countries: pd.DataFrame, catalog: dict[str, Question], languages: dict[int, str],
            extra: dict[str, tuple[str, dict[int, str]]] | None = None) -> tuple[dict, dict]:
    """(value labels, variable labels) of the .sav: demographics, country, languages, ``extra`` variables (name ->
    (label, value labels)), numeric brackets and the catalog's questions."""
    extra = extra or {}
    value_labels = {k: {**MISSING_LABELS, **labels} for k, (_, labels) in DEMOGRAPHICS.items()}
    value_labels["B_COUNTRY"] = dict(zip(countries["iso_numeric"].astype(int), countries["name"]))
    value_labels["Q272"] = {**MISSING_LABELS, **languages}
    value_labels.update({k: {**MISSING_LABELS, **labels} for k, (_, labels) in extra.items()})
    for key, brackets in (("Q262", AGE_BRACKETS), ("Q288", INCOME_BRACKETS), ("Q274", CHILD_BRACKETS)):
        value_labels[key] = {**MISSING_LABELS, **{v: str(v) for lo, hi in brackets for v in range(lo, hi + 1)}}
    for qid, question in catalog.items():
        value_labels[qid] = {**MISSING_LABELS, **question.recode}
    variable_labels = {k: text for k, (text, _) in DEMOGRAPHICS.items()}
    variable_labels.update({"Q262": "Age", "Q274": "How many children do you have", "Q288": "Scale of incomes",
                            "Q272": "Language at home", **{k: text for k, (text, _) in extra.items()},
                            "B_COUNTRY": "ISO 3166-1 numeric country code",
                            "B_COUNTRY_ALPHA": "ISO 3166-1 alpha-3 country code", "D_INTERVIEW": "Interview ID"})
    variable_labels.update({qid: q.text[:120] for qid, q in catalog.items()})
    return value_labels, variable_labels

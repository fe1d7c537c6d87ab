"""Prompt wording as data: the packaged dvmap/data/prompts.yaml, a user's file (config prompts.templates), the
`release` style, and --templates through `dvmap prompts`, `dvmap predict` and the Snakemake rules."""

from __future__ import annotations

import json
import re
import time
from importlib import resources

import pandas as pd
import pytest
import yaml

from dvmap import ATTRIBUTES, NOT_ANSWERED
from dvmap.survey.catalog import load_catalog
from dvmap.cli import main
from dvmap.errors import DvmapError
from dvmap.io import read_parquet, write_parquet
from dvmap.corpus.prompts import DEFAULT_TEMPLATES, STYLES, load_templates, prompt_corpus

from .conftest import REPO

PACKAGED = yaml.safe_load(DEFAULT_TEMPLATES.read_text())
PROFILES = [
    {"Country": "Germany", "Gender": "Female", "Marital Status": "Married", "Has Children": "has no children",
     "Education Level": "Bachelor or equivalent (ISCED 6)", "Occupation": "Student",
     "Work Nature": "Private business or industry", "Religion": "Protestant", "Life Stage": "Early Adulthood",
     "Income Bracket": "Low income", "Common Language": "German"},
    {"Country": "Japan", "Gender": "Male", "Marital Status": "Single", "Has Children": "has at least one child",
     "Education Level": "Primary education (ISCED 1)", "Occupation": "Self employed",
     "Work Nature": NOT_ANSWERED, "Religion": "Buddhist", "Life Stage": "Older Adulthood",
     "Income Bracket": "High income", "Common Language": "Japanese"},
]


def make_items(release_prompt: bool = False) -> pd.DataFrame:
    """Two profiles x two catalog questions in dvmap's item schema (optionally with an imported release prompt)."""
    catalog = load_catalog()
    rows = []
    for p, profile in enumerate(PROFILES):
        for qid in ("Q1", "Q2"):
            q = catalog[qid]
            rows.append({"item_id": f"p{p}:{qid}", "profile_id": f"p{p}", **profile, "question_id": qid,
                         "category": q.section, "question": q.text, "options": list(q.options),
                         "answer": q.options[p], "answer_index": p, "n": 5.0, "entropy": 0.0,
                         "frequency": 0.5 + p / 4, "split": "train", "data_source": "wvs"})
            if release_prompt:
                rows[-1]["release_prompt"] = f"\n  You are playing the role of someone from {profile['Country']}.\n" \
                                             f"  **Question**: {q.text}\n  **Options**: {', '.join(q.options)}\n  "
    return pd.DataFrame(rows)


def user_file(tmp_path, change=None, name: str = "wording.yaml"):
    """A copy of the packaged wording, changed in place by ``change(data)``."""
    data = json.loads(json.dumps(PACKAGED))
    if change is not None:
        change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def texts(corpus: pd.DataFrame, role: str) -> list[str]:
    return [next(m["content"] for m in p if m["role"] == role) for p in corpus["prompt"]]


# --------------------------------------------------------------------------------------------------------------
# The packaged wording
# --------------------------------------------------------------------------------------------------------------

def test_packaged_file_is_package_data_and_defines_every_style():
    assert DEFAULT_TEMPLATES == resources.files("dvmap") / "data" / "prompts.yaml"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'dvmap = \[[^\]]*"data/\*\.yaml"', pyproject), "prompts.yaml must ship with the package"
    templates = load_templates()
    assert set(templates.styles) == set(STYLES)
    header = DEFAULT_TEMPLATES.read_text().split("\noption_line:")[0]
    for placeholder in ("{persona}", "{question}", "{options}", "{options_inline}", "{category}",
                        "{release_prompt}", "{option}", "{number}", "{value}", "{attribute}", "{details}"):
        assert placeholder in header, f"the file's header documents {placeholder}"
    assert set(templates.persona["phrases"]) == set(ATTRIBUTES)


def test_structured_cot_asks_for_reasoning_then_answer_in_the_second_person():
    items = make_items()
    corpus = prompt_corpus(items, "structured_cot")
    for system, user in zip(texts(corpus, "system"), texts(corpus, "user")):
        for text in (system, user):
            assert "<reasoning></reasoning>" in text and "<answer></answer>" in text
            assert text.index("<reasoning>") < text.index("<answer>")
        assert system.startswith("You are") and user.startswith("You are")
        assert re.search(r"\b(the person|the character|they)\b", system + user, re.I) is None
    first = texts(corpus, "user")[0]
    assert "Germany" in first and "Q1" not in first
    assert "How important is family in your life?" in first


@pytest.mark.parametrize("style", ["direct", "country_only"])
def test_direct_styles_ask_for_the_answer_only(style):
    corpus = prompt_corpus(make_items(), style)
    for system, user in zip(texts(corpus, "system"), texts(corpus, "user")):
        assert "<answer></answer>" in system and "<answer></answer>" in user
        assert "<reasoning>" not in system + user
        assert system.startswith("You are") and user.startswith("You are")
    users = texts(corpus, "user")
    assert ("Student" in users[0]) == (style == "direct")  # country_only keeps the country alone


def test_not_answered_values_are_left_out_and_options_listed_in_order():
    corpus = prompt_corpus(make_items(), "direct")
    japan = texts(corpus, "user")[2]
    assert NOT_ANSWERED not in japan and "workplace" not in japan
    options = load_catalog()["Q1"].options
    assert "\n".join(f"- {o}" for o in options) in japan


# --------------------------------------------------------------------------------------------------------------
# A user's wording file
# --------------------------------------------------------------------------------------------------------------

def test_user_templates_change_the_prompt_text(tmp_path):
    def change(data):
        data["option_line"] = "({number}) {option}"
        data["persona"]["phrases"]["Country"] = "your home country is {value}"
        data["persona"]["sentence"] = "You, the respondent: {details}."
        data["persona"]["separator"] = " | "
        data["styles"]["direct"]["system"] = "You answer in one tag: <answer></answer>. {{literal braces}}"
        data["styles"]["direct"]["user"] = "{persona}\nSection {category}. {question} Choose: {options_inline}\n{options}"

    path = user_file(tmp_path, change)
    items = make_items()
    packaged = prompt_corpus(items, "direct")
    custom = prompt_corpus(items, "direct", path)
    assert texts(custom, "user") != texts(packaged, "user")
    assert set(texts(custom, "system")) == {"You answer in one tag: <answer></answer>. {literal braces}"}
    q1 = load_catalog()["Q1"]
    user = texts(custom, "user")[0]
    assert user.startswith("You, the respondent: your home country is Germany | ")
    assert f"Section {q1.section}. {q1.text} Choose: {', '.join(q1.options)}\n(1) {q1.options[0]}\n(2)" in user
    assert "Not Answered" not in texts(custom, "user")[2]
    # the loaded object gives the same prompts as the path; other styles share the file's persona and option lines
    assert texts(prompt_corpus(items, "direct", load_templates(path)), "user") == texts(custom, "user")
    cot = texts(prompt_corpus(items, "structured_cot", path), "user")[0]
    assert cot.startswith("You, the respondent: your home country is Germany | ") and "\n(1) Very important\n" in cot


def test_values_with_braces_are_not_templates(tmp_path):
    items = make_items()
    items["question"] = "Is {persona} a {placeholder}?"
    user = texts(prompt_corpus(items, "direct"), "user")[0]
    assert "Question: Is {persona} a {placeholder}?" in user


def _drop_direct(data):
    del data["styles"]["direct"]


def _unknown_user_placeholder(data):
    data["styles"]["direct"]["user"] = "{persona} {mood}"


def _unknown_system_placeholder(data):
    data["styles"]["structured_cot"]["system"] = "You are {persona.name}"


def _unknown_phrase_placeholder(data):
    data["persona"]["phrases"]["Gender"] = "your gender is {gender}"


def _positional_placeholder(data):
    data["option_line"] = "- {}"


def _unbalanced_brace(data):
    data["styles"]["direct"]["user"] = "{persona} {question"


def _missing_user(data):
    del data["styles"]["country_only"]["user"]


def _not_a_string(data):
    data["persona"]["separator"] = ["; "]


def _unknown_style(data):
    data["styles"]["chatty"] = {"system": "Hi", "user": "{question}"}


def _missing_persona(data):
    del data["persona"]


@pytest.mark.parametrize("change, key, detail", [
    (_drop_direct, "styles.direct", "missing"),
    (_unknown_user_placeholder, "styles.direct.user", "unknown placeholder {mood}"),
    (_unknown_system_placeholder, "styles.structured_cot.system", "unknown placeholder {persona.name}"),
    (_unknown_phrase_placeholder, "persona.phrases.Gender", "unknown placeholder {gender}"),
    (_positional_placeholder, "option_line", "unknown placeholder {}"),
    (_unbalanced_brace, "styles.direct.user", "malformed template"),
    (_missing_user, "styles.country_only.user", "missing"),
    (_not_a_string, "persona.separator", "expected a string"),
    (_unknown_style, "styles.chatty", "unknown style"),
    (_missing_persona, "persona", "missing"),
])
def test_wording_file_errors_name_the_file_and_key(tmp_path, change, key, detail):
    path = user_file(tmp_path, change)
    with pytest.raises(DvmapError) as excinfo:
        prompt_corpus(make_items(), "direct", path)
    message = str(excinfo.value)
    assert str(path) in message and f"{key}:" in message and detail in message, message


@pytest.mark.parametrize("content, detail", [("styles: [unclosed\n", "not valid YAML"),
                                             ("- a list\n", "expected a mapping"),
                                             ("", "expected a mapping")])
def test_malformed_wording_file(tmp_path, content, detail):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(DvmapError, match=re.escape(str(path)) + ".*" + detail):
        load_templates(path)
    with pytest.raises(DvmapError, match=re.escape(str(tmp_path / "absent.yaml"))):
        load_templates(tmp_path / "absent.yaml")


# --------------------------------------------------------------------------------------------------------------
# The release style
# --------------------------------------------------------------------------------------------------------------

def test_release_style_sends_the_release_prompt_verbatim():
    items = make_items(release_prompt=True)
    corpus = prompt_corpus(items, "release")
    assert texts(corpus, "user") == items["release_prompt"].tolist()  # whitespace and all
    system = texts(corpus, "system")[0]
    assert set(texts(corpus, "system")) == {system}
    assert "<reasoning></reasoning>" in system and "<answer></answer>" in system
    assert system.index("<reasoning>") < system.index("<answer>")
    assert (corpus["style"] == "release").all()


def test_release_style_needs_imported_release_items():
    with pytest.raises(DvmapError, match=r"release_prompt.*data\.source: release"):
        prompt_corpus(make_items(), "release")
    items = make_items(release_prompt=True)
    items.loc[2, "release_prompt"] = ""
    with pytest.raises(DvmapError, match=rf"item {items.loc[2, 'item_id']} has no release_prompt.*"
                                         r"data\.source: release"):
        prompt_corpus(items, "release")


def test_release_prompt_placeholder_in_another_style_needs_release_items(tmp_path):
    path = user_file(tmp_path, lambda d: d["styles"]["direct"].update(user="{release_prompt}\n\nAnswer in tags."))
    items = make_items(release_prompt=True)
    assert texts(prompt_corpus(items, "direct", path), "user")[0] == items["release_prompt"][0] + "\n\nAnswer in tags."
    with pytest.raises(DvmapError, match=r"data\.source: release"):
        prompt_corpus(make_items(), "direct", path)


# --------------------------------------------------------------------------------------------------------------
# --templates through the CLI
# --------------------------------------------------------------------------------------------------------------

def test_cli_prompts_passes_templates(tmp_path, capsys):
    items = tmp_path / "items" / "train.parquet"
    write_parquet(make_items(), items)
    path = user_file(tmp_path, lambda d: d["styles"]["direct"].update(user="CUSTOM {question} :: {options_inline}"))
    assert main(["-q", "prompts", str(items), "--style", "direct", "--templates", str(path),
                 "-o", str(tmp_path / "custom"), "--dvmap-verl-dir", str(tmp_path / "fork")]) == 0
    assert main(["-q", "prompts", str(items), "--style", "direct", "-o", str(tmp_path / "packaged")]) == 0
    custom = read_parquet(tmp_path / "custom" / "train.parquet")
    users = texts(custom, "user")
    assert all(u.startswith("CUSTOM How important") for u in users)
    assert texts(read_parquet(tmp_path / "packaged" / "train.parquet"), "user") != users
    assert read_parquet(tmp_path / "fork" / "train.parquet")["prompt"].tolist() == users
    # a bad file: exit 2, the message names the file and key, nothing written
    bad = user_file(tmp_path, _unknown_user_placeholder, "bad.yaml")
    assert main(["prompts", str(items), "--style", "direct", "--templates", str(bad),
                 "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "styles.direct.user" in err and "{mood}" in err
    assert not (tmp_path / "bad").exists()


class RecordingBackend:
    """Answers every conversation with its first option; records the conversations it was given."""

    def __init__(self):
        self.conversations = []

    def generate(self, conversations):
        self.conversations += conversations
        return [["<answer>Very important</answer>"] for _ in conversations]

    def close(self):
        pass


def test_cli_predict_passes_templates(tmp_path, monkeypatch, capsys):
    import dvmap.inference.backends

    backend = RecordingBackend()
    monkeypatch.setattr(dvmap.inference.backends, "load_backend", lambda spec, path, **kw: backend)
    items = tmp_path / "bench" / "cross_value.parquet"
    write_parquet(make_items(), items)
    path = user_file(tmp_path, lambda d: d["styles"]["direct"].update(system="SYSTEM WORDING <answer></answer>"))
    (tmp_path / "config.json").write_text("{}")  # a model directory, as far as predict checks before loading
    entry = json.dumps({"source": {"kind": "hf", "path": str(tmp_path)}})
    assert main(["-q", "predict", str(items), "--model", "fake", "--model-spec", entry, "--style", "direct",
                 "--templates", str(path), "-o", str(tmp_path / "out")]) == 0
    assert len(backend.conversations) == 4
    assert {c[0]["content"] for c in backend.conversations} == {"SYSTEM WORDING <answer></answer>"}
    assert (read_parquet(tmp_path / "out" / "cross_value.parquet")["prediction"] == "Very important").all()
    # a bad file fails before any model is loaded
    bad = user_file(tmp_path, _drop_direct, "bad.yaml")
    monkeypatch.setattr(dvmap.inference.backends, "load_backend", lambda *a, **k: pytest.fail("model loaded"))
    assert main(["predict", str(items), "--model", "fake", "--model-spec", entry, "--templates", str(bad),
                 "-o", str(tmp_path / "out2")]) == 2
    assert str(bad) in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# config prompts.templates through the Snakemake rules
# --------------------------------------------------------------------------------------------------------------

PROMPT_TARGETS = ("results/prompts/tau~0.0/direct/train.parquet", "results/prompts/benchmark/direct/cross_value.parquet")


def test_rules_pass_templates_and_a_change_makes_prompts_stale(tmp_path):
    from .workflow_helpers import config_for, dry_run_jobs, snakemake

    workdir = tmp_path / "run"
    workdir.mkdir()
    small = dict(prompts={"styles": ["direct"]}, archetypes={"thresholds": [0.0], "min_group_size": 1})
    config_for(workdir, **small)
    snakemake(workdir, *PROMPT_TARGETS)
    fork = read_parquet(workdir / "results/prompts/tau~0.0/direct/dvmap_verl/train.parquet")
    assert list(fork.columns[:2]) == ["Q_id", "Country"] and "Options" in fork.columns
    assert dry_run_jobs(workdir, *PROMPT_TARGETS) == []

    wording = user_file(workdir, lambda d: d["styles"]["direct"].update(user="CUSTOM {question}\n{options}"),
                        "my wording.yaml")  # a space: the path must be quoted in the shell commands
    config_for(workdir, prompts={"styles": ["direct"], "templates": str(wording)},
               archetypes=small["archetypes"])
    jobs = dry_run_jobs(workdir, *PROMPT_TARGETS)
    assert sorted(rule for rule, _ in jobs) == ["benchmark_prompts", "prompts"]
    shell = snakemake(workdir, "--dry-run", "--printshellcmds", *PROMPT_TARGETS).stdout
    assert shell.count(f"--templates '{wording}'") == 2, shell
    snakemake(workdir, *PROMPT_TARGETS)
    for path in PROMPT_TARGETS:
        assert all(u.startswith("CUSTOM ") for u in texts(read_parquet(workdir / path), "user")), path
    fork = read_parquet(workdir / "results/prompts/tau~0.0/direct/dvmap_verl/train.parquet")
    assert fork["prompt"].str.startswith("CUSTOM ").all()
    assert dry_run_jobs(workdir, *PROMPT_TARGETS) == []
    # the file is an input as well: editing it makes the prompts stale too
    time.sleep(1)
    user_file(workdir, lambda d: d["styles"]["direct"].update(user="EDITED {question}\n{options}"), wording.name)
    assert sorted(rule for rule, _ in dry_run_jobs(workdir, *PROMPT_TARGETS)) == ["benchmark_prompts", "prompts"]

    # the predict rule passes it too
    config_for(workdir, prompts={"styles": ["direct"], "templates": str(wording)}, archetypes=small["archetypes"],
               models={"fake": {"source": {"kind": "hf", "path": str(tmp_path)}}},
               inference={"models": ["fake"], "styles": ["direct"]})
    target = "results/predictions/fake-direct.tau~none.seed~0/cross_value.parquet"
    shell = snakemake(workdir, "--dry-run", "--printshellcmds", target).stdout
    predict = [line for line in shell.splitlines() if "dvmap predict" in line]
    assert len(predict) == 1 and f"--templates '{wording}'" in predict[0], shell

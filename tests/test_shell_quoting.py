"""Config-derived strings reach the rules' shell commands as one quoted argument each: a path or name holding a
space, a quote, `$(…)` and backticks is never split, nor run. A dry run with --printshellcmds shows every command;
a real run of two cheap jobs (respondents on a survey file, and convert_gguf of a junk file) shows that nothing is
executed."""

from __future__ import annotations

import json
import shlex
import shutil

from dvmap.survey.catalog import load_catalog
from dvmap.survey.synth import write_synthetic_sav

from .conftest import REPO
from .workflow_helpers import config_for, snakemake

#: A folder name that a shell would split, and run two commands from, if it were not quoted (no quote in it: an
#: unbalanced quote would make an unquoted command a syntax error instead, and hide the injection).
NASTY = "a $(touch MARKER1) `touch MARKER2` dir"
MARKERS = ("MARKER1", "MARKER2")


def nasty_config(tmp_path):
    """A small config whose data input, models (GGUF file, hf folder, endpoint's served name), accelerate config,
    prompt templates and catalog all sit under NASTY; returns the strings the commands must carry intact."""
    root = tmp_path / NASTY
    root.mkdir()
    survey = root / "wvs 7 $(touch MARKER1).sav"
    write_synthetic_sav(survey, load_catalog(), respondents_per_country=20, n_countries=3, seed=1)
    gguf = root / "model `touch MARKER2`.gguf"
    gguf.write_bytes(b"not a GGUF file")
    hf = root / "hf model $(touch MARKER1)"
    hf.mkdir()
    accelerate = root / "accelerate $(touch MARKER1).yaml"
    shutil.copy(REPO / "config/accelerate/cpu.yaml", accelerate)
    templates = root / "it's prompts `touch MARKER2`.yaml"
    shutil.copy(REPO / "dvmap/data/prompts.yaml", templates)
    catalog = root / "questions $(touch MARKER1).yaml"
    shutil.copy(REPO / "dvmap/data/questions.yaml", catalog)
    served = "org/My Model $(touch MARKER1) `touch MARKER2` it's"
    config_for(
        tmp_path,
        data={"source": "wvs", "inputs": [str(survey)], "catalog": str(catalog), "absent_questions": "skip",
              "absent_attributes": {"Common Language": "not-answered"}},
        splits={"heldout_countries": [], "heldout_questions": ["Q47"]},
        prompts={"styles": ["direct"], "templates": str(templates)},
        models={"gg": {"source": {"kind": "gguf", "path": str(gguf)}},
                "hf": {"source": {"kind": "hf", "path": str(hf)}},
                "ep": {"source": {"kind": "endpoint", "url": "http://127.0.0.1:9/v1", "model": served}}},
        inference={"models": ["gg", "hf", "ep"], "styles": ["direct"]},
        training={"models": ["hf"], "accelerate": str(accelerate), "thresholds": [0.0], "styles": ["direct"]},
    )
    return {"survey": str(survey), "gguf": str(gguf), "hf": str(hf), "accelerate": str(accelerate),
            "templates": str(templates), "catalog": str(catalog), "served": served}


def commands(output: str) -> list[list[str]]:
    """The shell commands a --printshellcmds dry run prints, each split as the shell would split it."""
    prefix = "Shell command: "
    lines = [line.strip().removeprefix(prefix) for line in output.splitlines()
             if line.strip().startswith(prefix) and line.strip() != prefix + "None"]  # rule all has no command
    assert lines, output[-3000:]
    return [shlex.split(line) for line in lines]


def after(tokens: list[str], flag: str) -> str:
    return tokens[tokens.index(flag) + 1]


def test_dry_run_shows_each_string_as_one_argument(tmp_path):
    strings = nasty_config(tmp_path)
    result = snakemake(tmp_path, "--dry-run", "--printshellcmds")
    cmds = commands(result.stdout)
    by_tool = {}
    for tokens in cmds:
        tool = tokens[1] if tokens[0] == "dvmap" else tokens[tokens.index("dvmap") + 1]
        by_tool.setdefault(tool, []).append(tokens)

    (respondents,) = by_tool["respondents"]
    assert respondents[2] == strings["survey"] and after(respondents, "--catalog") == strings["catalog"]
    (convert,) = by_tool["convert-gguf"]
    assert convert[2] == strings["gguf"]
    assert {after(t, "--templates") for t in by_tool["prompts"]} == {strings["templates"]}
    predictions = {after(t, "--model"): t for t in by_tool["predict"] if "--label" in t and "grpo" not in
                   after(t, "--label")}
    assert after(predictions["hf"], "--model-path") == strings["hf"]
    assert json.loads(after(predictions["ep"], "--model-spec"))["source"]["model"] == strings["served"]
    assert json.loads(after(predictions["gg"], "--model-spec"))["source"]["path"] == strings["gguf"]
    (train,) = by_tool["train"]
    assert after(train, "--config_file") == strings["accelerate"] and after(train, "--model-path") == strings["hf"]

    # every argument that carries a marker is one of the strings, whole (or a JSON document holding one)
    allowed = set(strings.values())
    for tokens in cmds:
        for token in tokens:
            if "MARKER" in token and token not in allowed:
                document = json.dumps(json.loads(token))
                assert any(json.dumps(s)[1:-1] in document for s in allowed), (token, tokens)
    assert not [p for p in tmp_path.rglob("MARKER*")]


def test_real_jobs_run_nothing_from_a_path(tmp_path):
    strings = nasty_config(tmp_path)
    result = snakemake(tmp_path, "--keep-going", "results/respondents.parquet", "results/models/gg", check=False)
    assert result.returncode != 0  # the junk GGUF cannot be converted...
    assert (tmp_path / "results/respondents.parquet").exists()  # ...while the survey at the nasty path was read
    log = (tmp_path / "logs/convert_gguf/gg.log").read_text()
    assert strings["gguf"] in log  # the converter got the path whole, and refused the file
    for marker in MARKERS:
        assert not list(tmp_path.rglob(marker)) and not (REPO / marker).exists()

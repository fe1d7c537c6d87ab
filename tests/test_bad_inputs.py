"""Every subcommand refuses bad input with a named error: exit status 2, a ``dvmap COMMAND: error:`` line naming the
file or option, no traceback, and nothing written. Also: atomic outputs, and predict's rerun and model checks."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dvmap.cli import build_parser, main
from dvmap.errors import DvmapError
from dvmap.io import atomic_outputs, atomic_path, read_tsv, write_parquet, write_tsv

from .conftest import OFFLINE, REPO


def dvmap(*argv) -> None:
    assert main(["-q", *map(str, argv)]) == 0, argv


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One tiny pipeline run through the CLI, and bad variants of its tables (wrong kind, empty, out of range)."""
    d = tmp_path_factory.mktemp("pipeline")
    f = {name: d / name for name in ("survey.sav", "respondents.parquet", "dropped.tsv", "stats.parquet",
                                     "archetypes.parquet", "diagnostics.tsv", "bench", "corpus", "prompts",
                                     "predictions", "summary.tsv", "breakdown.tsv", "release", "log.tsv")}
    dvmap("synth", "-o", f["survey.sav"], "--respondents-per-country", 60, "--countries", 5, "--seed", 3)
    dvmap("respondents", f["survey.sav"], "-o", f["respondents.parquet"], "--dropped-report", f["dropped.tsv"])
    dvmap("archetype-stats", f["respondents.parquet"], "-o", f["stats.parquet"])
    dvmap("archetypes", f["stats.parquet"], "--tau", "majority", "-o", f["archetypes.parquet"])
    dvmap("diagnostics", f["stats.parquet"], f["archetypes.parquet"], "--respondents", f["respondents.parquet"],
          "--tau", "majority", "-o", f["diagnostics.tsv"])
    dvmap("split", f["stats.parquet"], "--heldout-countries", "Mexico", "--heldout-questions", "Q47", "Q165",
          "-o", f["bench"])
    dvmap("corpus", f["archetypes.parquet"], "--benchmark-dir", f["bench"], "--heldout-questions", "Q47", "Q165",
          "--tau", "majority", "-o", f["corpus"])
    dvmap("prompts", f["corpus"] / "train.parquet", "--style", "direct", "-o", f["prompts"])
    dvmap("flip-items", f["bench"] / "cross_demographic.parquet", "-o", f["bench"] / "flip.parquet")
    dvmap("baseline", "--kind", "national_label", "--train", f["corpus"] / "train.parquet", "--eval",
          f["bench"] / "cross_demographic.parquet", f["bench"] / "flip.parquet", "-o", f["predictions"])
    dvmap("evaluate", f["predictions"] / "cross_demographic.parquet", "--bootstrap", 20, "-o", f["summary.tsv"],
          "--breakdown", f["breakdown.tsv"])
    dvmap("export-release", f["corpus"] / "train.parquet", "-o", f["release"] / "train.parquet")
    write_tsv(pd.DataFrame({"step": [1, 2], "reward_mean": [0.1, 0.3], "kl": [0.0, 0.01]}), f["log.tsv"])
    f["respondents.csv"] = d / "respondents.csv"
    pd.read_parquet(f["respondents.parquet"]).to_csv(f["respondents.csv"], index=False)

    bad = d / "bad"
    f["model"] = d / "empty-model"
    f["model"].mkdir()
    f["file"] = d / "plain.txt"
    f["file"].write_text("a file, not a folder\n")
    for name, table in {"respondents": f["respondents.parquet"], "stats": f["stats.parquet"],
                        "items": f["bench"] / "cross_value.parquet", "prompts": f["prompts"] / "train.parquet",
                        "predictions": f["predictions"] / "cross_demographic.parquet",
                        "release": f["release"] / "train.parquet"}.items():
        f[f"empty-{name}"] = bad / f"empty-{name}" / table.name
        write_parquet(pd.read_parquet(table).iloc[:0], f[f"empty-{name}"])
    for name in ("diagnostics.tsv", "summary.tsv", "breakdown.tsv", "log.tsv"):
        f[f"empty-{name}"] = bad / f"empty-{name}"
        write_tsv(read_tsv(f[name]).iloc[:0], f[f"empty-{name}"])
    predictions = pd.read_parquet(f["predictions"] / "cross_demographic.parquet")
    for column, value in (("prediction_index", 7), ("answer_index", -1)):
        f[f"bad-{column}"] = bad / f"bad-{column}.parquet"
        write_parquet(predictions.assign(**{column: predictions[column].where(predictions.index > 0, value)}),
                      f[f"bad-{column}"])
    f["release-items"] = bad / "release-items"
    write_parquet(pd.read_parquet(f["corpus"] / "train.parquet"), f["release-items"] / "train.parquet")
    f["release-empty"] = f["empty-release"].parent
    f["bench-wrong"] = bad / "bench-wrong"
    for name in ("assignment", "cross_demographic", "cross_country"):
        write_parquet(pd.read_parquet(f["bench"] / f"{name}.parquet"), f["bench-wrong"] / f"{name}.parquet")
    write_parquet(pd.read_parquet(f["stats.parquet"]), f["bench-wrong"] / "cross_value.parquet")
    f["twin"] = bad / "twin" / "cross_value.parquet"
    write_parquet(pd.read_parquet(f["bench"] / "cross_value.parquet"), f["twin"])
    return f


SPEC = json.dumps({"source": {"kind": "hf", "path": "unused"}})


def case(argv: str, *named: str, process: bool = False):
    """One bad invocation (a ``python -m dvmap`` process if ``process``); the error must contain each of ``named``.
    A row that argparse does not refuse yet: add ``marks=pytest.mark.xfail(strict=True, reason="argparse validation
    pending")``."""
    command, _, rest = argv.partition(" ")
    return pytest.param(argv, named, process, id=f"{command}: {rest}")


#: {name} is a fixture path, {out} the output folder that must stay absent.
CASES = [
    # survey
    case("synth -o {out}/s.sav --catalog {diagnostics.tsv}", "{diagnostics.tsv}", "not a question catalog"),
    case("synth -o {out}/s.sav --catalog {respondents.parquet}", "{respondents.parquet}"),
    case("synth -o {out}/s.sav --countries 0", "--countries"),
    case("synth -o {out}/s.sav --respondents-per-country 0", "--respondents-per-country"),
    case("respondents {stats.parquet} -o {out}/r.parquet --dropped-report {out}/d.tsv", "{stats.parquet}",
         "unsupported file type"),
    case("respondents {respondents.csv} -o {out}/r.parquet --dropped-report {out}/d.tsv", "{respondents.csv}",
         "attribute 'Country': none of its variables"),
    case("respondents {survey.sav} -o {out}/r.parquet --required-attributes Nonsense", "data.required_attributes"),
    case("respondents {survey.sav} -o {out}/r.parquet --absent-attribute Gender=sometimes", "--absent-attribute"),
    case("archetype-stats {stats.parquet} -o {out}/s.parquet", "{stats.parquet} is archetype statistics",
         "needs a respondents table (missing: respondent_id)", "dvmap respondents writes it"),
    case("archetype-stats {empty-respondents} -o {out}/s.parquet", "{empty-respondents}", "no row"),
    case("archetypes {respondents.parquet} --tau 0.0 -o {out}/a.parquet",
         "{respondents.parquet} is a respondents table; `dvmap archetypes` needs archetype statistics (missing: "
         "profile_id, question_id, n, counts, answer, answer_share, entropy); dvmap archetype-stats writes it",
         process=True),
    case("archetypes {empty-stats} --tau 0.0 -o {out}/a.parquet", "{empty-stats}", "no row"),
    case("archetypes {stats.parquet} --tau 0.0 --min-group-size -5 -o {out}/a.parquet", "--min-group-size"),
    case("archetypes {stats.parquet} --tau -1 -o {out}/a.parquet", "--tau"),
    case("archetypes {stats.parquet} --tau 0.0 -o {file}/a.parquet", "{file}/a.parquet: cannot write here"),
    case("archetypes {stats.parquet} --tau 0.0 -o {bench}", "{bench}: exists and is not a regular file"),
    case("archetypes {stats.parquet} --tau 0.0 -o /dev/null", "/dev/null: exists and is not a regular file"),
    case("diagnostics {respondents.parquet} {archetypes.parquet} --respondents {respondents.parquet} --tau 0 "
         "-o {out}/d.tsv --plot {out}/d.png", "{respondents.parquet} is a respondents table", "archetype-stats"),
    case("diagnostics {stats.parquet} {archetypes.parquet} --respondents {stats.parquet} --tau 0 -o {out}/d.tsv",
         "{stats.parquet} is archetype statistics", "missing: respondent_id"),
    case("diagnostics {stats.parquet} {archetypes.parquet} --respondents {respondents.parquet} --tau 0 "
         "--dropped {diagnostics.tsv} -o {out}/d.tsv --plot {out}/d.png", "{diagnostics.tsv} is filter diagnostics",
         "needs a dropped-respondents report"),
    case("diagnostics {empty-stats} {archetypes.parquet} --respondents {respondents.parquet} --tau 0 "
         "-o {out}/d.tsv", "{empty-stats}", "no row"),
    case("sweep {summary.tsv} --taus 0.0 -o {out}/s.tsv --plot {out}/s.png", "{summary.tsv} is an evaluation summary",
         "needs filter diagnostics"),
    case("sweep {diagnostics.tsv} {empty-diagnostics.tsv} --taus 0.0 1.0 -o {out}/s.tsv --plot {out}/s.png",
         "{empty-diagnostics.tsv}", "no row"),
    case("sweep {diagnostics.tsv} --taus 0.0 1.0 -o {out}/s.tsv", "--taus"),
    # corpus
    case("split {respondents.parquet} -o {out}", "{respondents.parquet} is a respondents table", "dvmap split"),
    case("split {empty-stats} --heldout-countries Mexico -o {out}", "{empty-stats}", "no row"),
    case("split {stats.parquet} --fractions 0.5 0.5 0.5 0.5 -o {out}", "--fractions"),
    case("split {stats.parquet} --benchmark-items cross_value=0 -o {out}", "--benchmark-items"),
    case("corpus {respondents.parquet} --benchmark-dir {bench} --tau 0 -o {out}", "{respondents.parquet}",
         "needs archetypes of one threshold"),
    case("corpus {archetypes.parquet} --benchmark-dir {bench-wrong} --tau 0 -o {out}",
         "{bench-wrong}/cross_value.parquet is archetype statistics", "needs an item table"),
    case("corpus {archetypes.parquet} --benchmark-dir {prompts} --tau 0 -o {out}",
         "{prompts}/assignment.parquet: cannot read parquet"),
    case("prompts {stats.parquet} --style direct -o {out}", "{stats.parquet}", "needs an item table"),
    case("prompts {bench}/cross_value.parquet {stats.parquet} --style direct -o {out} --verl-dir {out}/verl",
         "{stats.parquet}", "needs an item table"),
    case("prompts {bench}/cross_value.parquet {twin} --style direct -o {out}", "cross_value.parquet: written twice"),
    case("prompts {bench}/cross_value.parquet --style nonsense -o {out}", "--style"),
    case("import-release {release-items} --corpus-dir {out}/corpus",
         "{release-items}/train.parquet is an item table", "needs a part of DVMap's released corpus",
         process=True),
    case("import-release {release-empty} --corpus-dir {out}/corpus", "{release-empty}/train.parquet", "no row"),
    case("import-release {release} --corpus-dir {out}/c --require train dev", "{release}: the release lacks ['dev']"),
    case("export-release {stats.parquet} -o {out}/t.parquet", "{stats.parquet}", "needs an item table"),
    case("export-release {corpus}/train.parquet --dvmap-verl -o {out}/t.parquet", "{corpus}/train.parquet",
         "needs a prompt corpus (missing: prompt, style)"),
    case("export-release {empty-items} -o {out}/t.parquet", "{empty-items}", "no row"),
    # evaluation
    case("baseline --kind national_label --train {stats.parquet} --eval {bench}/cross_value.parquet -o {out}",
         "{stats.parquet}", "needs an item table"),
    case("baseline --kind national_label --train {corpus}/train.parquet --eval {bench}/cross_value.parquet "
         "{predictions}/cross_demographic.parquet -o {out}", "{predictions}/cross_demographic.parquet is a "
         "prediction table"),
    case("baseline --kind national_label --train {corpus}/train.parquet --eval {empty-items} -o {out}",
         "{empty-items}", "no row"),
    case("baseline --kind knn --k 0 --train {corpus}/train.parquet --eval {bench}/cross_value.parquet -o {out}",
         "--k"),
    case("evaluate {bench}/cross_value.parquet -o {out}/s.tsv --breakdown {out}/b.tsv", "{bench}/cross_value.parquet",
         "needs a prediction table (missing: predictor"),
    case("evaluate {empty-predictions} -o {out}/s.tsv", "{empty-predictions}", "no row"),
    case("evaluate {bad-prediction_index} -o {out}/s.tsv --breakdown {out}/b.tsv", "{bad-prediction_index}: row 0",
         "prediction_index 7 is not an index of its", process=True),
    case("evaluate {bad-answer_index} -o {out}/s.tsv", "{bad-answer_index}: row 0", "answer_index -1"),
    case("evaluate {predictions}/cross_demographic.parquet --reference {stats.parquet} -o {out}/s.tsv",
         "{stats.parquet}", "needs a prediction table"),
    case("evaluate {predictions}/cross_demographic.parquet --bootstrap 0 -o {out}/s.tsv", "--bootstrap"),
    case("summary {breakdown.tsv} -o {out}/s.tsv", "{breakdown.tsv} is an evaluation breakdown",
         "needs an evaluation summary"),
    case("summary {empty-summary.tsv} -o {out}/s.tsv", "{empty-summary.tsv}", "no row"),
    case("summary {summary.tsv} --breakdowns {summary.tsv} --breakdown-output {out}/b.tsv -o {out}/s.tsv",
         "{summary.tsv} is an evaluation summary", "needs an evaluation breakdown"),
    case("summary {summary.tsv} --breakdowns {breakdown.tsv} -o {out}/s.tsv", "--breakdown-output"),
    case("evaluation-plots {breakdown.tsv} --thresholds 0.0 --accuracy {out}/a.png", "{breakdown.tsv}",
         "needs an evaluation summary"),
    case("evaluation-plots {empty-summary.tsv} --thresholds 0.0 --accuracy {out}/a.png", "{empty-summary.tsv}",
         "no row"),
    case("evaluation-plots {summary.tsv} --breakdown {summary.tsv} --thresholds 0.0 --accuracy {out}/a.png "
         "--per-country {out}/c.png", "{summary.tsv} is an evaluation summary", "needs an evaluation breakdown"),
    case("evaluation-plots {summary.tsv} --thresholds 0.0 --accuracy {out}/a.png --per-country {out}/c.png",
         "--per-country needs --breakdown"),
    case("evaluation-plots {summary.tsv} --thresholds 0.0 --baselines nonsense --accuracy {out}/a.png",
         "--baselines"),
    case("flip-items {stats.parquet} -o {out}/f.parquet", "{stats.parquet}", "needs an item table"),
    case("flip-items {empty-items} -o {out}/f.parquet", "{empty-items}", "no row"),
    case("flip-items {bench}/cross_value.parquet --attribute Nonsense -o {out}/f.parquet",
         "evaluation.flip.attribute"),
    case("question-distances --train {stats.parquet} --heldout {bench}/cross_value.parquet --breakdown "
         "{breakdown.tsv} --model-dir {bench} -o {out}/d.tsv --correlations {out}/c.tsv", "{stats.parquet}",
         "needs an item table"),
    case("question-distances --train {corpus}/train.parquet --heldout {bench}/cross_value.parquet --breakdown "
         "{summary.tsv} --model-dir {bench} -o {out}/d.tsv --correlations {out}/c.tsv", "{summary.tsv}",
         "needs an evaluation breakdown"),
    case("question-distances --train {corpus}/train.parquet --heldout {bench}/cross_value.parquet --breakdown "
         "{breakdown.tsv} --model-dir {bench} -o {out}/d.tsv --correlations {out}/c.tsv", "{bench}",
         "not a loadable model directory"),
    case("flip-rates --original {predictions}/cross_demographic.parquet --flipped {predictions}/flip.parquet "
         "--flipped-items {bench}/cross_demographic.parquet -o {out}/r.tsv --plot {out}/r.png",
         "{bench}/cross_demographic.parquet is an item table", "needs flipped items (missing: source_item_id)"),
    case("flip-rates --original {bench}/cross_demographic.parquet --flipped {predictions}/flip.parquet "
         "--flipped-items {bench}/flip.parquet -o {out}/r.tsv", "{bench}/cross_demographic.parquet",
         "needs a prediction table"),
    case("flip-rates --original {predictions}/cross_demographic.parquet --flipped {empty-predictions} "
         "--flipped-items {bench}/flip.parquet -o {out}/r.tsv", "{empty-predictions}", "no row"),
    # inference
    case("convert-gguf {stats.parquet} -o {out}/model", "{stats.parquet}", "cannot load as GGUF"),
    case("convert-gguf {out}/absent.gguf -o {out}/model", "absent.gguf: GGUF file not found"),
    case("predict {stats.parquet} --model m --model-spec " + shlex.quote(SPEC) + " --model-path {model} -o {out}",
         "{stats.parquet}", "needs an item table"),
    case("predict {empty-items} --model m --model-spec " + shlex.quote(SPEC) + " --model-path {model} -o {out}",
         "{empty-items}", "no row"),
    case("predict {bench}/cross_value.parquet --model m --model-spec " + shlex.quote(SPEC)
         + " --model-path {model} -o {out}", "{model}: not a model directory", process=True),
    case("predict {bench}/cross_value.parquet --model m --model-spec '{bad' -o {out}", "--model-spec"),
    case("predict {bench}/cross_value.parquet --model m --model-spec " + shlex.quote(SPEC)
         + " --chunk-size 0 -o {out}", "--chunk-size"),
    # training
    case("sft {corpus}/train.parquet --model-path {model} -o {out}/m", "{corpus}/train.parquet is an item table",
         "`dvmap sft` needs a prompt corpus (missing: prompt, style)", "dvmap prompts writes it"),
    case("sft {empty-prompts} --model-path {model} -o {out}/m", "{empty-prompts}", "no row"),
    case("sft {prompts}/train.parquet --model-path {model} -o {out}/m", "{model}: not a model directory"),
    case("sft {prompts}/train.parquet --model-path {model} --training '{bad' -o {out}/m", "--training"),
    case("sft {prompts}/train.parquet --model-path {model} -o {file}/m", "{file}/m: cannot write here"),
    case("train {prompts}/train.parquet --model-path {model} --log {file}/l.tsv -o {out}/m",
         "{file}/l.tsv: cannot write here"),
    case("train {corpus}/train.parquet --model-path {model} --log {out}/log.tsv -o {out}/m",
         "{corpus}/train.parquet is an item table", "`dvmap train` needs a prompt corpus"),
    case("train {prompts}/train.parquet --dev {stats.parquet} --model-path {model} --log {out}/log.tsv -o {out}/m",
         "{stats.parquet} is archetype statistics", "needs a prompt corpus"),
    case("train {prompts}/train.parquet --model-path {model} --chat-template '[1]' --log {out}/l.tsv -o {out}/m",
         "--chat-template"),
    case("train {prompts}/train.parquet --model-path {model} --reward nonsense --log {out}/l.tsv -o {out}/m",
         "--reward"),
    case("training-curves {summary.tsv} --labels a -o {out}/c.png", "{summary.tsv} is an evaluation summary",
         "needs a GRPO train log (missing: step, reward_mean)"),
    case("training-curves {log.tsv} {empty-log.tsv} --labels a b -o {out}/c.png", "{empty-log.tsv}", "no row"),
    case("training-curves {log.tsv} --labels a b -o {out}/c.png", "--labels"),
    case("learning-table {log.tsv} --models {file} --runs a -o {out}/l.tsv", "{log.tsv} is a GRPO train log",
         "needs an evaluation summary"),
    case("learning-table {summary.tsv} --models {file} {file} --runs a -o {out}/l.tsv", "--runs"),
    case("learning-table {summary.tsv} --models {file} --runs a --bootstrap 1 -o {out}/l.tsv", "--bootstrap"),
]


def fill(text: str, paths: dict[str, str]) -> str:
    """``text`` with each {name} of a fixture path replaced by the path."""
    return re.sub(r"\{([\w.-]+)\}", lambda m: paths.get(m.group(1), m.group(0)), text)


def run(argv: list[str], process: bool, capsys) -> tuple[int, str]:
    """Exit status and stderr of ``dvmap ARGV``: a ``python -m dvmap`` process, or :func:`dvmap.cli.main`."""
    if process:
        proc = subprocess.run([sys.executable, "-m", "dvmap", *argv], capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, **OFFLINE}, timeout=600)
        return proc.returncode, proc.stderr
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, named, process", CASES)
def test_bad_input_is_a_named_error_and_writes_nothing(argv, named, process, files, tmp_path, capsys):
    paths = {name: str(path) for name, path in files.items()} | {"out": str(tmp_path / "out")}
    args = shlex.split(fill(argv, paths))
    code, err = run(args, process, capsys)
    assert code == 2, err
    assert f"dvmap {args[0]}: error:" in err, err
    for text in named:
        assert fill(text, paths) in err, err
    assert "Traceback" not in err, err
    assert not (tmp_path / "out").exists(), list((tmp_path / "out").rglob("*"))


def test_every_subcommand_has_bad_input_cases():
    commands = set(next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)
    covered = {p.values[0].split()[0] for p in CASES}
    assert commands == covered, commands ^ covered
    for command in commands:  # a wrong or empty table, and an invalid argument or another input
        assert sum(p.values[0].split()[0] == command for p in CASES) >= 2, command


def test_an_empty_corpus_split_gives_empty_prompt_corpora(files, tmp_path):
    """dev or test of a strict threshold may be empty: prompts writes empty corpora in every layout."""
    out = [tmp_path / name for name in ("trl", "verl", "dvmap_verl")]
    dvmap("prompts", files["empty-items"], "--style", "direct", "-o", out[0], "--verl-dir", out[1],
          "--dvmap-verl-dir", out[2])
    assert [len(pd.read_parquet(folder / files["empty-items"].name)) for folder in out] == [0, 0, 0]


# --------------------------------------------------------------------------------------------------------------
# atomic outputs
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["folder", "device", "link to a folder"])
def test_atomic_path_refuses_a_target_that_is_not_a_regular_file(kind, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    target = {"folder": folder, "device": Path(os.devnull), "link to a folder": tmp_path / "link"}[kind]
    if kind == "link to a folder":
        target.symlink_to(folder)
    with pytest.raises(DvmapError, match=f"{target}: exists and is not a regular file"):
        with atomic_path(target) as tmp:
            tmp.write_text("x")
    assert folder.is_dir() and not any(folder.iterdir())
    assert not list(tmp_path.glob(".*")), "no temp file left"


def test_output_under_a_regular_file_is_a_named_error(tmp_path, capsys):
    plain = tmp_path / "out.txt"
    plain.write_text("x")
    with pytest.raises(DvmapError, match=f"{plain / 'x.parquet'}: cannot write here"):
        write_parquet(pd.DataFrame({"a": [1]}), plain / "x.parquet")
    assert main(["synth", "--countries", "1", "--respondents-per-country", "5", "-o", str(plain / "s.sav")]) == 2
    assert f"{plain / 's.sav'}: cannot write here" in capsys.readouterr().err
    assert plain.read_text() == "x"


def test_atomic_outputs_rename_all_or_none(tmp_path):
    frame = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(RuntimeError):
        with atomic_outputs() as out:
            out.parquet(frame, tmp_path / "new" / "deeper" / "a.parquet")
            out.tsv(frame, tmp_path / "b.tsv")
            assert not (tmp_path / "b.tsv").exists(), "renamed only at the end"
            raise RuntimeError("a later output fails")
    assert list(tmp_path.iterdir()) == [], "no file, no temp file and no folder made for the outputs"
    with atomic_outputs() as out:
        out.parquet(frame, tmp_path / "new" / "a.parquet")
        out.tsv(frame, tmp_path / "b.tsv")
    assert pd.read_parquet(tmp_path / "new" / "a.parquet").equals(frame) and read_tsv(tmp_path / "b.tsv").equals(frame)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.parquet", "b.tsv", "new"]


# --------------------------------------------------------------------------------------------------------------
# predict: reruns skip complete files without loading the model
# --------------------------------------------------------------------------------------------------------------

class FixedBackend:
    """Answers every item the same."""

    closed = False

    def generate(self, conversations):
        return [["<answer>?</answer>"] for _ in conversations]

    def close(self):
        self.closed = True


def test_predict_rerun_skips_complete_files_and_never_loads_the_model(files, tmp_path, monkeypatch):
    import dvmap.inference.backends

    loads = []

    def load(spec, path, **kwargs):
        loads.append(FixedBackend())
        return loads[-1]

    monkeypatch.setattr(dvmap.inference.backends, "load_backend", load)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    out = tmp_path / "out"
    inputs = [files["bench"] / "cross_value.parquet", files["bench"] / "cross_country.parquet"]
    argv = ["-q", "predict", *map(str, inputs), "--model", "m", "--model-spec", SPEC, "--model-path", str(model),
            "--max-items", "6", "--chunk-size", "4", "-o", str(out)]
    assert main(argv) == 0
    assert len(loads) == 1 and loads[0].closed, "the command closes the backend it loaded"
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(written) == ["cross_country.parquet", "cross_value.parquet"]

    assert main(argv) == 0
    assert len(loads) == 1, "nothing left to do: the model is not loaded"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == written

    assert main([*argv, "--label", "other"]) == 0  # other settings: predicted again
    assert len(loads) == 2
    (model / "config.json").write_text('{"retrained": true}')  # another model at the same path
    assert main([*argv, "--label", "other"]) == 0
    assert len(loads) == 3
    assert not list(out.glob("*.parts"))


def test_predict_failed_model_load_leaves_no_parts(files, tmp_path, monkeypatch, capsys):
    import dvmap.inference.backends

    def fail(*args, **kwargs):
        raise DvmapError("the model cannot be loaded")

    monkeypatch.setattr(dvmap.inference.backends, "load_backend", fail)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    out = tmp_path / "out"
    assert main(["predict", str(files["bench"] / "cross_value.parquet"), "--model", "m", "--model-spec", SPEC,
                 "--model-path", str(model), "-o", str(out)]) == 2
    assert "the model cannot be loaded" in capsys.readouterr().err
    assert not out.exists()

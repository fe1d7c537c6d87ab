"""The command line, the config schema and the package's constants say the same thing.

- every enum of the schema is the package's constant (styles, rewards, baselines, protocols, tie policies, bootstrap
  units, absent-attribute/question policies, backends, source kinds, flip splits);
- every ``dvmap`` option documented with ``(config: KEY)`` in its help defaults to config.yaml's value for KEY (and
  the schema's default for KEY is that value too), offers the schema's enum as ``choices``, and refuses what the
  schema refuses (below a minimum, above a maximum) with exit status 2, naming the option and KEY;
- a few refusals the schema states in words: fractions summing to 1, flip values that occur in the items,
  generation settings in a --model-spec.
"""

from __future__ import annotations

import argparse
import json
import re

import pytest
import yaml

from dvmap.cli import build_parser, main
from dvmap.schema import BENCHMARK_SPLITS, PARTITIONS

from .conftest import REPO

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
MISSING = object()


def schema_node(key: str) -> dict:
    """The schema of a dotted config key; ``NAME`` stands for any models entry."""
    node = SCHEMA
    for part in key.split("."):
        node = node["additionalProperties"] if part == "NAME" else node["properties"][part]
    return node


def config_value(key: str):
    value = CONFIG
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def enum_of(node: dict) -> tuple | None:
    """The enum of a key: its own, its items', or the one alternative of a oneOf that is an enum."""
    for candidate in (node, node.get("items", {}), *node.get("oneOf", [])):
        if "enum" in candidate:
            return tuple(candidate["enum"])
    return None


def bounds_of(node: dict) -> tuple[int | None, int | None]:
    """(minimum, maximum) of an integer key, of its items, or of its integer alternative."""
    for candidate in (node, node.get("items", {}), *node.get("oneOf", [])):
        if candidate.get("type") == "integer" and ("minimum" in candidate or "maximum" in candidate):
            return candidate.get("minimum"), candidate.get("maximum")
    return None, None


# ------------------------------------------------------------------------------------------------- enums = constants


def _constants():
    from dvmap.answers import PROTOCOLS
    from dvmap.corpus.items import TIE_POLICIES
    from dvmap.corpus.prompts import STYLES
    from dvmap.evaluation.baselines import KINDS
    from dvmap.evaluation.metrics import UNITS
    from dvmap.inference.models import BACKENDS, SOURCE_KINDS
    from dvmap.survey.respondents import ATTRIBUTE_POLICIES, QUESTION_POLICIES
    from dvmap.survey.synth import SCALES
    from dvmap.training.rewards import REWARDS

    return {
        "prompts.styles": STYLES, "inference.styles": STYLES, "training.styles": STYLES,
        "training.rewards": REWARDS, "evaluation.baselines": KINDS, "evaluation.protocol": PROTOCOLS,
        "splits.ties": TIE_POLICIES, "evaluation.bootstrap_unit": UNITS,
        "data.absent_attributes": ATTRIBUTE_POLICIES, "data.absent_questions": QUESTION_POLICIES,
        "models.NAME.backend": BACKENDS, "models.NAME.source.kind": SOURCE_KINDS,
        "evaluation.flip.split": BENCHMARK_SPLITS, "synth.scale": SCALES,
    }


@pytest.mark.parametrize("key", list(_constants()))
def test_schema_enum_is_the_package_constant(key):
    assert enum_of(schema_node(key)) == tuple(_constants()[key])


def test_per_attribute_policies_are_the_same_enum():
    from dvmap.survey.respondents import ATTRIBUTE_POLICIES

    per_attribute = schema_node("data.absent_attributes")["oneOf"][1]["additionalProperties"]["enum"]
    assert tuple(per_attribute) == ATTRIBUTE_POLICIES


def test_every_baseline_kind_is_in_the_registry():
    from dvmap.evaluation.baselines import KINDS, make_baseline

    for kind in KINDS:
        make_baseline(kind)


def test_generation_minimums_are_the_schema_minimums():
    from dvmap.inference.models import ENTRY_MINIMUMS, GENERATION_MINIMUMS

    generation = schema_node("models.NAME.generation")["properties"]
    assert {k: generation[k]["minimum"] for k in GENERATION_MINIMUMS} == GENERATION_MINIMUMS
    assert {k: schema_node(f"models.NAME.{k}")["minimum"] for k in ENTRY_MINIMUMS} == ENTRY_MINIMUMS


def test_bootstrap_minimum_is_one_rule():
    from dvmap.arguments import MIN_BOOTSTRAP

    assert schema_node("evaluation.bootstrap")["minimum"] == MIN_BOOTSTRAP


# ----------------------------------------------------------------------------------- options that mirror a config key

CONFIG_KEY = re.compile(r"\(config: ([A-Za-z_][\w.]*)")


def mirrored_options() -> list[tuple[str, argparse.ArgumentParser, argparse.Action, str]]:
    """(command, its parser, option, config key) for every option whose help says ``(config: KEY)``."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for command, parser in sub.choices.items():
        for action in parser._actions:
            match = CONFIG_KEY.search(action.help or "")
            if match:
                found.append((command, parser, action, match.group(1)))
    return found


OPTIONS = mirrored_options()


def option_id(option) -> str:
    command, _, action, key = option
    return f"{command} {action.option_strings[-1] if action.option_strings else action.dest} ({key})"


def test_options_are_found():
    keys = {key for *_, key in OPTIONS}
    assert len(OPTIONS) >= 35
    assert {"evaluation.knn_k", "evaluation.bootstrap", "archetypes.min_group_size", "inference.chunk_size",
            "inference.max_items_per_split", "synth.respondents_per_country", "synth.n_countries",
            "splits.fractions", "splits.benchmark_items", "evaluation.flip.values", "training.rewards"} <= keys


def expected_default(action: argparse.Action, key: str):
    """config.yaml's value for KEY as the option would hold it."""
    value = config_value(key)
    if "NAME" in key:  # a per-model key: the schema's default stands for every model
        value = schema_node(key).get("default", MISSING)
    if value is MISSING:
        return MISSING
    if isinstance(value, list) and action.nargs is None:  # a list key whose option takes one of its values
        return value[0]
    if isinstance(value, dict) and action.nargs == len(PARTITIONS):  # splits.fractions
        return [value[p] for p in PARTITIONS]
    if isinstance(value, dict) and action.nargs == "*":  # splits.benchmark_items: SPLIT=N for every non-null N
        return [f"{name}={n}" for name, n in value.items() if n is not None]
    return value


def held_default(action: argparse.Action, key: str):
    default = action.default
    if isinstance(default, str) and isinstance(config_value(key) if "NAME" not in key else
                                               schema_node(key).get("default"), dict):
        return json.loads(default)  # a JSON option
    if action.nargs == "*" and default is None:
        return []
    return list(default) if isinstance(default, tuple) else default


@pytest.mark.parametrize("option", [o for o in OPTIONS if not o[2].required and o[2].option_strings],
                         ids=option_id)
def test_option_default_is_the_config_default(option):
    command, _, action, key = option
    if key == "training":  # the whole section as JSON: {} must mean config.yaml's training settings
        from dvmap.training.rewards import REWARDS
        from dvmap.training.spec import train_spec

        for reward in REWARDS:
            assert train_spec(json.loads(action.default), reward) == train_spec(CONFIG["training"], reward), reward
        return
    expected = expected_default(action, key)
    assert expected is not MISSING, f"{key} is neither in config.yaml nor has a schema default"
    assert held_default(action, key) == expected


@pytest.mark.parametrize("option", OPTIONS, ids=option_id)
def test_schema_default_is_config_yaml(option):
    *_, key = option
    node = schema_node(key)
    if node.get("default") == {} and "properties" in node:  # a section: its keys' own defaults fill it
        return
    if "default" in node and "NAME" not in key:
        assert node["default"] == config_value(key), f"{key}: the schema's default is not config.yaml's value"


@pytest.mark.parametrize("option", [o for o in OPTIONS if enum_of(schema_node(o[3]))], ids=option_id)
def test_option_choices_are_the_schema_enum(option):
    *_, action, key = option
    assert action.choices is not None and tuple(action.choices) == enum_of(schema_node(key))


def minimal_argv(command: str, parser: argparse.ArgumentParser, skip: argparse.Action) -> list[str]:
    """``command`` with a placeholder for each required argument (other than ``skip``) that its type accepts."""
    argv = [command]
    for action in parser._actions:
        if action is skip or not (action.required or not action.option_strings) or action.dest == "help":
            continue
        value = action.choices[0] if action.choices else next(
            v for v in ("0.0", "x", "{}") if _accepts(action, v))
        count = action.nargs if isinstance(action.nargs, int) else 1
        argv += [*action.option_strings[-1:], *[str(value)] * count]
    return argv


def _accepts(action, text) -> bool:
    try:
        (action.type or str)(text)
    except (argparse.ArgumentTypeError, ValueError):
        return False
    return True


BOUNDED = [o for o in OPTIONS if o[2].option_strings and any(b is not None for b in bounds_of(schema_node(o[3])))]


def test_bounded_options_are_found():
    keys = {key for *_, key in BOUNDED}
    assert {"evaluation.knn_k", "evaluation.bootstrap", "archetypes.min_group_size", "inference.chunk_size",
            "inference.max_items_per_split", "synth.respondents_per_country", "synth.n_countries",
            "evaluation.seeds"} <= keys


@pytest.mark.parametrize("option", BOUNDED, ids=option_id)
def test_option_refuses_what_the_schema_refuses(option, capsys):
    command, parser, action, key = option
    minimum, maximum = bounds_of(schema_node(key))
    flag = action.option_strings[-1]
    base = minimal_argv(command, parser, action)
    for bad in ([minimum - 1] if minimum is not None else []) + ([maximum + 1] if maximum is not None else []):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*base, flag, str(bad)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2
        assert flag in err and key in err, err
    for good in (minimum, maximum):
        if good is not None:
            assert getattr(build_parser().parse_args([*base, flag, str(good)]), action.dest) == good


# --------------------------------------------------------------------------------------------- refusals in words


def refused(argv, capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("fractions", [["0.5", "0.5", "0.5", "0"], ["0.7", "0.1", "0.1", "0"],
                                       ["-0.1", "0.9", "0.1", "0.1"], ["nan", "0.5", "0.5", "0"]])
def test_fractions_must_be_non_negative_and_sum_to_one(fractions, capsys):
    err = refused(["split", "stats.parquet", "-o", "out", "--fractions", *fractions], capsys)
    assert "--fractions" in err and "splits.fractions" in err


def test_fractions_summing_to_one_pass():
    args = build_parser().parse_args(["split", "s", "-o", "o", "--fractions", "0.6", "0.1", "0.1", "0.2"])
    assert args.fractions == [0.6, 0.1, 0.1, 0.2]


@pytest.mark.parametrize("spec", ["cross_value=0", "cross_value=-3", "cross_value=many", "train=5", "cross_value"])
def test_benchmark_items_must_name_a_split_and_a_count(spec, capsys):
    err = refused(["split", "s", "-o", "o", "--benchmark-items", spec], capsys)
    assert "--benchmark-items" in err and "splits.benchmark_items" in err


def test_absent_attribute_policy_is_checked(capsys):
    err = refused(["respondents", "in.sav", "-o", "o", "--absent-attribute", "Gender=maybe"], capsys)
    assert "--absent-attribute" in err and "data.absent_attributes" in err


@pytest.mark.parametrize("tau", ["-1", "strict", "inf"])
def test_threshold_options_refuse_what_the_schema_refuses(tau, capsys):
    err = refused(["archetypes", "s", "--tau", tau, "-o", "o"], capsys)
    assert "--tau" in err and "archetypes.thresholds" in err
    err = refused(["split", "s", "-o", "o", "--benchmark-tau", tau], capsys)
    assert "--benchmark-tau" in err and "splits.benchmark_tau" in err


def test_max_items_all_is_null():
    args = build_parser().parse_args(["predict", "i", "--model", "m", "-o", "o", "--max-items", "all"])
    assert args.max_items is None
    assert build_parser().parse_args(["predict", "i", "--model", "m", "-o", "o"]).max_items == 16


@pytest.mark.parametrize("option, value", [("--model-spec", "[1]"), ("--model-spec", "{bad json")])
def test_json_options_must_be_objects(option, value, capsys):
    err = refused(["predict", "i", "--model", "m", "-o", "o", option, value], capsys)
    assert option in err


@pytest.mark.parametrize("generation, key", [
    ({"max_new_tokens": 0}, "max_new_tokens"), ({"samples": 0}, "samples"), ({"batch_size": 0}, "batch_size"),
    ({"temperature": -0.5}, "temperature"), ({"max_new_tokens": "many"}, "max_new_tokens"),
    ({"max_new_tokens": 2.5}, "max_new_tokens"),
])
def test_model_spec_generation_is_checked(tmp_path, capsys, generation, key):
    entry = {"source": {"kind": "hf", "path": str(tmp_path)}, "generation": generation}
    capsys.readouterr()
    rc = main(["-q", "predict", str(tmp_path / "items.parquet"), "--model", "tiny", "--model-spec", json.dumps(entry),
               "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and f"models.tiny.generation.{key}" in err, err
    assert not (tmp_path / "out").exists()


def test_registry_entry_bounds_are_checked():
    from dvmap.errors import DvmapError
    from dvmap.inference.models import model_spec

    for key, value in (("concurrency", 0), ("max_retries", -1), ("gpus", -1)):
        with pytest.raises(DvmapError, match=rf"models\.m\.{key} must be >= "):
            model_spec("m", {"source": {"kind": "gguf", "path": "x.gguf"}, key: value})


def test_flip_values_must_occur_in_the_items(tmp_path, capsys):
    """`--values "Low income" Rich` used to invent the value Rich for every Low income item."""
    from dvmap.io import write_parquet

    from .items_factory import make_items

    options = ["Agree", "Disagree"]
    items = make_items([{"question_id": "q1", "options": options, "Income Bracket": income}
                        for income in ("Low income", "High income", "Middle income")], "cross_demographic")
    path = tmp_path / "items.parquet"
    write_parquet(items, path)
    out = tmp_path / "flip.parquet"
    capsys.readouterr()
    assert main(["-q", "flip-items", str(path), "--values", "Low income", "Rich", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "evaluation.flip.values" in err and "Rich" in err and not out.exists()
    assert main(["-q", "flip-items", str(path), "--values", "Low income", "Low income", "-o", str(out)]) == 2
    assert "evaluation.flip.values" in capsys.readouterr().err
    assert main(["-q", "flip-items", str(path), "--values", "Low income", "High income", "-o", str(out)]) == 0

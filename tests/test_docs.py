"""Every config key is documented in the README, and the shipped config.yaml is valid."""

from __future__ import annotations

import jsonschema
import yaml

from .conftest import REPO


def schema_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if sub.get("type") == "object" and "properties" in sub and name != "fractions":
            keys += schema_keys(sub, path + ".")
        else:
            keys.append(path)
    return keys


def test_every_config_key_is_documented():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    readme = (REPO / "README.md").read_text()
    keys = schema_keys(schema)
    assert len(keys) > 15
    undocumented = [k for k in keys if f"`{k}`" not in readme]
    assert not undocumented


def test_default_config_is_valid_and_complete():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    jsonschema.validate(config, schema)
    assert sorted(schema_keys(schema)) == sorted(config_keys(config))


def config_keys(config: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, value in config.items():
        if isinstance(value, dict) and name not in ("fractions", "models", "grpo"):  # maps of free keys are leaves
            keys += config_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys

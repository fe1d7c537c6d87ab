"""The release recipes (config/recipes/release_*.yaml): each validates over config.yaml and gives TRL the values of
DVMap's released training script it names, the release's evaluation protocol, countries and benchmark sizes."""

from __future__ import annotations

import pytest
import yaml

from .conftest import REPO

#: (recipe, model key, prompts per rollout batch, GPUs) from the release's verl/examples/grpo_trainer/*.sh.
RELEASE_SCRIPTS = [
    ("release_qwen3_0.6b.yaml", "qwen3_0_6b", 64, 1),
    ("release_qwen3_1.7b.yaml", "qwen3_1_7b", 64, 1),
    ("release_qwen3_4b.yaml", "qwen3_4b", 64, 1),
    ("release_qwen3_8b.yaml", "qwen3_8b", 128, 2),
    ("release_llama3.2_3b.yaml", "llama3_2_3b", 64, 1),
]
RELEASE_COUNTRIES = {"Brazil", "Canada", "China", "Egypt", "Germany", "India", "Japan", "Russian Federation",
                     "United Kingdom of Great Britain and Northern Ireland", "United States of America"}


def layered(*recipes: str) -> dict:
    """config.yaml with the recipes layered over it in order, validated against the schema."""
    from snakemake.utils import update_config, validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for recipe in recipes:
        update_config(config, yaml.safe_load((REPO / "config" / "recipes" / recipe).read_text()))
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


@pytest.mark.parametrize("recipe, model, prompts, gpus", RELEASE_SCRIPTS)
def test_release_recipe(recipe, model, prompts, gpus, tmp_path):
    from dvmap.training.spec import grpo_config, train_spec

    config = layered(recipe)
    training = config["training"]
    assert training["models"] == [model] and config["inference"]["models"] == [model]
    assert training["rewards"] == ["wvs"] and training["styles"] == ["structured_cot"]
    assert training["gpus"] == gpus
    assert config["evaluation"]["protocol"] == "strict"
    generation = config["models"][model]["generation"]
    assert generation["temperature"] == 0.7 and generation["max_new_tokens"] == 1024
    assert set(config["splits"]["corpus_countries"]) == RELEASE_COUNTRIES
    assert config["splits"]["benchmark_items"] == {"cross_demographic": 6240, "cross_country": 7973,
                                                   "cross_value": 7340}
    thinking = config["models"][model]["chat_template"]
    assert thinking == ({"enable_thinking": False} if model.startswith("qwen3") else {})

    spec = train_spec(training, "wvs", 0, thinking)
    args = grpo_config(spec, str(tmp_path / "work"))  # TRL accepts every key (one process here)
    assert args.learning_rate == 1e-6 and args.beta == 0.001 and args.num_generations == 8
    assert args.num_train_epochs == 1 and args.max_steps == -1 and args.max_completion_length == 1024
    per_update = args.per_device_train_batch_size * gpus * args.gradient_accumulation_steps
    assert per_update == 64 * 8  # ppo_mini_batch_size 64 prompts x rollout.n 8
    assert args.generation_batch_size * gpus == prompts * 8  # data.train_batch_size prompts per rollout batch

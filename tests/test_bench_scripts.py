"""The benchmark scripts' own inputs stay readable by the commands they time (they are not run in CI otherwise)."""

import importlib.util
from pathlib import Path

from dvmap.schema import PROMPTS, read_checked

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_grpo_corpus_is_a_prompt_corpus(tmp_path):
    """bench_grpo's corpus passes `dvmap train`'s check and varies the profile and the answer."""
    bench = load_script("bench_grpo")
    table = read_checked(bench.corpus(tmp_path / "corpus.parquet", 12), PROMPTS, "train")
    assert len(table) == 12 and table["style"].eq("direct").all()
    assert table["Country"].nunique() == len(bench.COUNTRIES) and table["answer_index"].nunique() == 4
    assert "Germany" in table["prompt"].iloc[0][1]["content"]

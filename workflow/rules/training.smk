# GRPO training (TRL) per base model, threshold, prompt style, reward and seed; optional SFT warm-up.
# `accelerate launch` runs one process per GPU of the rule's `gpu` resource (one process on CPU).
# Mixed precision follows training.bf16, whatever the accelerate config says (DeepSpeed refuses a mismatch).
ACCELERATE = (
    "accelerate launch --config_file {params.accelerate:q} --num_machines 1"
    f" --mixed_precision {'bf16' if TRAINING['bf16'] else 'no'}"
    " --num_processes $(( {resources.gpu} > 0 ? {resources.gpu} : 1 )) -m dvmap"
)
SFT = " ".join(
    [
        ACCELERATE,
        "sft {input.corpus} --model-path {input.model:q} --training {params.training:q}",
        "--chat-template {params.chat:q} --seed {wildcards.seed} -o {output} 2> {log}",
    ]
)
TRAIN = " ".join(
    [
        ACCELERATE,
        "train {input.corpus} --dev {input.dev} --model-path {input.model:q} --reward {wildcards.reward}",
        "--training {params.training:q} --chat-template {params.chat:q} --seed {wildcards.seed}",
        "--log {output.log} -o {output.model} 2> {log}",
    ]
)


rule sft:
    input:
        corpus="results/prompts/tau~{tau}/{style}/train.parquet",
        model=model_dir,
    output:
        directory("results/checkpoints/{model}/tau~{tau}/{style}/sft/seed~{seed}"),
    params:
        training=training_json,
        chat=chat_template_json,
        accelerate=accelerate_config(),
    threads: TRAINING["threads"]
    resources:
        gpu=TRAINING["gpus"],
    benchmark:
        "benchmarks/sft/{model}/tau~{tau}/{style}/seed~{seed}.tsv"
    log:
        "logs/sft/{model}/tau~{tau}/{style}/seed~{seed}.log",
    conda:
        "../../envs/train.yaml"
    shell:
        SFT


rule train:
    input:
        corpus="results/prompts/tau~{tau}/{style}/train.parquet",
        dev="results/prompts/tau~{tau}/{style}/dev.parquet",
        model=grpo_start,
    output:
        model=directory(CHECKPOINT),
        log=TRAIN_LOG,
    params:
        training=training_json,
        chat=chat_template_json,
        accelerate=accelerate_config(),
    threads: TRAINING["threads"]
    resources:
        gpu=TRAINING["gpus"],
    benchmark:
        "benchmarks/train/{model}/tau~{tau}/{style}/{reward}/seed~{seed}.tsv"
    log:
        "logs/train/{model}/tau~{tau}/{style}/{reward}/seed~{seed}.log",
    conda:
        "../../envs/train.yaml"
    shell:
        TRAIN


rule training_curves:
    input:
        [TRAIN_LOG.format(**run) for run in TRAIN_RUNS],
    output:
        report(
            "results/plots/training_curves.png",
            caption="../report/training.rst",
            category="Training",
        ),
    params:
        labels=[
            "{model}-{style}-{reward} tau~{tau} seed~{seed}".format(**run) for run in TRAIN_RUNS
        ],
    benchmark:
        "benchmarks/training_curves.tsv"
    log:
        "logs/training_curves.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap training-curves {input} --labels {params.labels:q} -o {output} 2> {log}"


rule learning:
    input:
        summary="results/summary.tsv",
        models=[CHECKPOINT.format(**run) for run in TRAIN_RUNS],
    output:
        report(
            "results/learning.tsv",
            caption="../report/learning.rst",
            category="Training",
        ),
    params:
        runs=[
            "{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}".format(**run) for run in TRAIN_RUNS
        ],
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["evaluation"]["bootstrap_seed"],
    benchmark:
        "benchmarks/learning.tsv"
    log:
        "logs/learning.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap learning-table {input.summary} --models {input.models:q} --runs {params.runs:q}"
        " --bootstrap {params.bootstrap} --seed {params.seed} -o {output} 2> {log}"

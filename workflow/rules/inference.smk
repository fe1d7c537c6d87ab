rule convert_gguf:
    output:
        directory("results/models/{model}"),
    params:
        gguf=lambda wildcards: model_entry(wildcards.model)["source"]["path"],
    benchmark:
        "benchmarks/convert_gguf/{model}.tsv"
    log:
        "logs/convert_gguf/{model}.log",
    conda:
        "../../envs/infer.yaml"
    shell:
        "dvmap convert-gguf {params.gguf:q} -o {output:q} 2> {log}"


rule predict:
    input:
        eval_items=EVAL_FILES,
        model=model_dir,
        templates=config["prompts"].get("templates") or [],
    output:
        predictions_of("{model}-{style}", "none", "{seed}"),
    params:
        **predict_params("{model}-{style}", "generate"),
        templates=templates_arg(),
    threads: INFERENCE["threads"]
    resources:
        gpu=lambda wildcards: model_entry(wildcards.model).get("gpus", 0),
    benchmark:
        "benchmarks/predict/{model}-{style}.seed~{seed}.tsv"
    log:
        "logs/predict/{model}-{style}.seed~{seed}.log",
    conda:
        "../../envs/infer.yaml"
    shell:
        "dvmap predict {input.eval_items} --model {wildcards.model} --model-spec {params.spec:q} {params.mode}"
        " --model-path {input.model:q} --style {wildcards.style} {params.templates} {params.max_items}"
        " --sample-seed {params.seed} {params.unit} --seed {wildcards.seed} --chunk-size {params.chunk}"
        " --label {params.label:q} --threshold {params.tau:q} -o {params.folder:q} 2> {log}"


use rule predict as predict_trained with:
    input:
        eval_items=EVAL_FILES,
        model=CHECKPOINT,
        templates=config["prompts"].get("templates") or [],
    output:
        predictions_of("{model}-{style}-grpo-{reward}", "{tau}", "{seed}"),
    params:
        **predict_params("{model}-{style}-grpo-{reward}", "generate"),
        templates=templates_arg(),
    benchmark:
        "benchmarks/predict_trained/{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}.tsv"
    log:
        "logs/predict/{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}.log",


use rule predict as score with:
    output:
        predictions_of("{model}-{style}-score", "none", "{seed}"),
    params:
        **predict_params("{model}-{style}-score", "score"),
        templates=templates_arg(),
    benchmark:
        "benchmarks/score/{model}-{style}.seed~{seed}.tsv"
    log:
        "logs/score/{model}-{style}.seed~{seed}.log",


use rule predict_trained as score_trained with:
    output:
        predictions_of("{model}-{style}-grpo-{reward}-score", "{tau}", "{seed}"),
    params:
        **predict_params("{model}-{style}-grpo-{reward}-score", "score"),
        templates=templates_arg(),
    benchmark:
        "benchmarks/score_trained/{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}.tsv"
    log:
        "logs/score/{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}.log",

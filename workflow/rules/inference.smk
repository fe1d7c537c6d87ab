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
        **predict_params("{model}-{style}"),
        templates=templates_arg(),
    resources:
        gpu=lambda wildcards: model_entry(wildcards.model).get("gpus", 0),
    benchmark:
        "benchmarks/predict/{model}-{style}.seed~{seed}.tsv"
    log:
        "logs/predict/{model}-{style}.seed~{seed}.log",
    conda:
        "../../envs/infer.yaml"
    shell:
        "dvmap predict {input.eval_items} --model {wildcards.model} --model-spec {params.spec:q}"
        " --model-path {input.model:q} --style {wildcards.style} {params.templates} {params.max_items}"
        " --sample-seed {params.seed} --seed {wildcards.seed} --chunk-size {params.chunk}"
        " --label {params.label:q} --threshold {params.tau:q} -o {params.folder:q} 2> {log}"


use rule predict as predict_trained with:
    input:
        eval_items=EVAL_FILES,
        model=CHECKPOINT,
        templates=config["prompts"].get("templates") or [],
    output:
        predictions_of("{model}-{style}-grpo-{reward}", "{tau}", "{seed}"),
    params:
        **predict_params("{model}-{style}-grpo-{reward}"),
        templates=templates_arg(),
    benchmark:
        "benchmarks/predict_trained/{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}.tsv"
    log:
        "logs/predict/{model}-{style}-grpo-{reward}.tau~{tau}.seed~{seed}.log",

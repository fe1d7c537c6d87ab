EVAL_FILES = expand("results/benchmark/{split}.parquet", split=BENCHMARK_SPLITS) + [
    "results/benchmark/flip.parquet"
]


rule flip_items:
    input:
        f"results/benchmark/{FLIP['split']}.parquet",
    output:
        "results/benchmark/flip.parquet",
    params:
        attribute=FLIP["attribute"],
        values=FLIP["values"],
    benchmark:
        "benchmarks/flip_items.tsv"
    log:
        "logs/flip_items.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap flip-items {input} --attribute {params.attribute:q} --values {params.values:q}"
        " -o {output} 2> {log}"


rule baseline:
    input:
        train="results/corpus/tau~{tau}/train.parquet",
        eval_items=EVAL_FILES,
    output:
        predictions_of("{kind}", "{tau}", "{seed}"),
    params:
        k=config["evaluation"]["knn_k"],
        folder=lambda wildcards, output: os.path.dirname(output[0]),
    benchmark:
        "benchmarks/baseline/{kind}.tau~{tau}.seed~{seed}.tsv"
    log:
        "logs/baseline/{kind}.tau~{tau}.seed~{seed}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap baseline --kind {wildcards.kind} --train {input.train} --eval {input.eval_items}"
        " --threshold {wildcards.tau} --seed {wildcards.seed} --k {params.k}"
        " -o {params.folder:q} 2> {log}"


rule evaluate:
    input:
        predictions=expand(
            "results/predictions/{{predictor}}/{split}.parquet", split=BENCHMARK_SPLITS
        ),
        reference=national_label_reference,
        base=base_predictions,
    output:
        summary="results/evaluation/{predictor}/summary.tsv",
        breakdown="results/evaluation/{predictor}/breakdown.tsv",
    params:
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["evaluation"]["bootstrap_seed"],
        unit=config["evaluation"]["bootstrap_unit"],
        min_respondents=config["evaluation"]["min_respondents"],
        protocol=config["evaluation"]["protocol"],
        reference=lambda wildcards, input: (
            "--reference " + " ".join(map(shlex.quote, input.reference)) if input.reference else ""
        ),
        base=lambda wildcards, input: (
            "--base " + " ".join(map(shlex.quote, input.base)) if input.base else ""
        ),
    benchmark:
        "benchmarks/evaluate/{predictor}.tsv"
    log:
        "logs/evaluate/{predictor}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap evaluate {input.predictions} -o {output.summary} --breakdown {output.breakdown}"
        " --bootstrap {params.bootstrap} --seed {params.seed} --bootstrap-unit {params.unit}"
        " --min-respondents {params.min_respondents} --protocol {params.protocol} {params.reference} {params.base}"
        " 2> {log}"


rule summary:
    input:
        summaries=expand("results/evaluation/{predictor}/summary.tsv", predictor=PREDICTORS),
        breakdowns=expand("results/evaluation/{predictor}/breakdown.tsv", predictor=PREDICTORS),
    output:
        summary=report(
            "results/summary.tsv",
            caption="../report/summary.rst",
            category="Evaluation",
        ),
        breakdown="results/breakdown.tsv",
    benchmark:
        "benchmarks/summary.tsv"
    log:
        "logs/summary.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap summary {input.summaries} -o {output.summary}"
        " --breakdowns {input.breakdowns} --breakdown-output {output.breakdown} 2> {log}"


rule evaluation_plots:
    input:
        summary="results/summary.tsv",
        breakdown="results/breakdown.tsv",
    output:
        accuracy=report(
            "results/plots/accuracy_vs_threshold.png",
            caption="../report/accuracy.rst",
            category="Evaluation",
        ),
        per_country=report(
            "results/plots/per_country.png",
            caption="../report/per_country.rst",
            category="Evaluation",
        ),
    params:
        taus=TAUS,
        baselines=config["evaluation"]["baselines"],
    benchmark:
        "benchmarks/evaluation_plots.tsv"
    log:
        "logs/evaluation_plots.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap evaluation-plots {input.summary} --breakdown {input.breakdown} --thresholds {params.taus:q}"
        " --baselines {params.baselines:q} --accuracy {output.accuracy}"
        " --per-country {output.per_country} 2> {log}"


rule flip_rates:
    input:
        original=expand(
            "results/predictions/{predictor}/{split}.parquet",
            predictor=PREDICTORS,
            split=FLIP["split"],
        ),
        flipped=expand("results/predictions/{predictor}/flip.parquet", predictor=PREDICTORS),
        flipped_items="results/benchmark/flip.parquet",
    output:
        tsv="results/flips.tsv",
        plot=report(
            "results/plots/flips.png",
            caption="../report/flips.rst",
            category="Evaluation",
        ),
    params:
        protocol=config["evaluation"]["protocol"],
    benchmark:
        "benchmarks/flip_rates.tsv"
    log:
        "logs/flip_rates.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap flip-rates --original {input.original} --flipped {input.flipped} --protocol {params.protocol}"
        " --flipped-items {input.flipped_items} -o {output.tsv} --plot {output.plot} 2> {log}"


rule question_distances:
    input:
        train=f"results/corpus/tau~{DISTANCE_TAU}/train.parquet",
        heldout="results/benchmark/cross_value.parquet",
        breakdown="results/breakdown.tsv",
        model=lambda wildcards: model_dir(SimpleNamespace(model=DISTANCE_MODEL)),
    output:
        table="results/analysis/question_distances.tsv",
        correlations=report(
            "results/analysis/distance_correlations.tsv",
            caption="../report/distance_correlations.rst",
            category="Evaluation",
        ),
        plot=report(
            "results/plots/question_distances.png",
            caption="../report/question_distances.rst",
            category="Evaluation",
        ),
    params:
        pooling=config["evaluation"]["distances"]["pooling"],
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["evaluation"]["bootstrap_seed"],
    benchmark:
        "benchmarks/question_distances.tsv"
    log:
        "logs/question_distances.log",
    conda:
        "../../envs/infer.yaml"
    shell:
        "dvmap question-distances --train {input.train} --heldout {input.heldout} --breakdown {input.breakdown}"
        " --model-dir {input.model:q} --pooling {params.pooling} --bootstrap {params.bootstrap}"
        " --seed {params.seed} -o {output.table} --correlations {output.correlations}"
        " --plot {output.plot} 2> {log}"

BENCHMARK_FILES = expand("results/benchmark/{split}.parquet", split=BENCHMARK_SPLITS)


if SOURCE == "release":

    rule import_release:
        input:
            config["data"]["release_dir"] or "config data.release_dir is not set",
        output:
            corpus=expand("results/corpus/tau~release/{split}.parquet", split=CORPUS_SPLITS),
            benchmark=BENCHMARK_FILES,
        params:
            catalog=catalog_arg(),
            parts=list(CORPUS_SPLITS + BENCHMARK_SPLITS),
        benchmark:
            "benchmarks/import_release.tsv"
        log:
            "logs/import_release.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "dvmap import-release {input:q} --corpus-dir results/corpus/tau~release"
            " --benchmark-dir results/benchmark --require {params.parts} {params.catalog} 2> {log}"

else:

    rule split:
        input:
            "results/archetypes/stats.parquet",
        output:
            benchmark=BENCHMARK_FILES,
            assignment="results/benchmark/assignment.parquet",
        params:
            args=split_args(),
        benchmark:
            "benchmarks/split.tsv"
        log:
            "logs/split.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "dvmap split {input} -o results/benchmark {params.args} 2> {log}"

    rule corpus:
        input:
            archetypes="results/archetypes/tau~{tau}/archetypes.parquet",
            benchmark=BENCHMARK_FILES,
            assignment="results/benchmark/assignment.parquet",
        output:
            expand("results/corpus/tau~{{tau}}/{split}.parquet", split=CORPUS_SPLITS),
        params:
            args=corpus_args(),
        benchmark:
            "benchmarks/corpus/tau~{tau}.tsv"
        log:
            "logs/corpus/tau~{tau}.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "dvmap corpus {input.archetypes} --benchmark-dir results/benchmark --tau {wildcards.tau}"
            " -o results/corpus/tau~{wildcards.tau} {params.args} 2> {log}"


rule prompts:
    input:
        splits=expand("results/corpus/tau~{{tau}}/{split}.parquet", split=CORPUS_SPLITS),
        templates=config["prompts"].get("templates") or [],
    output:
        trl=expand(
            "results/prompts/tau~{{tau}}/{{style}}/{split}.parquet", split=CORPUS_SPLITS
        ),
        verl=expand(
            "results/prompts/tau~{{tau}}/{{style}}/verl/{split}.parquet",
            split=CORPUS_SPLITS,
        ),
        dvmap_verl=expand(
            "results/prompts/tau~{{tau}}/{{style}}/dvmap_verl/{split}.parquet",
            split=CORPUS_SPLITS,
        ),
    params:
        templates=templates_arg(),
    benchmark:
        "benchmarks/prompts/tau~{tau}/{style}.tsv"
    log:
        "logs/prompts/tau~{tau}/{style}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap prompts {input.splits} --style {wildcards.style} {params.templates}"
        " -o results/prompts/tau~{wildcards.tau}/{wildcards.style}"
        " --verl-dir results/prompts/tau~{wildcards.tau}/{wildcards.style}/verl"
        " --dvmap-verl-dir results/prompts/tau~{wildcards.tau}/{wildcards.style}/dvmap_verl 2> {log}"


rule benchmark_prompts:
    input:
        splits=BENCHMARK_FILES,
        templates=config["prompts"].get("templates") or [],
    output:
        expand("results/prompts/benchmark/{{style}}/{split}.parquet", split=BENCHMARK_SPLITS),
    params:
        templates=templates_arg(),
    benchmark:
        "benchmarks/benchmark_prompts/{style}.tsv"
    log:
        "logs/prompts/benchmark/{style}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap prompts {input.splits} --style {wildcards.style} {params.templates}"
        " -o results/prompts/benchmark/{wildcards.style} 2> {log}"

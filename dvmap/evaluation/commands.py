"""The `dvmap` subcommands of the evaluation stage: each command's parser beside its function."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..arguments import add_protocol


def cmd_baseline(args):
    from .baselines import make_baseline
    from ..io import read_parquet, write_parquet
    from ..schema import predictor_name
    from .predictions import prediction_table

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
    from ..io import read_parquet, write_tsv
    from .predictions import check_predictions

    frames = {p: check_predictions(read_parquet(p), p) for p in dict.fromkeys(args.predictions)}
    references = {p: frames[p] if p in frames else check_predictions(read_parquet(p), p)
                  for p in dict.fromkeys(args.reference or [])}
    summary, breakdown = evaluate(frames, n_boot=args.bootstrap, seed=args.seed, unit=args.bootstrap_unit,
                                  protocol=args.protocol, references=references)
    write_tsv(summary, args.output)
    if args.breakdown:
        write_tsv(breakdown, args.breakdown)


def cmd_summary(args):
    from .evaluate import merge_summaries
    from ..io import read_tsv, write_tsv

    write_tsv(merge_summaries([read_tsv(p) for p in args.summaries]), args.output)
    if args.breakdowns:
        write_tsv(pd.concat([read_tsv(p) for p in args.breakdowns], ignore_index=True), args.breakdown_output)


def cmd_evaluation_plots(args):
    from ..io import read_tsv
    from ..plots import accuracy_vs_threshold, per_country_accuracy

    accuracy_vs_threshold(read_tsv(args.summary), args.thresholds, args.baselines, args.accuracy)
    if args.per_country:
        per_country_accuracy(read_tsv(args.breakdown), args.per_country)


def cmd_flip_items(args):
    from .flips import flip_items
    from ..io import read_parquet, write_parquet

    write_parquet(flip_items(read_parquet(args.items), args.attribute, tuple(args.values)), args.output)


def cmd_flip_rates(args):
    from .evaluate import apply_protocol
    from .flips import flip_rates
    from ..io import read_parquet, write_tsv
    from ..plots import flip_change_rates

    original = apply_protocol(pd.concat([read_parquet(p) for p in args.original], ignore_index=True), args.protocol)
    flipped = apply_protocol(pd.concat([read_parquet(p) for p in args.flipped], ignore_index=True), args.protocol)
    rates = flip_rates(original, flipped, read_parquet(args.flipped_items))
    write_tsv(rates, args.output)
    if args.plot:
        flip_change_rates(rates, args.plot)


def register(sub) -> None:
    """Add the evaluation stage's subcommands to the ``dvmap`` parser's subparsers."""
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
    add_protocol(p, "LLM raw outputs are parsed again under it")
    p.add_argument("--reference", nargs="+", metavar="FILE",
                   help="national_label predictions for the paired accuracy difference (national_label files "
                        "among the predictions count too)")
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
    p.add_argument("--baselines", nargs="*", default=[], help="models drawn as dashed reference lines")
    p.add_argument("--accuracy", required=True, help="PNG path")
    p.add_argument("--per-country", help="PNG path (needs --breakdown)")
    p.set_defaults(func=cmd_evaluation_plots)

    p = sub.add_parser("flip-items", help="counterfactual items: one attribute swapped between two values")
    p.add_argument("items")
    p.add_argument("--attribute", default="Income Bracket", help="config: evaluation.flip.attribute")
    p.add_argument("--values", nargs=2, default=["Low income", "High income"], help="config: evaluation.flip.values")
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

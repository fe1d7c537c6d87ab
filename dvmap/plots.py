"""Figures for the report (matplotlib, headless), each written atomically as PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path  # noqa: E402


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _natural(key: str):
    """Sort Q2 before Q10."""
    digits = "".join(ch for ch in key if ch.isdigit())
    return (key.rstrip("0123456789"), int(digits) if digits else -1, key)


def jsd_heatmap(diagnostics: pd.DataFrame, tau: str, path) -> None:
    """Questions × countries heatmap of the JSD between kept and full answer distributions."""
    rows = diagnostics[(diagnostics["section"] == "question_country") & (diagnostics["metric"] == "jsd")]
    grid = rows.pivot(index="key", columns="country", values="value").astype(float)
    grid = grid.reindex(sorted(grid.index, key=_natural))
    fig, ax = plt.subplots(figsize=(1 + 0.45 * max(len(grid.columns), 1), 1 + 0.3 * max(len(grid), 1)))
    image = ax.imshow(np.ma.masked_invalid(grid.to_numpy()), cmap="viridis", vmin=0, vmax=max(0.05, np.nanmax(grid.to_numpy(), initial=0)), aspect="auto")
    ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(grid.index)), grid.index, fontsize=7)
    ax.set_title(f"JSD(kept ‖ full answers), tau = {tau}")
    fig.colorbar(image, ax=ax, label="Jensen–Shannon divergence (bits)")
    _save(fig, path)


def sweep_plot(sweep: pd.DataFrame, path) -> None:
    """Kept share of rows, profiles and respondents, singleton share and mean JSD against the threshold."""
    labels = sweep["tau"].astype(str).tolist()
    x = np.arange(len(labels))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for metric, name in (("rows_kept_share", "(profile, question) pairs"), ("profiles_kept_share", "profiles"),
                         ("respondents_kept_share", "respondents"), ("singleton_profile_share", "singleton share")):
        left.plot(x, sweep[metric], marker="o", label=name)
    left.set(xticks=x, xticklabels=labels, xlabel="consensus threshold tau (bits; majority = no filter)",
             ylabel="share kept", ylim=(0, 1.05), title="What the consensus filter keeps")
    left.legend(fontsize=8)
    right.bar(x, sweep["mean_jsd"], color="tab:purple")
    right.set(xticks=x, xticklabels=labels, xlabel="consensus threshold tau", ylabel="mean JSD (bits)",
              title="Shift of answer distributions")
    _save(fig, path)


def accuracy_vs_threshold(summary: pd.DataFrame, thresholds: list[str], baselines: list[str], path) -> None:
    """Accuracy (95% CI) against the consensus threshold, one panel per split; baselines dashed, others solid."""
    several_seeds = summary.loc[summary["seed"] == "mean", "model"].unique()
    rows = summary[summary["model"].isin(several_seeds) == (summary["seed"] == "mean")]
    splits = list(dict.fromkeys(summary["split"]))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.8), sharey=True, layout="constrained",
                             squeeze=False)
    x_of = {t: i for i, t in enumerate(thresholds)}
    for ax, split in zip(axes[0], splits):
        for model, group in rows[rows["split"] == split].groupby("model", sort=True):
            untrained = group[~group["threshold"].isin(x_of)]
            for _, row in untrained.iterrows():  # a model not trained on the corpus: a horizontal reference
                ax.axhline(row["accuracy"], linestyle=":", color="grey", linewidth=1.2)
                ax.annotate(f"{model} ({row['threshold']})", (len(thresholds) - 1, row["accuracy"]), fontsize=6,
                            ha="right", va="bottom", color="dimgrey")
            group = group[group["threshold"].isin(x_of)].drop_duplicates("threshold", keep="last")
            if group.empty:
                continue
            group = group.sort_values("threshold", key=lambda t: t.map(x_of))
            x = group["threshold"].map(x_of).to_numpy()
            y = group["accuracy"].to_numpy(dtype=float)
            err = np.abs(np.vstack([y - group["accuracy_ci_low"], group["accuracy_ci_high"] - y]).astype(float))
            ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", capsize=3, label=model,
                        linestyle="--" if model in baselines else "-")
        ax.set(title=split, xticks=range(len(thresholds)), xticklabels=thresholds, xlabel="consensus threshold tau")
    axes[0][0].set_ylabel("accuracy (95% CI)")
    axes[0][-1].legend(fontsize=7, loc="best")
    _save(fig, path)


def per_country_accuracy(breakdown: pd.DataFrame, path) -> None:
    """Heatmap of accuracy per country (columns) for every predictor and split (rows)."""
    rows = breakdown[(breakdown["group_type"] == "country") & (breakdown["metric"] == "accuracy")]
    grid = rows.pivot_table(index=["split", "predictor"], columns="group", values="value", aggfunc="first")
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * max(len(grid.columns), 1), 1 + 0.25 * max(len(grid), 1)))
    image = ax.imshow(np.ma.masked_invalid(grid.to_numpy(dtype=float)), cmap="magma", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(grid.index)), [f"{s} | {p}" for s, p in grid.index], fontsize=6)
    fig.colorbar(image, ax=ax, label="accuracy")
    ax.set_title("Accuracy per country")
    _save(fig, path)


def flip_change_rates(rates: pd.DataFrame, path) -> None:
    """Heatmap of the share of predictions that change under the attribute flip: predictors × question categories."""
    grid = rates.pivot_table(index="predictor", columns="category", values="change_rate", aggfunc="first")
    grid = grid[[c for c in grid.columns if c != "ALL"] + (["ALL"] if "ALL" in grid.columns else [])]
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * len(grid.columns), 1.2 + 0.3 * len(grid)), layout="constrained")
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for (row, col), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=6,
                color="white" if value > 0.6 else "black")
    ax.set_xticks(range(len(grid.columns)), [c.title()[:28] for c in grid.columns], rotation=40, ha="right",
                  fontsize=7)
    ax.set_yticks(range(len(grid.index)), grid.index, fontsize=7)
    fig.colorbar(image, ax=ax, label="share of answers that change")
    ax.set_title("Counterfactual attribute flip")
    _save(fig, path)


def training_curves(logs: dict[str, pd.DataFrame], path) -> None:
    """Reward mean (± sd), KL and completion length per GRPO step, one line per run; dev accuracy as markers; with
    learning curves (training.curves), the dev sample's score-mode accuracy (solid) and expected accuracy (dashed)."""
    panels = [("reward_mean", "reward (mean ± sd)"), ("kl", "KL to the reference"),
              ("completion_length", "completion length (tokens)"), ("train_accuracy", "accuracy (train ·, dev ◆)")]
    if any("dev_score_accuracy" in log.columns for log in logs.values()):
        panels.append(("dev_score_accuracy", "dev sample, score mode: accuracy (—), expected (- -)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), layout="constrained")
    for label, log in logs.items():
        for ax, (column, title) in zip(axes, panels):
            rows = log.dropna(subset=[column]) if column in log.columns else pd.DataFrame(columns=["step", column])
            line, = ax.plot(rows["step"], rows[column], marker=".", label=label)
            if column == "reward_mean" and "reward_std" in rows.columns:
                ax.fill_between(rows["step"], rows[column] - rows["reward_std"], rows[column] + rows["reward_std"],
                                color=line.get_color(), alpha=0.15)
            if column == "train_accuracy" and "dev_accuracy" in log.columns:
                dev = log.dropna(subset=["dev_accuracy"])
                ax.plot(dev["step"], dev["dev_accuracy"], marker="D", linestyle="none", color=line.get_color())
            if column == "dev_score_accuracy" and "dev_expected_accuracy" in log.columns:
                expected = log.dropna(subset=["dev_expected_accuracy"])
                ax.plot(expected["step"], expected["dev_expected_accuracy"], linestyle="--", color=line.get_color())
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
    axes[0].legend(fontsize=7, loc="best")
    _save(fig, path)


def question_distances(table: pd.DataFrame, path) -> None:
    """Held-out questions' nearest distance d_min to the training questions against each predictor's accuracy on
    them (left) and, for trained models, the change from the base model (right); one colour per model."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for (model, threshold), rows in table.groupby(["model", "threshold"], sort=True):
        label = f"{model} (τ {threshold})" if str(threshold) != "none" else model
        axes[0].plot(rows["d_min"], rows["accuracy"], marker="o", linestyle="none", label=label, alpha=0.8)
        change = rows.dropna(subset=["accuracy_change"])
        if len(change):
            axes[1].plot(change["d_min"], change["accuracy_change"], marker="o", linestyle="none", label=label)
    axes[0].set(xlabel="d_min (cosine distance to the nearest training question)", ylabel="accuracy",
                title="cross_value accuracy per held-out question")
    axes[1].set(xlabel="d_min", ylabel="trained − base accuracy", title="change from the base model")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    axes[0].legend(fontsize=6, loc="best")
    _save(fig, path)

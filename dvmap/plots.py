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

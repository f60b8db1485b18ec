"""The figures of a run report (matplotlib, Agg backend: files only, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RUN_COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _final_budget(df: pd.DataFrame) -> pd.Series:
    """Trials scored on the run's largest token budget: only their losses compare."""
    return df.tokens == df.tokens.max() if "tokens" in df else pd.Series(True, index=df.index)


def quality_vs_latency(runs: dict[str, pd.DataFrame], path: Path, *, target_ms: float | None) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, (label, df) in zip(RUN_COLOURS, runs.items()):
        final = _final_budget(df)
        if (~final).any():
            ax.scatter(df.latency_ms[~final], df.loss[~final], s=8, alpha=0.25, color="grey",
                       label=f"{label}: screened on fewer tokens")
        tokens = f" ({int(df.tokens.max())} tokens)" if "tokens" in df else ""
        ax.scatter(df.latency_ms[final], df.loss[final], s=14, alpha=0.5, color=colour, label=f"{label}: evaluated{tokens}")
        front = df[df.pareto].sort_values("latency_ms")
        ax.step(front.latency_ms, front.loss, where="post", color=colour, lw=1.5)
        ax.scatter(front.latency_ms, front.loss, s=36, color=colour, edgecolor="black", label=f"{label}: Pareto front")
    if target_ms is not None:
        ax.axvline(target_ms, color="grey", ls="--", lw=1, label=f"target {target_ms:.2f} ms")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("distillation loss vs dense (lower is better)")
    ax.set_title("Quality against latency")
    ax.legend(fontsize=7)
    return _save(fig, path)


def energy_vs_latency(runs: dict[str, pd.DataFrame], path: Path) -> Path | None:
    runs = {k: df.dropna(subset=["energy_mj"]) for k, df in runs.items() if "energy_mj" in df}
    runs = {k: df for k, df in runs.items() if len(df)}
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, (label, df) in zip(RUN_COLOURS, runs.items()):
        ax.scatter(df.latency_ms, df.energy_mj, s=12, alpha=0.5, color=colour, label=label)
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("predicted energy per inference (mJ)")
    ax.set_title("Energy against latency")
    ax.legend(fontsize=7)
    return _save(fig, path)


def layer_heatmap(chosen: pd.DataFrame, path: Path) -> Path:
    """Kept heads and FFN width per layer of the chosen (Pareto) configs, fastest first."""
    chosen = chosen.sort_values("latency_ms")
    heads = np.array([[l["heads"] for l in c["layers"]] for c in chosen.config])
    ffn = np.array([[l["ffn"] for l in c["layers"]] for c in chosen.config])
    labels = [f"{ms:.2f} ms" for ms in chosen.latency_ms]
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.35 * len(chosen) + 1.8))
    for ax, data, title in zip(axes, (heads, ffn), ("kept query heads", "kept FFN width")):
        im = ax.imshow(data, aspect="auto", cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.set_xticks(range(data.shape[1]))
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        fig.colorbar(im, ax=ax)
    return _save(fig, path)


def progress(runs: dict[str, pd.DataFrame], path: Path) -> Path:
    """Best feasible loss on the final token budget among configs seen so far, against all
    evaluations (screening steps on fewer tokens count as evaluations but not as losses)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for colour, (label, df) in zip(RUN_COLOURS, runs.items()):
        ordered = df.sort_values("number")
        usable = _final_budget(ordered) & (ordered.feasible if "feasible" in ordered else True)
        best = ordered.loss.where(usable).cummin().ffill()  # cummin leaves gaps where a step is skipped
        ax.plot(np.arange(1, len(ordered) + 1), best.to_numpy(), color=colour, label=label)
    ax.set_xlabel("evaluations (all token budgets)")
    ax.set_ylabel("best feasible loss on the final token budget")
    ax.set_title("Search progress")
    ax.legend(fontsize=7)
    return _save(fig, path)

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


def pair_front(
    runs: dict[str, pd.DataFrame],
    x: str,
    y: str,
    path: Path,
    *,
    constraints=(),
    measured: pd.DataFrame | None = None,
    marks: dict[str, dict[str, float]] | None = None,
) -> Path:
    """Every config on two objectives, the front of that pair (each run's configs no other beats on both),
    and the constraints' limits on either axis. ``measured``: configs timed beside the dense model, drawn at
    their measured values with a line to their predicted ones; ``marks``: named points (the dense model, the
    exported pick), each a value per objective."""
    from prunesearch._objectives import OBJECTIVES
    from prunesearch._pareto import pareto_mask

    ox, oy = OBJECTIVES[x], OBJECTIVES[y]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, (label, df) in zip(RUN_COLOURS, runs.items()):
        final = _final_budget(df)
        if (~final).any() and "loss" in (x, y):
            ax.scatter(
                df[x][~final], df[y][~final], s=8, alpha=0.25, color="grey", label=f"{label}: screened on fewer tokens"
            )
        tokens = f" ({int(df.tokens.max())} tokens)" if "tokens" in df else ""
        shown = df[final]
        ax.scatter(shown[x], shown[y], s=14, alpha=0.5, color=colour, label=f"{label}: evaluated{tokens}")
        points = np.column_stack([ox.minimised(shown[x]), oy.minimised(shown[y])])
        front = shown[pareto_mask(points)].sort_values(x)
        ax.step(front[x], front[y], where="post", color=colour, lw=1.5)
        ax.scatter(front[x], front[y], s=36, color=colour, edgecolor="black", label=f"{label}: front of this pair")
    if measured is not None and len(measured) and {f"measured_{x}", f"measured_{y}"} & set(measured):
        mx, my = (measured.get(f"measured_{a}", measured[a]) for a in (x, y))
        for px, py, qx, qy in zip(measured[x], measured[y], mx, my):
            ax.plot([px, qx], [py, qy], color="crimson", lw=0.6, alpha=0.6)
        ax.scatter(mx, my, s=30, marker="x", color="crimson", label="measured beside the dense model")
    for (name, values), style in zip((marks or {}).items(), ({"marker": "*", "s": 180}, {"marker": "D", "s": 60})):
        if x in values and y in values:
            ax.scatter([values[x]], [values[y]], color="gold", edgecolor="black", zorder=5, label=name, **style)
    for c in constraints:
        if c.objective in (x, y):
            line = ax.axvline if c.objective == x else ax.axhline
            line(c.limit, color="grey", ls="--", lw=1, label=c.describe())
    ax.set_xlabel(ox.label)
    ax.set_ylabel(oy.label)
    ax.set_title(f"{oy.name} against {ox.name}")
    ax.legend(fontsize=7)
    return _save(fig, path)


def three_objectives(runs: dict[str, pd.DataFrame], objectives: tuple[str, str, str], path: Path) -> Path:
    """The first objective as colour over the other two, the three-objective front ringed."""
    from prunesearch._objectives import OBJECTIVES

    c, x, y = objectives
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for marker, (label, df) in zip("osD^v", runs.items()):
        shown = df[_final_budget(df)]
        points = ax.scatter(
            shown[x],
            shown[y],
            c=shown[c],
            s=16,
            cmap="viridis_r",
            marker=marker,
            alpha=0.7,
            label=f"{label}: evaluated",
        )
        front = shown[shown.pareto]
        ax.scatter(
            front[x],
            front[y],
            s=60,
            facecolors="none",
            edgecolors="black",
            marker=marker,
            label=f"{label}: front over all three",
        )
    fig.colorbar(points, ax=ax, label=OBJECTIVES[c].label)
    ax.set_xlabel(OBJECTIVES[x].label)
    ax.set_ylabel(OBJECTIVES[y].label)
    ax.set_title(f"{', '.join(objectives)}: the three-objective front")
    ax.legend(fontsize=7)
    return _save(fig, path)


def layer_heatmap(chosen: pd.DataFrame, path: Path, *, by: str = "latency_ms") -> Path:
    """Kept heads and FFN width per layer of the chosen (Pareto) configs, ordered by objective ``by``."""
    from prunesearch._objectives import OBJECTIVES

    chosen = chosen.sort_values(by)
    heads = np.array([[l["heads"] for l in c["layers"]] for c in chosen.config])
    ffn = np.array([[l["ffn"] for l in c["layers"]] for c in chosen.config])
    labels = [OBJECTIVES[by].format(v) for v in chosen[by]]
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


def correction(measured: pd.DataFrame, path: Path) -> Path:
    """How the oracle's correction moved over the search: for each config measured beside the dense model, window
    by window in the order they ran (the table's check, the search's, the export's pick), how far the table's
    prediction and the corrected prediction made just before it was measured missed the measurement
    (measured / predicted time - 1), and each window's median miss of both."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.axhline(0.0, color="grey", lw=1)
    x = measured.window.to_numpy(dtype=float)
    ax.scatter(x - 0.08, 100 * measured.table_error, s=20, color="tab:blue", label="table's prediction")
    ax.scatter(
        x + 0.08, 100 * measured.corrected_error, s=24, marker="x", color="crimson", label="corrected, before measuring"
    )
    windows = measured.groupby("window")
    for column, colour, style, label in (
        ("table_error", "tab:blue", "--", "table: median |miss|"),
        ("corrected_error", "crimson", "-", "corrected: median |miss|"),
    ):
        median = windows[column].apply(lambda e: float(np.median(np.abs(e))))
        ax.plot(median.index, 100 * median.to_numpy(), color=colour, ls=style, lw=1, label=label)
    stages = windows.stage.first()
    ax.set_xticks(stages.index, [f"{w}\n{s}" for w, s in stages.items()], fontsize=7)
    ax.set_xlabel("measurement window (in the order they ran) and its stage")
    ax.set_ylabel("measured / predicted time - 1 (%)")
    ax.set_title("The hardware correcting the table during the search")
    ax.legend(fontsize=7)
    return _save(fig, path)

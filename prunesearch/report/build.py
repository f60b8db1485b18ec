"""A run report: results.csv, pareto.csv, plots and a self-contained index.html."""

from __future__ import annotations

import base64
import html
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from prunesearch.objectives import OBJECTIVES, Constraint
from prunesearch.pareto import pareto_mask
from prunesearch.paths import atomic_write_text
from prunesearch.report import plots


def minimised(df: pd.DataFrame, objectives: Sequence[str]) -> np.ndarray:
    """The objectives' columns, each turned so that lower is better."""
    return np.column_stack([OBJECTIVES[o].minimised(df[o].to_numpy(dtype=float)) for o in objectives])


def annotate(
    trials: pd.DataFrame, *, constraints: Sequence[Constraint] = (), objectives: Sequence[str] = ("loss", "latency_ms")
) -> pd.DataFrame:
    """Add ``feasible`` (every constraint met, as predicted) and ``pareto`` (the front over ``objectives``).

    The front is taken among evaluations on the largest token budget: losses measured on
    fewer calibration tokens (early selection steps) are not comparable with it.
    """
    df = trials.copy()
    df["feasible"] = True
    for c in constraints:
        df["feasible"] &= c.satisfied(df[c.objective].to_numpy(dtype=float))
    final = df.tokens == df.tokens.max() if "tokens" in df else pd.Series(True, index=df.index)
    df["pareto"] = False
    if final.any():
        df.loc[final, "pareto"] = pareto_mask(minimised(df.loc[final], objectives))
    return df


def _layers_text(config: dict) -> str:
    return " ".join(f"{l['heads']}/{l['ffn']}" for l in config["layers"])


def _embed(path: Path | None) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    image = f'<img src="data:image/png;base64,{data}" alt="{path.stem}">'
    return f"<figure>{image}<figcaption>{path.stem}</figcaption></figure>"


def _export_section(manifest) -> str:
    """The exported pick: every candidate measured beside the dense model, and each verification."""
    if manifest is None:
        return ""
    rows = [
        {
            "layers": _layers_text(c.config),
            "loss": c.loss,
            "predicted speed-up": c.predicted.get("speedup"),
            "measured speed-up": c.measured.speedup,
            "95% CI": f"{c.measured.speedup_low:.3f}-{c.measured.speedup_high:.3f}",
            "rounds": c.measured.rounds,
            "meets target": c.meets,
            "exported": c.chosen,
        }
        for c in manifest.candidates
    ]
    candidates = pd.DataFrame(rows).to_html(index=False, float_format=lambda v: f"{v:.4g}") if rows else ""
    checks = "".join(
        f"<li>{html.escape(v.at)}: {'passed' if v.passed else 'FAILED'}: measured {html.escape(v.measured.describe())} "
        f"against the {v.of} {html.escape(', '.join(c.describe() for c in v.against))} "
        f"(tolerance {v.tolerance:.0%})</li>"
        for v in manifest.verifications
    )
    target = html.escape(", ".join(c.describe() for c in manifest.target)) if manifest.target else "none (fastest)"
    measured = html.escape(manifest.measured.describe()) if manifest.measured else "not measured"
    return (
        f"<h2>Exported pick</h2><p>Target {target}. Exported: {html.escape(_layers_text(manifest.config))}, "
        f"measured {measured} ({html.escape(manifest.measured.backend if manifest.measured else '')}). "
        "Every speed-up here is the model timed side by side with the dense model in paired rounds.</p>"
        f"{candidates}<ul>{checks}</ul>"
    )


def build_report(
    runs: dict[str, pd.DataFrame],
    out_dir: str | Path,
    *,
    constraints: Sequence[Constraint] = (),
    objectives: Sequence[str] = ("loss", "latency_ms"),
    title: str = "prunesearch report",
    facts: dict[str, str] | None = None,
    export=None,
) -> Path:
    """Write the report of one or several runs (overlaid) into ``out_dir``; returns index.html. The front
    is over ``objectives``: one figure per pair of them, and with three or more a view of three at once.
    ``export``: an ExportManifest whose measured pick the report shows."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {
        label: annotate(df, constraints=constraints, objectives=objectives) for label, df in runs.items() if len(df)
    }
    if not runs:
        raise ValueError("no evaluated configs to report")
    results = pd.concat([df.assign(run=label) for label, df in runs.items()], ignore_index=True)
    results = results.assign(layers=results.config.map(_layers_text), config=results.config.map(json.dumps))
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    order = [o for o in objectives if o != "loss"][:1] or ["loss"]
    front = results[results.pareto].sort_values(["run", *order])
    atomic_write_text(out / "pareto.csv", front.to_csv(index=False))

    chosen = pd.concat([df[df.pareto] for df in runs.values()])
    figures = [
        plots.pair_front(runs, x, y, out / f"front_{y}_vs_{x}.png", constraints=constraints)
        for y, x in itertools.combinations(objectives, 2)
    ]
    if len(objectives) >= 3:
        figures.append(plots.three_objectives(runs, tuple(objectives[:3]), out / "front_3d.png"))
    figures += [
        plots.layer_heatmap(chosen, out / "layers_heatmap.png", by=order[0]),
        plots.progress(runs, out / "progress.png"),
    ]
    shown = [
        "run",
        "number",
        "algorithm",
        *dict.fromkeys([*objectives, "speedup", "latency_ms", "params"]),
        "feasible",
        "layers",
    ]
    table = front[[c for c in shown if c in front]].to_html(index=False, float_format=lambda v: f"{v:.4g}")
    fact_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in (facts or {}).items()
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}</style></head>
<body><h1>{html.escape(title)}</h1><table>{fact_rows}</table>
<h2>Pareto front over {html.escape(", ".join(objectives))} ({len(front)} of {len(results)} evaluated configs)</h2>
<p>Layers are shown as kept heads/FFN width per layer. Latency and speed-up are the oracle's predictions (the
table's ratio, times the dense model's measured time for milliseconds); parameters and size are exact.</p>{table}
{_export_section(export)}<h2>Figures</h2>{"".join(_embed(f) for f in figures)}</body></html>"""
    atomic_write_text(out / "index.html", page)
    return out / "index.html"


def report_run(run, out_dir: str | Path | None = None, *, export: Path | None = None) -> Path:
    """The report of a stored run (``prunesearch.run.Run``) with the facts its search recorded; ``export``:
    a folder written by ``prunesearch export`` from it, whose measured pick and verifications are shown."""
    from prunesearch.export.manifest import read_manifest

    return build_report(
        {run.name: run.trials()},
        out_dir or run.folder,
        constraints=run.constraints(),
        objectives=tuple(run.attrs.get("objectives", ("loss", "latency_ms"))),
        title=f"prunesearch: {run.name}",
        facts=run.attrs.get("report_facts"),
        export=None if export is None else read_manifest(export),
    )

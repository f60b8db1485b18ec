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

from prunesearch._objectives import OBJECTIVES, Constraint
from prunesearch._pareto import pareto_mask
from prunesearch._paths import atomic_write_text
from prunesearch.report import _plots as plots


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


def measured_frame(measurements, trials: pd.DataFrame | None = None, *, reference_ms: float) -> pd.DataFrame:
    """One row per config measured beside the dense model (oracle.MeasuredConfig): the table's prediction, the
    corrected one made just before it was measured, the measurement, and how far each prediction missed it;
    with ``trials``, each config's loss and predicted objectives (on the final token budget) beside it."""
    rows = []
    for m in measurements:
        r = m.measurement
        rows.append(
            {
                "window": m.window,
                "stage": m.stage,
                "evaluations": m.evaluations,
                "genome": tuple(m.genome),
                "table_speedup": 1 / m.table_ratio,
                "corrected_speedup": 1 / m.corrected_ratio,
                "measured_speedup": r.speedup,
                "measured_low": r.speedup_low,
                "measured_high": r.speedup_high,
                "rounds": r.rounds,
                "measured_latency_ms": r.ratio * reference_ms,
                "table_error": r.ratio / m.table_ratio - 1,
                "corrected_error": r.ratio / m.corrected_ratio - 1,
            }
        )
    frame = pd.DataFrame(rows)
    if trials is None or frame.empty or "genome" not in trials:
        return frame
    final = trials[trials.tokens == trials.tokens.max()] if "tokens" in trials else trials
    known = final.assign(genome=final.genome.map(tuple)).drop_duplicates("genome").set_index("genome")
    columns = [c for c in ("layers", "loss", "latency_ms", "speedup", "params") if c in known]
    return frame.join(known[columns], on="genome")


def _as_latency(constraints: Sequence[Constraint], reference_ms: float | None) -> list[Constraint]:
    """A speed-up limit as the milliseconds it means beside the dense model measured now (drawn on latency axes)."""
    if reference_ms is None:
        return []
    return [
        Constraint(objective="latency_ms", limit=reference_ms / c.limit)
        for c in constraints
        if c.objective == "speedup"
    ]


def _measured_section(measured: pd.DataFrame) -> str:
    if measured.empty:
        return ""
    shown = measured.assign(layers=measured.get("layers", measured.genome.map(str)))
    columns = {
        "window": "window",
        "stage": "stage",
        "evaluations": "after evaluations",
        "layers": "layers",
        "table_speedup": "table",
        "corrected_speedup": "corrected (before)",
        "measured_speedup": "measured",
        "measured_low": "95% CI low",
        "measured_high": "95% CI high",
        "table_error": "table miss",
        "corrected_error": "corrected miss",
    }
    table = shown[list(columns)].rename(columns=columns).to_html(index=False, float_format=lambda v: f"{v:.4g}")
    searched = measured[measured.stage == "search"]
    summary = ""
    if len(searched):
        t, c = searched.table_error.abs(), searched.corrected_error.abs()
        summary = (
            f"<p>Over the {len(searched)} configs the search measured, the table missed by a median "
            f"{t.median():.1%} (max {t.max():.1%}); the corrected prediction made just before each was measured "
            f"missed by a median {c.median():.1%} (max {c.max():.1%}).</p>"
        )
    return (
        "<h2>Measured beside the dense model</h2><p>Every config timed on the device in paired rounds with the dense "
        "model: the table's own prediction, the oracle's corrected prediction made just before it was measured, "
        "and the measured speed-up (misses: measured / predicted - 1 of the time).</p>" + summary + table
    )


def _export_section(manifest) -> str:
    """The exported pick: every candidate measured beside the dense model, and each verification."""
    if manifest is None:
        return ""
    rows = [
        {
            "layers": _layers_text(c.config),
            "loss": c.loss,
            "table speed-up": 1 / c.measured.table_ratio,
            "corrected speed-up": c.predicted.get("speedup"),
            "measured speed-up": c.measured.measurement.speedup,
            "95% CI": f"{c.measured.measurement.speedup_low:.3f}-{c.measured.measurement.speedup_high:.3f}",
            "rounds": c.measured.measurement.rounds,
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
        f"measured {measured} ({html.escape(manifest.conditions.backend if manifest.conditions else '')}). "
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
    measurements=(),
    reference_ms: float | None = None,
) -> Path:
    """Write the report of one or several runs (overlaid) into ``out_dir``; returns index.html. The front
    is over ``objectives``: one figure per pair of them, and with three or more a view of three at once.
    ``export``: an ExportManifest whose measured pick the report shows; ``measurements``: the configs the run
    measured beside the dense model (oracle.MeasuredConfig), shown with what was predicted for them and drawn on
    the fronts, with the dense model itself at ``reference_ms``."""
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
    first = next(iter(runs.values()))
    measured = measured_frame(measurements, first, reference_ms=reference_ms or 1.0) if measurements else None
    marks = {}
    if reference_ms is not None:
        marks["dense model"] = {"loss": 0.0, "latency_ms": reference_ms, "speedup": 1.0}
    if export is not None and export.measured is not None:
        marks["exported pick (measured)"] = {
            "loss": next((c.loss for c in export.candidates if c.chosen), np.nan),
            "latency_ms": export.measured.ratio * (reference_ms or export.measured.reference_ms),
            "speedup": export.measured.speedup,
            "params": export.params,
        }
    drawn = list(constraints) + _as_latency(constraints, reference_ms)
    figures = [
        plots.pair_front(runs, x, y, out / f"front_{y}_vs_{x}.png", constraints=drawn, measured=measured, marks=marks)
        for y, x in itertools.combinations(objectives, 2)
    ]
    if len(objectives) >= 3:
        figures.append(plots.three_objectives(runs, tuple(objectives[:3]), out / "front_3d.png"))
    figures += [
        plots.layer_heatmap(chosen, out / "layers_heatmap.png", by=order[0]),
        plots.progress(runs, out / "progress.png"),
    ]
    if measured is not None and not measured.empty:
        figures.append(plots.correction(measured, out / "correction.png"))
        atomic_write_text(out / "measured.csv", measured.to_csv(index=False))
    shown = [
        "run",
        "number",
        "algorithm",
        *dict.fromkeys([*objectives, "speedup", "table_speedup", "latency_ms", "params"]),
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
<p>Layers are shown as kept heads/FFN width per layer. Latency and speed-up are the oracle's predictions: the
table's ratio corrected by every config measured on the device during the search (times the dense model's measured
time for milliseconds); the table's own prediction is beside them; parameters and size are exact.</p>{table}
{_measured_section(measured) if measured is not None else ""}
{_export_section(export)}<h2>Figures</h2>{"".join(_embed(f) for f in figures)}</body></html>"""
    atomic_write_text(out / "index.html", page)
    return out / "index.html"


def report_run(run, out_dir: str | Path | None = None, *, oracle=None, export: Path | None = None) -> Path:
    """The report of a stored run (``prunesearch._run.Run``) with the facts its search recorded, its configs as
    ``oracle`` (default: the run's, from its table and measurements) predicts them now, and every config it
    measured; ``export``: a folder written by ``prunesearch export`` from it, whose measured pick and
    verifications are shown."""
    from prunesearch.export._manifest import read_manifest

    oracle = oracle or run.oracle()
    return build_report(
        {run.name: run.trials(oracle=oracle)},
        out_dir or run.folder,
        constraints=run.constraints(),
        objectives=tuple(run.attrs.get("objectives", ("loss", "latency_ms"))),
        title=f"prunesearch: {run.name}",
        facts=run.attrs.get("report_facts"),
        export=None if export is None else read_manifest(export),
        measurements=oracle.measurements,
        reference_ms=oracle.reference_ms,
    )

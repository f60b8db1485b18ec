"""Export a chosen config as HF safetensors (+ ONNX) with export.json: what was promised and measured."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict

from prunesearch.config import Config
from prunesearch.errors import PruneSearchError
from prunesearch.paths import atomic_write_text

MANIFEST = "export.json"
FORMATS = ("hf", "onnx", "tensorrt")


class ExportManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    config: dict
    table: str | None
    target_ms: float | None
    predicted_ms: float | None
    measured_ms: float | None
    backend: str | None
    conditions: dict | None
    formats: list[str]
    onnx_max_abs_diff: float | None = None
    exported_at: str


def parse_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise PruneSearchError(f"--to {text!r}: unknown format {bad[0] if bad else '(none)'}; choose from {', '.join(FORMATS)}")
    return formats


def pick_candidates(trials: pd.DataFrame, pick: str, *, target_ms: float | None) -> tuple[pd.DataFrame, float | None]:
    """The configs that answer ``pick``, best first, and the latency limit (ms) they answer to.

    ``fastest``: the fastest config (no limit); ``best``: lowest loss within the run's target;
    ``latency<=X``: lowest loss within X ms. Losses compare only on the final token budget.
    """
    if trials.empty:
        raise PruneSearchError("the run has no evaluated configs to export")
    if pick == "fastest":
        return trials.loc[[trials.latency_ms.idxmin()]], None
    if pick == "best":
        limit = target_ms
    elif (m := re.fullmatch(r"latency<=([0-9.]+)", pick.replace(" ", ""))) is not None:
        limit = float(m.group(1))
    else:
        raise PruneSearchError(f"--pick {pick!r}: use fastest, best or latency<=MS (e.g. latency<=8.5)")
    final = trials[trials.tokens == trials.tokens.max()]
    within = final if limit is None else final[final.latency_ms <= limit]
    if within.empty:
        raise PruneSearchError(
            f"no evaluated config is predicted at or under {limit:.3f} ms; the fastest is {trials.latency_ms.min():.3f} ms"
        )
    return within.sort_values(["loss", "latency_ms"], kind="stable"), limit


def pick_trial(trials: pd.DataFrame, pick: str, *, target_ms: float | None) -> pd.Series:
    """The one config ``pick`` names (see ``pick_candidates``)."""
    return pick_candidates(trials, pick, target_ms=target_ms)[0].iloc[0]


def write_export(
    loaded,
    config: Config,
    out: Path,
    *,
    source=None,
    formats: list[str],
    table_path: Path | None = None,
    target_ms: float | None = None,
) -> ExportManifest:
    """Prune, write the formats, measure the ONNX graph on the table's conditions, write export.json."""
    from prunesearch.io import save
    from prunesearch.prune.apply import prune

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PruneSearchError(f"cannot write to output folder {out}: {exc.strerror}") from None
    pruned = prune(loaded.model, config, source)
    if "hf" in formats:
        save(pruned, out, tokenizer=loaded.tokenizer)
    predicted = measured = diff = None
    conditions = backend = None
    if table_path is not None:
        from prunesearch.oracle import LatencyTable, Predictor
        from prunesearch.space import adapter_for

        table = LatencyTable.load(table_path)
        conditions, backend = table.conditions.model_dump(), table.conditions.backend
        predicted = Predictor(table, adapter_for(loaded.model).space(ffn_step=table.conditions.ffn_step)).config_latency_ms(config)
    if "onnx" in formats or "tensorrt" in formats:
        from prunesearch.export.onnx import check_onnx, export_onnx

        # without a table: a 128-token example, or shorter when the model's positions end earlier
        longest = getattr(loaded.model.config, "max_position_embeddings", None) or 128
        c = conditions or {"batch": 1, "seq_len": min(128, longest)}
        # a decode table's export is its KV-cache decode step, of the table's new tokens per step
        decode = c.get("phase") == "decode"
        cache_len = c["cache_len"] if decode else None
        onnx_path = export_onnx(pruned, out / "model.onnx", batch=c["batch"], seq_len=c["seq_len"], cache_len=cache_len)
        diff = check_onnx(pruned, onnx_path, seq_len=c["seq_len"] if decode else 16, cache_len=cache_len)
        if conditions is not None and backend == "ort-cpu":
            from prunesearch.oracle import measure_onnx

            measured = measure_onnx(
                onnx_path, batch=c["batch"], seq_len=c["seq_len"], threads=c["threads"],
                vocab=loaded.model.config.vocab_size, cache_len=c["cache_len"], budget_s=3.0,
            ).latency_ms
    if "tensorrt" in formats:
        from prunesearch.export.tensorrt import build_engine

        build_engine(out / "model.onnx", out / "model.plan", conditions=conditions)
    manifest = ExportManifest(
        model=loaded.name, config=config.to_dict(), table=None if table_path is None else str(table_path),
        target_ms=target_ms, predicted_ms=predicted, measured_ms=measured, backend=backend,
        conditions=conditions, formats=formats, onnx_max_abs_diff=diff,
        exported_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    atomic_write_text(out / MANIFEST, manifest.model_dump_json(indent=2))
    return manifest


def export_within(
    loaded,
    candidates: pd.DataFrame,
    out: Path,
    *,
    limit_ms: float | None,
    tries: int = 3,
    tolerance: float = 0.0,
    on_miss=None,
    **export_options,
) -> ExportManifest:
    """Export the best candidate (``pick_candidates`` order) whose MEASURED latency is within
    ``limit_ms`` (+ ``tolerance``), trying at most ``tries``.

    A miss shows how far the table is off here for configs like the one tried, so the next
    candidate is the best one predicted to fit after that correction. Without a limit, or
    without a measurement (no table, or a table of another backend), the first is exported.
    When every try misses, the last one tried stays in ``out`` and is returned.
    """
    allowed = None if limit_ms is None else limit_ms * (1 + tolerance)
    correction, tried, manifest = 1.0, [], None
    for _ in range(max(tries, 1)):
        fits = candidates.drop(index=tried)
        if allowed is not None:
            fits = fits[fits.latency_ms * correction <= allowed]
        if fits.empty:
            break
        row = fits.iloc[0]
        manifest = write_export(loaded, Config.from_dict(row.config), out, **export_options)
        if allowed is None or manifest.measured_ms is None or manifest.measured_ms <= allowed:
            return manifest
        tried.append(row.name)
        correction = max(correction, manifest.measured_ms / manifest.predicted_ms)
        if on_miss is not None:
            on_miss(manifest, allowed)
    return manifest


def read_manifest(folder: Path) -> ExportManifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise PruneSearchError(f"{folder} holds no {MANIFEST}; pass a folder written by `prunesearch export`")
    try:
        return ExportManifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise PruneSearchError(f"{path}: corrupt export manifest ({str(exc).splitlines()[0]})") from None

"""Profile a latency table with ONNX Runtime on this CPU.

Every row comes from a whole pruned model exported to ONNX and timed as is, so
what the table holds is what a deployed model runs: ``base`` = every block
removed; ``attn[h]`` = every layer keeps h heads and no FFN, minus base, divided
by the number of layers (a per-layer cost seen at full depth, with its noise
averaged over the layers); likewise ``ffn[w]``. A dozen random whole models,
never used for the rows, then fit the calibration.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prunesearch.config import Config, LayerConfig
from prunesearch.export.onnx import export_onnx
from prunesearch.models import LoadedModel
from prunesearch.oracle.conditions import Conditions, cpu_name
from prunesearch.oracle.measure import Measurement, measure_onnx
from prunesearch.oracle.table import TIMES, Calibration, LatencyTable, TableMeta
from prunesearch.prune.apply import prune
from prunesearch.space import Space, adapter_for


def conditions_for(loaded: LoadedModel, *, batch: int, seq_len: int, threads: int, ffn_step: int) -> Conditions:
    return Conditions(
        device=cpu_name(), backend="ort-cpu", backend_version=ort.__version__, threads=threads,
        batch=batch, seq_len=seq_len, phase="prefill" if loaded.is_decoder else "encode",
        model=loaded.name, model_hash=loaded.weights_hash, ffn_step=ffn_step,
    )


def _every_layer(space: Space, *, heads: int, ffn: int) -> Config:
    return Config(layers=(LayerConfig(heads=heads, ffn=ffn),) * space.n_layers)


def profile_table(
    loaded: LoadedModel,
    *,
    batch: int = 1,
    seq_len: int = 128,
    threads: int = 1,
    ffn_step: int = 128,
    calibration_models: int = 12,
    budget_s: float = 1.0,
    seed: int = 0,
    console=None,
) -> LatencyTable:
    started = time.monotonic()
    space = adapter_for(loaded.model).space(ffn_step=ffn_step)
    layer = space.layers[0]
    if any(l != layer for l in space.layers):
        raise NotImplementedError("tables assume layers of one shape; this model's layers differ")
    jobs = [("base", 0, _every_layer(space, heads=0, ffn=0))]
    jobs += [("attn", h, _every_layer(space, heads=h, ffn=0)) for h in layer.heads[1:]]
    jobs += [("ffn", w, _every_layer(space, heads=0, ffn=w)) for w in layer.ffn[1:]]
    rng = np.random.default_rng(seed)
    calib = [space.from_genome(rng.integers(0, space.genome_upper + 1)) for _ in range(calibration_models)]
    vocab = loaded.model.config.vocab_size

    def measure(config: Config, workdir: Path) -> Measurement:
        path = export_onnx(prune(loaded.model, config, ffn_step=ffn_step), workdir / "m.onnx", batch=batch, seq_len=seq_len)
        return measure_onnx(path, batch=batch, seq_len=seq_len, threads=threads, vocab=vocab, budget_s=budget_s)

    rows, measured = [], {}
    with tempfile.TemporaryDirectory() as tmp, Progress(
        TextColumn("[bold]profile[/] {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bar:
        task = bar.add_task(f"{loaded.name} b{batch} s{seq_len} t{threads}", total=len(jobs) + len(calib))
        for kind, size, config in jobs:
            bar.update(task, description=f"{loaded.name} {kind} {size}")
            measured[(kind, size)] = measure(config, Path(tmp))
            bar.advance(task)
        base = measured[("base", 0)]
        for (kind, size), m in measured.items():
            if kind == "base":
                times = {k: getattr(m, k) for k in TIMES}
            else:
                times = {k: (getattr(m, k) - getattr(base, k)) / space.n_layers for k in TIMES}
            rows.append({"kind": kind, "size": size, **times, "runs": m.runs})
        meta = TableMeta(
            conditions=conditions_for(loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step),
            profiled_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            profiling_seconds=0.0,
            notes="rows: (whole model with every layer at that level, other block kind removed) minus base, "
            "per layer; measured with ONNX Runtime",
        )
        table = LatencyTable(pd.DataFrame(rows), meta)
        sums, truths = [], []
        from prunesearch.oracle.predictor import Predictor

        raw = Predictor(table, space, calibrated=False)
        for config in calib:
            bar.update(task, description=f"{loaded.name} calibration model")
            truths.append(measure(config, Path(tmp)).latency_ms)
            sums.append(float(raw.raw_ms(space.to_genome(config))[0]))
            bar.advance(task)
    if len(calib) >= 2:
        scale, offset = np.polyfit(sums, truths, 1)
        meta.calibration = Calibration(scale=float(scale), offset_ms=float(offset), n_models=len(calib))
    meta.profiling_seconds = round(time.monotonic() - started, 1)
    return table

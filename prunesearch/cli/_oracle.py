"""``prunesearch profile`` and ``prunesearch predict``: measure a device's table, query it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from prunesearch._workload import Phase, Precision
from prunesearch.cli._app import app, console, reporter


def workload_from(**fields):
    """The CLI's workload options as one Workload, refused in one line where they do not fit together."""
    from pydantic import ValidationError

    from prunesearch._workload import Workload
    from prunesearch.errors import PruneSearchError

    try:
        return Workload(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PruneSearchError(
            f"{'.'.join(map(str, first['loc'])) or 'workload'}: {first.get('ctx', {}).get('error', first['msg'])}"
        ) from None


@app.command()
def profile(
    model: str = typer.Option("minilm", "--model", help="model alias or local HF folder"),
    backend: str = typer.Option(
        "ort-cpu",
        "--backend",
        help="measurement backend (`prunesearch list` shows them all and which run here); one missing here "
        "exits 4 naming what to install",
    ),
    precision: Precision = typer.Option(
        "fp32", "--precision", help="weights and activations as timed (fp16/bf16 on backends that run them)"
    ),
    batch: int = typer.Option(1, "--batch", min=1),
    seq: int = typer.Option(None, "--seq", min=1, help="tokens per run (default 128; decode: 1 new token per step)"),
    phase: Phase = typer.Option(
        None,
        "--phase",
        help="decode: one KV-cache decode step (decoders; needs --cache-len); default the model's "
        "full-sequence pass (prefill or encode)",
    ),
    cache_len: int = typer.Option(0, "--cache-len", min=0, help="decode: tokens already in the KV cache"),
    threads: int = typer.Option(1, "--threads", min=1, help="intra-op threads"),
    ffn_step: int = typer.Option(128, "--ffn-step", min=1, help="FFN width grid step"),
    out: Path = typer.Option(
        None, "--out", help="table path: PATH.csv and PATH.json (default: latency_tables/<device>/<model>-...csv)"
    ),
    bundle: Path = typer.Option(
        None,
        "--emit-bundle",
        help="instead of measuring here, write DIR to run on a remote "
        "device (ONNX graphs, manifest.json, run_bundle.py: needs python3, numpy, onnxruntime)",
    ),
    results: Path = typer.Option(
        None, "--import", help="build the table from the results.json that run_bundle.py wrote on the device"
    ),
    power_s: float = typer.Option(
        0.0,
        "--power-s",
        min=0.0,
        help="seconds each model also runs back to back for its energy per inference (NVML on a GPU, a "
        "board's power rails): the table gains an energy_mj column; 0 = none",
    ),
) -> None:
    """Measure a latency table here, or emit and import a remote device's bundle.

    Every block at every level, as whole models timed side by side with the dense model, with --backend; or
    write a bundle for a remote device (--emit-bundle) and build the table from its results (--import)."""
    from prunesearch._models import load_model
    from prunesearch.errors import PruneSearchError
    from prunesearch.oracle import Conditions, device_slug, profile_table
    from prunesearch.oracle._bundle import emit_bundle, import_results
    from prunesearch.oracle._ensure import SHIPPED
    from prunesearch.oracle.profilers import profiler_for

    if power_s and (results is not None or bundle is not None):
        raise PruneSearchError(
            "--power-s is for profiling here; a bundle's energy is measured on the device "
            "(`python3 run_bundle.py --power-s 2`, the default there): drop --power-s"
        )
    if results is not None:
        table = import_results(results)
        c = table.conditions
        path = table.save(out or SHIPPED / device_slug(c.device) / c.file_name())
        console.print(f"wrote {path} (measured on {c.device}, {c.backend} {c.backend_version})")
        return
    workload = workload_from(
        backend=backend,
        precision=precision,
        batch=batch,
        seq_len=seq,
        phase=phase,
        cache_len=cache_len,
        threads=threads,
    )
    if bundle is not None:
        emit_bundle(load_model(model), bundle, workload, ffn_step=ffn_step, reporter=reporter)
        console.print(
            f"wrote {bundle}: copy it to the device, run `python3 run_bundle.py` there, then "
            f"`prunesearch profile --import {bundle}/results.json`"
        )
        return

    profiler = profiler_for(backend)
    profiler.check()  # before the model loads: a missing backend fails at once
    if power_s and not profiler.reads_energy():
        raise PruneSearchError(
            f"--power-s: backend {backend!r} reads no energy counter here (energy needs NVML on an NVIDIA GPU, "
            "or a board's power rails: profile it with --emit-bundle); drop --power-s"
        )
    loaded = load_model(model)
    conditions = Conditions.here(loaded, workload, ffn_step=ffn_step)
    table = profile_table(loaded, conditions, reporter=reporter, power_s=power_s)
    c = table.conditions
    path = table.save(out or SHIPPED / device_slug(c.device) / c.file_name())
    m, cal = table.meta, table.meta.calibration
    console.print(
        f"wrote {path} ({m.profiling_seconds:.0f} s; dense {m.dense_ms:.3f} ms, drifting "
        f"{m.dense_p10_ms:.3f}-{m.dense_p90_ms:.3f} ms while profiling; calibration x{cal.scale:.3f} "
        f"{cal.offset:+.4f}, residual {cal.rms:.2%} of dense on {cal.n_models} whole models)"
    )


@app.command()
def predict(
    config: Path = typer.Option(..., "--config", help="pruning config JSON"),
    table: Path = typer.Option(None, "--table", help="latency table CSV (its JSON beside it)"),
    run: Path = typer.Option(
        None,
        "--run",
        help="instead of --table: a run folder; predicts with its table corrected by every config the run measured",
    ),
    prefill_table: Path = typer.Option(
        None,
        "--prefill-table",
        help="with a decode --table: the same model's prefill table, for the time to first token",
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Predict a config's speed-up, latency and energy from a table, or from a run's corrected oracle.

    The speed-up over the dense model, and milliseconds at the dense model's time as measured with the table,
    in microseconds of work: no model is built. A decode table also gives tokens per second; with
    --prefill-table, the time to first token too; a table with an energy_mj column, energy per inference."""
    from prunesearch._config import Config
    from prunesearch._run import Run
    from prunesearch.errors import PruneSearchError
    from prunesearch.oracle import LatencyTable, Oracle, decoder_speed, table_space

    if (table is None) == (run is None):
        raise PruneSearchError("give --table TABLE, or --run RUN to predict with a run's corrected oracle")
    run_oracle = None if run is None else Run.open(run).oracle()
    t = run_oracle.table if run_oracle is not None else LatencyTable.load(table)
    prefill = None if prefill_table is None else LatencyTable.load(prefill_table)
    cfg = Config.load(config)

    def oracle(of: LatencyTable) -> Oracle:
        space = table_space(of)
        space.validate(cfg)  # a config for another depth, or a head count the model does not have, is refused
        return Oracle(of, space)

    p = run_oracle if run_oracle is not None else oracle(t)
    if run_oracle is not None:
        p.space.validate(cfg)
    c = p.conditions
    ms = p.config_ratio(cfg) * p.reference_ms
    facts = {
        "latency_ms": ms,
        "speedup": p.config_speedup(cfg),
        "dense_ms": p.reference_ms,
        "table": str(t.path),
        "corrected_by": len(p.measurements),
        "device": c.device,
        "backend": c.backend,
        "batch": c.batch,
        "seq_len": c.seq_len,
        "phase": c.phase,
    }
    energy = p.energy_mj(p.space.to_genome(cfg))
    if energy is not None:
        facts["energy_mj"] = float(energy[0])
    if c.phase == "decode":
        facts |= {"cache_len": c.cache_len, "tokens_per_s": 1000.0 / ms if c.seq_len == 1 else None}
    if prefill is not None:
        speed = decoder_speed(oracle(prefill).predictor, p.predictor, cfg)
        facts |= {"ttft_ms": speed.ttft_ms, "tokens_per_s": speed.tokens_per_s}
    if as_json:
        print(json.dumps(facts))
        return
    cached = f", {c.cache_len} cached" if c.phase == "decode" else ""
    console.print(
        f"{facts['speedup']:.3f}x over dense predicted: {ms:.3f} ms where the dense model takes "
        f"{p.reference_ms:.3f} ms ({c.backend}, {c.phase}, batch {c.batch}, seq {c.seq_len}{cached}, {c.device})"
    )
    if "energy_mj" in facts:
        console.print(f"{facts['energy_mj']:.3f} mJ per inference predicted")
    if facts.get("tokens_per_s"):
        ttft = f"; time to first token {facts['ttft_ms']:.3f} ms" if "ttft_ms" in facts else ""
        console.print(f"{facts['tokens_per_s']:.1f} tokens/s per sequence{ttft}")

"""Write a chosen config as a real, smaller model: HF safetensors, ONNX, a TensorRT engine, GGUF, and export.json."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from prunesearch._config import Config
from prunesearch._objectives import Constraint
from prunesearch._workload import BYTES
from prunesearch.errors import PruneSearchError
from prunesearch.export._manifest import Candidate, ExportManifest, Written
from prunesearch.graph._onnx import vocab_of


def writable(out: Path) -> Path:
    """``out``, created; refused with the reason before any work when it cannot be written."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PruneSearchError(f"cannot write to output folder {out}: {exc.strerror}") from None
    return out


def check_formats(model, formats: list[str]) -> None:
    """Refuse, before any work, a format that cannot be written for ``model`` (the dense model)."""
    if "gguf" in formats:
        from prunesearch.export._gguf import check_gguf

        check_gguf(model)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_export(
    loaded,
    config: Config,
    out: Path,
    *,
    formats: list[str],
    source=None,
    conditions=None,
    table: Path | None = None,
    target: list[Constraint] | None = None,
    predicted: dict[str, float] | None = None,
    measured=None,
    candidates: list[Candidate] | None = None,
    measurements: list | None = None,
    graph: Path | None = None,
    pruned=None,
    quality: dict | None = None,
    recovery: dict | None = None,
) -> ExportManifest:
    """Prune ``config`` (units from ``source``, a level database), write ``formats`` and export.json.

    ``conditions`` (a table's): the workload the ONNX graph is exported for (precision, batch, inputs, a
    decode step), and what ``measured`` (a Measurement beside the dense model) was measured under;
    ``measurements``: every config the run measured (oracle.MeasuredConfig);
    ``graph``: that measured graph, copied as model.onnx rather than exported again. ``pruned``: the model to
    write when it is not ``config`` pruned afresh (recovery trained it); ``quality``, ``recovery``: what
    recovery did to it, recorded."""
    from prunesearch.graph._onnx import check_onnx, export_for, export_onnx
    from prunesearch.prune._apply import prune

    check_formats(loaded.model, formats)
    out = writable(out)
    pruned = pruned if pruned is not None else prune(loaded.model, config, source)
    written: list[Written] = []
    skipped: dict[str, str] = {}
    if "hf" in formats:
        from prunesearch.export._hf import write_hf

        written, skipped = write_hf(loaded, pruned, out)
    diff = engine = engine_measured = None
    if "onnx" in formats or "tensorrt" in formats:
        c = conditions
        if graph is not None:
            shutil.copyfile(graph, out / "model.onnx")
        elif c is not None:
            export_for(pruned, out / "model.onnx", c)
        else:  # without a table: a 128-token example, or shorter where the model's positions end earlier
            longest = getattr(loaded.model.config, "max_position_embeddings", None) or 128
            export_onnx(pruned, out / "model.onnx", batch=1, seq_len=min(128, longest))
        if c is None or c.precision == "fp32":  # ONNX Runtime CPU checks fp32 graphs against torch
            decode = c is not None and c.phase == "decode"
            diff = check_onnx(
                pruned,
                out / "model.onnx",
                seq_len=c.seq_len if decode else 16,
                cache_len=c.cache_len if decode else None,
            )
        written.append(
            Written(format="onnx", files=["model.onnx"], notes=["onnxruntime.InferenceSession(DIR/model.onnx)"])
        )
    if "tensorrt" in formats:
        from prunesearch.graph._tensorrt import build_engine

        if conditions is None:
            raise PruneSearchError(
                "--to tensorrt builds the engine for a table's workload: export from a run, or with --table"
            )
        engine = build_engine(out / "model.onnx", out / "model.plan", workload=conditions, vocab=vocab_of(loaded.model))
        if conditions.backend == "tensorrt":  # the engine itself, timed beside the dense model as its table was
            from prunesearch.oracle._measure import dense_graph, time_side_by_side

            engine_measured = time_side_by_side(
                {"engine": engine},
                reference=dense_graph(loaded, conditions),
                workload=conditions,
                vocab=vocab_of(loaded.model),
            )["engine"]
        written.append(Written(format="tensorrt", files=[engine.name]))
    if "gguf" in formats:
        from prunesearch.export._gguf import GGUF_FILE, source_gguf, write_gguf

        notes = write_gguf(
            pruned, out / GGUF_FILE, name=loaded.name, tokenizer=loaded.tokenizer, tokenizer_gguf=source_gguf(loaded)
        )
        loads = "llama.cpp: llama-cli -m DIR/model.gguf; llama-cpp-python: Llama(model_path=DIR/model.gguf)"
        written.append(Written(format="gguf", files=[GGUF_FILE], notes=[loads, *notes]))
    params = int(sum(p.numel() for p in pruned.parameters()))
    manifest = ExportManifest(
        model=loaded.name,
        config=config.to_dict(),
        formats=formats,
        table=None if table is None else str(table),
        conditions=conditions,
        target=target or [],
        predicted=predicted or {},
        params=params,
        size_mb=params * BYTES[conditions.precision if conditions else "fp32"] / 1e6,
        measured=measured,
        candidates=candidates or [],
        measurements=measurements or [],
        quality=quality or {},
        recovery=recovery,
        onnx_max_abs_diff=diff,
        engine=None if engine is None else engine.name,
        engine_measured=engine_measured,
        written=written,
        skipped=skipped,
        exported_at=now(),
    )
    manifest.save(out)
    return manifest

"""Write a chosen config as a real, smaller model: HF safetensors, ONNX, a TensorRT engine, and export.json."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from prunesearch.config import Config
from prunesearch.errors import PruneSearchError
from prunesearch.export.manifest import Candidate, ExportManifest, Limit, Measured, Predicted


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


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_export(
    loaded,
    config: Config,
    out: Path,
    *,
    formats: list[str],
    source=None,
    conditions=None,
    table: Path | None = None,
    target: Limit | None = None,
    predicted: Predicted | None = None,
    measured=None,
    candidates: list[Candidate] | None = None,
    graph: Path | None = None,
) -> ExportManifest:
    """Prune ``config`` (units from ``source``, a level database), write ``formats`` and export.json.

    ``conditions`` (a table's): the shapes the ONNX graph is exported for, and what ``measured`` (a
    PairedMeasurement beside the dense model) was measured under; ``graph``: that measured graph,
    copied as model.onnx rather than exported again."""
    from prunesearch.export.onnx import check_onnx, export_onnx
    from prunesearch.io import save
    from prunesearch.prune.apply import prune

    out = writable(out)
    pruned = prune(loaded.model, config, source)
    if "hf" in formats:
        save(pruned, out, tokenizer=loaded.tokenizer)
    diff = None
    if "onnx" in formats or "tensorrt" in formats:
        c = conditions
        decode = c is not None and c.phase == "decode"  # a decode table's export is its KV-cache decode step
        cache_len = c.cache_len if decode else None
        if graph is not None:
            shutil.copyfile(graph, out / "model.onnx")
        else:  # without a table: a 128-token example, or shorter where the model's positions end earlier
            longest = getattr(loaded.model.config, "max_position_embeddings", None) or 128
            export_onnx(pruned, out / "model.onnx", batch=c.batch if c else 1,
                        seq_len=c.seq_len if c else min(128, longest), cache_len=cache_len)
        diff = check_onnx(pruned, out / "model.onnx", seq_len=c.seq_len if decode else 16, cache_len=cache_len)
    if "tensorrt" in formats:
        from prunesearch.export.tensorrt import build_engine

        build_engine(out / "model.onnx", out / "model.plan", conditions=None if conditions is None else conditions.model_dump())
    manifest = ExportManifest(
        model=loaded.name, config=config.to_dict(), formats=formats, table=None if table is None else str(table),
        backend=None if conditions is None else conditions.backend,
        conditions=None if conditions is None else conditions.model_dump(), target=target, predicted=predicted,
        measured=None if measured is None else Measured.of(measured, backend=conditions.backend),
        candidates=candidates or [], onnx_max_abs_diff=diff, exported_at=now(),
    )
    manifest.save(out)
    return manifest

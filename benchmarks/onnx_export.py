"""ONNX export with and without constant folding: what the exporter holds, the file it writes, how the graph runs.

Each model is exported dense, as every measurement's reference graph is, under the workload of its shipped tables:
SmolLM2-135M as one decode step after 256 cached tokens, MiniLM as a full pass of 128 tokens. Each way of exporting
(folded: the exporter writes the weights; unfolded, the default: they are streamed into the file after the graph)
runs in a fresh process that reports its resident memory before the export, the peak during it (VmHWM, reset just
before through /proc/self/clear_refs, so loading the model does not count), the seconds and the file's size. Then
the two graphs are timed side by side with ONNX Runtime by the oracle's own timer (the folded graph as the
reference) and their outputs compared on the same inputs.

    .venv/bin/python benchmarks/onnx_export.py [--models smollm2 minilm]

Linux only (/proc). Writes reports/onnx_export.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import child_result  # noqa: E402

#: the child: one export in a fresh process; its figures as JSON on stdout's last line
CHILD = """
import json, sys, time
from pathlib import Path
from prunesearch._models import load_model
from prunesearch.graph._onnx import export_for
from prunesearch._workload import Workload

name, path, fold, workload = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "fold", json.loads(sys.argv[4])
model = load_model(name).model

def status_mb(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
    return int(line.split()[1]) / 1024

Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from what is resident now
before = status_mb("VmRSS")
started = time.monotonic()
export_for(model, path, Workload.model_validate(workload), fold_constants=fold)
print(json.dumps({
    "seconds": time.monotonic() - started, "before_mb": before, "peak_mb": status_mb("VmHWM"),
    "file_mb": path.stat().st_size / 1e6,
}))
"""
#: the workload of each model's shipped tables
WORKLOADS = {
    "smollm2": {"phase": "decode", "seq_len": 1, "cache_len": 256, "inputs": "tokens"},
    "minilm": {"phase": "encode", "seq_len": 128, "inputs": "tokens"},
}
WAYS = {"folded": "fold", "unfolded": "keep"}


def export_in_child(name: str, path: Path, way: str) -> dict:
    return child_result(
        CHILD, name, str(path), way, json.dumps(WORKLOADS[name]), cwd=ROOT, what=f"export of {name} ({way})"
    )


def max_output_diff(a: Path, b: Path, *, plan: dict) -> float:
    """Max |a - b| of the two graphs' outputs on the same inputs."""
    import numpy as np

    from prunesearch.standalone.run_bundle import feeds_for, ort_session

    sessions = [ort_session(p, threads=1) for p in (a, b)]
    feeds = feeds_for(sessions[0], plan=plan)
    out_a, out_b = (s.run(None, feeds)[0] for s in sessions)
    return float(np.abs(out_a - out_b).max())


def compare(name: str, folder: Path) -> dict:
    from prunesearch._models import load_model
    from prunesearch._workload import Workload
    from prunesearch.graph._onnx import graph_plan, vocab_of
    from prunesearch.oracle._measure import time_side_by_side

    paths = {label: folder / f"{name}-{label}.onnx" for label in WAYS}
    exports = {label: export_in_child(name, paths[label], way) for label, way in WAYS.items()}
    workload = Workload.model_validate(WORKLOADS[name])
    vocab = vocab_of(load_model(name).model)
    timed = time_side_by_side(
        {"unfolded": paths["unfolded"]}, reference=paths["folded"], workload=workload, vocab=vocab
    )
    measured = timed["unfolded"]
    return {
        "model": name,
        "workload": workload.describe(),
        "exports": exports,
        "time_ratio": measured.ratio,
        "time_ratio_se": measured.se,
        "rounds": measured.rounds,
        "folded_ms": timed.reference_ms,
        "max_abs_diff": max_output_diff(paths["folded"], paths["unfolded"], plan=graph_plan(workload, vocab=vocab)),
    }


def report(results: list[dict], argv: list[str]) -> str:
    lines = [
        "# ONNX export: constant folding",
        "",
        f"Command: `.venv/bin/python benchmarks/onnx_export.py {' '.join(argv)}`; {dt.date.today()}. Dense models, "
        "each export a fresh process; peak = VmHWM during the export alone; time ratio = unfolded graph / folded "
        "graph with ONNX Runtime, the median of paired rounds by the oracle's timer (standard error beside it).",
        "",
        "| model | workload | export | file (MB) | resident before (MB) | peak during export (MB) | "
        "export adds (MB) | seconds |",
        "|:--|:--|:--|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        for label, e in r["exports"].items():
            lines.append(
                f"| {r['model']} | {r['workload']} | {label} | {e['file_mb']:.0f} | {e['before_mb']:.0f} | "
                f"{e['peak_mb']:.0f} | {e['peak_mb'] - e['before_mb']:.0f} | {e['seconds']:.1f} |"
            )
    lines += ["", "| model | folded graph (ms) | unfolded / folded time | rounds | max abs output difference |"]
    lines += ["|:--|--:|--:|--:|--:|"]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['folded_ms']:.2f} | {r['time_ratio']:.3f} ± {r['time_ratio_se']:.3f} | "
            f"{r['rounds']} | {r['max_abs_diff']:.2e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS, reverse=True))
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "onnx_export.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="onnx-export-") as folder:
        results = []
        for name in args.models:
            results.append(compare(name, Path(folder)))
            print(json.dumps(results[-1]), flush=True)
    text = report(results, sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

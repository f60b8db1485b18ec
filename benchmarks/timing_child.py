"""Three measurements of the ONNX Runtime timing child, each from fresh processes, on one model's graphs.

1. **Memory of a window's pair by weight layout.** The child holds the dense graph's session beside one
   candidate's. Each run is a fresh process that opens both as the child does (``run_bundle.graph_runner``),
   runs each a few times and reports its high-water mark (``VmHWM``): the graphs as prunesearch writes them
   (weights inside the .onnx file), against the same graphs with their weights in an external data file.
2. **The reference timed beside itself.** Each run is a fresh process timing the dense graph beside the dense
   graph again (``run_bundle.time_paired``, the child's own loop): a harness without bias gives 1.000. Also with
   a small graph's session (MiniLM's) opened before the reference.
3. **The candidate's speed-up by the child's loop and by the independent timer** (benchmarks/side_by_side.py:
   each model alone in a fresh process, ``--pairs`` dense/candidate pairs), both ways of opening the child's
   sessions.

The dense graph and a candidate (every layer at ``--keep`` of its heads and FFN width) are written once, with
prunesearch's exporter; every variant alternates with the others, round by round.

    .venv/bin/python benchmarks/timing_child.py --rounds 3

Writes reports/timing_child.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import child_result  # noqa: E402
from side_by_side import side_by_side  # noqa: E402  (the independent timer: no prunesearch code inside)

from prunesearch.oracle import cpu_name  # noqa: E402

#: the graphs: dense and one candidate in both weight layouts, and a small encoder's graph to open first
WRITE = """
import json, sys
from pathlib import Path
import numpy as np
import onnx
import prunesearch as ps
from prunesearch._hf import is_causal_lm
from prunesearch._workload import Workload
from prunesearch.graph._onnx import export_for, vocab_of
from prunesearch.oracle import TimingOptions
from prunesearch.oracle._timing import timing_plan
from prunesearch.prune._apply import prune

model, keep, out = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
loaded = ps.load_model(model)
if is_causal_lm(loaded.model.config):  # a decode step, as the decode specs time
    workload = Workload(batch=1, seq_len=1, threads=1, phase="decode", cache_len=256)
else:
    workload = Workload(batch=1, seq_len=128, threads=1)
space = ps.adapter_for(loaded.model).space()
export_for(loaded.model, out / "dense.onnx", workload)
pruned = prune(loaded.model, space.from_genome(np.rint(space.genome_upper * keep).astype(int)))
export_for(pruned, out / "candidate.onnx", workload)
for name in ("dense", "candidate"):
    graph = onnx.load(str(out / f"{name}.onnx"))
    onnx.save_model(graph, str(out / f"{name}-external.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=f"{name}-external.onnx.data", size_threshold=1024)
small = ps.load_model("minilm")
export_for(small.model, out / "small.onnx", Workload(batch=1, seq_len=128, threads=1))
# the manifest the timing child reads, as prunesearch writes it
print(json.dumps({"plan": timing_plan(workload, vocab=vocab_of(loaded.model), graphs=[], options=TimingOptions())}))
"""

#: the timing child's own functions, loaded from its file as the child runs it (nothing of prunesearch imported)
BUNDLE = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("run_bundle", "prunesearch/standalone/run_bundle.py")
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)
plan = json.loads(sys.argv[1])
rb.share_thread_pool(plan["workload"]["threads"])
def runner(path):
    return rb.graph_runner(Path(path), plan=plan, provider="CPUExecutionProvider")
def high_water_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
"""

PAIR = (
    BUNDLE
    + """
runners = [runner(p) for p in sys.argv[2:]]
for r in runners:
    r.block(5)
print(json.dumps({"peak_mb": high_water_mb()}))
"""
)

#: the reference (argv 2) and one job (argv 3) timed side by side, after opening argv 4's session where given
PAIRED = (
    BUNDLE
    + """
first = runner(sys.argv[4]) if len(sys.argv) > 4 else None
reference = runner(sys.argv[2])
out = rb.time_paired(reference, {"job": lambda: runner(sys.argv[3])}, min_rounds=10, max_rounds=30, rel_se=0.003)
print(json.dumps({k: out["jobs"]["job"][k] for k in ("ratio", "se", "rounds")}))
"""
)


def _ratio(measured: dict) -> str:
    return f"{measured['ratio']:.3f} ({measured['se']:.3f})"


def _ratio_rows(title: str, ratios: dict[str, list[dict]], *, invert: bool = False) -> list[str]:
    """A table of the child's loop's results by variant: ratios, or speed-ups (``invert``)."""

    def value(x: dict) -> float:
        return 1 / x["ratio"] if invert else x["ratio"]

    return [
        f"| {title} | per round | median |",
        "|:--|:--|--:|",
        *(
            f"| {name} | {', '.join(f'{value(x):.3f}' if invert else _ratio(x) for x in rs)} | "
            f"{statistics.median(value(x) for x in rs):.3f} |"
            for name, rs in ratios.items()
        ),
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--keep", type=float, default=0.8, help="the candidate's share of each layer's heads and FFN")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=4, help="independent timer: dense/candidate pairs per round")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "timing_child.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="timing-child-") as tmp:
        g = Path(tmp)
        plan = child_result(WRITE, args.model, str(args.keep), tmp, cwd=ROOT, what="writing the graphs")["plan"]
        pairs = {
            "weights in the .onnx (as written)": [g / "dense.onnx", g / "candidate.onnx"],
            "weights in an external data file": [g / "dense-external.onnx", g / "candidate-external.onnx"],
        }
        dense, candidate = g / "dense.onnx", g / "candidate.onnx"
        opened = {"the reference opened first": [], "a small graph opened first": [g / "small.onnx"]}
        peaks = {name: [] for name in pairs}
        selves = {name: [] for name in opened}
        speedups = {name: [] for name in opened}
        independent = []
        w = plan["workload"]
        for r in range(args.rounds):
            for name, paths in pairs.items():
                got = child_result(PAIR, json.dumps(plan), *map(str, paths), cwd=ROOT, what=name)
                peaks[name].append(got["peak_mb"])
            for name, first in opened.items():
                for job, into in ((dense, selves), (candidate, speedups)):
                    got = child_result(
                        PAIRED, json.dumps(plan), str(dense), str(job), *map(str, first), cwd=ROOT, what=name
                    )
                    into[name].append(got)
            timer = side_by_side(
                str(dense),
                [str(candidate)],
                pairs=args.pairs,
                seq=w["seq_len"],
                batch=w["batch"],
                threads=w["threads"],
                cache=w["cache_len"],
            )
            independent.append(timer[str(candidate)]["pairs"])
            print(f"round {r + 1}: {peaks} {selves} {speedups} {independent}", flush=True)
    lines = [
        "# The timing child: memory by weight layout, and how its loop's ratios compare",
        "",
        f"Command: `.venv/bin/python benchmarks/timing_child.py {' '.join(sys.argv[1:])}`; {dt.date.today()}, "
        f"{cpu_name()}. {args.model}, {plan['workload']}; the candidate keeps {args.keep:.0%} of every layer's "
        "heads and FFN width. Each figure a fresh process; variants alternated round by round.",
        "",
        "| the dense graph's session beside the candidate's | peak RSS per round (MB) | median (MB) |",
        "|:--|:--|--:|",
        *(
            f"| {name} | {', '.join(f'{p:.0f}' for p in ps)} | {statistics.median(ps):.0f} |"
            for name, ps in peaks.items()
        ),
        "",
        *_ratio_rows("the dense graph timed beside itself by the child's loop: ratio (standard error)", selves),
        *_ratio_rows("the candidate's speed-up by the child's loop", speedups, invert=True),
        f"The independent timer (`benchmarks/side_by_side.py`, {args.pairs} pairs of fresh processes a round): "
        + "; ".join(
            f"round {r + 1} {statistics.median(p):.3f}x ({min(p):.3f}-{max(p):.3f})" for r, p in enumerate(independent)
        )
        + f"; median of all pairs **{statistics.median(x for p in independent for x in p):.3f}x**.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

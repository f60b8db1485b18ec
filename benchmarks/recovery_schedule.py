"""Recovery schedules compared on one pick: held-out quality after refit and distillation under each.

A spec's config (default: the 1.25x evolution pick of reports/search_quality_smollm2-decode.csv) is pruned from
the spec's level database once; each schedule (a JSON object of RecoveryOptions fields over the spec's
``recovery``) then refits and distils its own copy exactly as export does (export/recovery.recovered), and the
held-out scores after each stage are reported (perplexity for decoders; for encoders cosine to dense and, with
``--sts`` (default: STS-B dev beside the checkout, where it is), the STS Spearman users measure).

    .venv/bin/python benchmarks/recovery_schedule.py --spec searches/smollm2-decode.yaml \\
        --schedules '{"lr": 1e-4, "batch": 16}' '{"lr": 3e-4, "batch": 16}' '{"lr": 3e-4, "batch": 4}'
    .venv/bin/python benchmarks/recovery_schedule.py --spec searches/minilm-ort-cpu-2x.yaml \\
        --config "5/768 5/640 6/768 5/640 5/896 8/512" --schedules '{"lr": 1e-4}' '{"lr": 3e-4}'

Writes reports/recovery_schedule.{md,csv}.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
STS_DEV = ROOT.parent / "shared" / "data" / "stsb-en-dev.csv"
#: searches/smollm2-decode.yaml's 1.25x evolution pick (reports/search_quality_smollm2-decode.csv)
DECODE_PICK = (
    "9/1280 9/1280 6/1280 6/1152 9/1152 6/1152 6/1152 6/1152 6/1152 3/1152 6/896 9/1280 6/1024 6/1152 6/1152 "
    "6/1024 6/1024 6/1280 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152 6/1152"
)


def main() -> None:
    from prunesearch import load_spec, prepare
    from prunesearch._config import Config
    from prunesearch.export._recovery import recovered
    from prunesearch.prune import prune

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", type=Path, default=ROOT / "searches" / "smollm2-decode.yaml")
    ap.add_argument("--config", default=DECODE_PICK, help="heads/ffn per layer, space-separated")
    ap.add_argument("--schedules", nargs="+", default=['{"lr": 1e-4, "batch": 16}', '{"lr": 3e-4, "batch": 4}'])
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "recovery_schedule")
    ap.add_argument("--sts", type=Path, default=STS_DEV if STS_DEV.is_file() else None, help="encoders: STS pairs")
    args = ap.parse_args()

    spec = load_spec(args.spec)
    prepared = prepare(spec)
    calibration, database = prepared.database()
    sts = None if prepared.loaded.is_decoder else args.sts
    layers = [dict(zip(("heads", "ffn"), map(int, unit.split("/")), strict=True)) for unit in args.config.split()]
    pruned = prune(prepared.loaded.model, Config.from_dict({"layers": layers}), database)
    rows = []
    for schedule in args.schedules:
        override = json.loads(schedule)
        options = type(spec.recovery).model_validate({**spec.recovery.model_dump(), **override})  # refuses unknown keys
        torch.manual_seed(options.seed)
        started = time.monotonic()
        quality, record = recovered(prepared.loaded, copy.deepcopy(pruned), calibration, options=options, sts=sts)
        row = {"schedule": json.dumps(override), "seconds": round(time.monotonic() - started, 1)}
        row |= {"steps": (record or {}).get("steps"), "tokens": (record or {}).get("tokens")}
        for text, stages in quality.items():
            for stage, scores in stages.items():
                metric = next(m for m in ("perplexity", "spearman", "cosine") if m in scores)
                row[f"{text} {stage}"] = round(scores[metric], 2 if metric == "perplexity" else 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    command = " ".join(
        [
            "benchmarks/recovery_schedule.py",
            *("--spec", str(args.spec), "--config", repr(args.config), "--out", str(args.out)),
            *("--schedules", *map(repr, args.schedules)),
        ]
    )
    scored = "" if sts is None else f" STS: Spearman on {sts.name} (evaluation only, never trained on)."
    args.out.with_suffix(".md").write_text(
        f"# Recovery schedules on one pick\n\nCommand: `{command}`; {dt.date.today()}; config `{args.config}`."
        f"{scored}\n\n" + table.to_markdown(index=False) + "\n"
    )


if __name__ == "__main__":
    main()

"""Decoder recovery speed: training tokens per second of recovery distillation, and quality per token.

A SmolLM2-135M config (default uniform 6 heads / FFN 1024) is pruned from the level database and distilled
towards the dense model on the same calibration rows (batch 16 rows of 128 tokens, the same token budget) in a
fresh process per checkout: this one and, with ``--vs``, another (before/after a change), alternated A B A B.
Reported per run: tokens/s (training tokens over the whole recovery's seconds, the two validations included),
peak resident memory of the process, and perplexity after training on the calibration text's held-out part and
on the shipped fortunes, text from another domain (the same function in both: quality per token).

    .venv/bin/python benchmarks/recovery_speed.py --vs /path/to/old/checkout [--tokens 8192 --rounds 1]
    .venv/bin/python benchmarks/recovery_speed.py --set checkpointing=true --label-vs default   # two options

``--set`` / ``--set-vs`` give recovery options (``key=value``, the value as JSON) of this checkout's runs and of
the other's (without ``--vs``, this checkout again).

Writes reports/recovery_speed.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import child_result  # noqa: E402

from prunesearch.oracle import cpu_name  # noqa: E402

#: the child: one recovery in a fresh process; its result as JSON on stdout's last line
CHILD = """
import json, resource, sys, time
import torch
from prunesearch.space import adapter_for
try:
    from prunesearch._models import load_model
    from prunesearch._pipeline import build_database
    from prunesearch._quality import perplexity
    from prunesearch.prune._apply import prune
    from prunesearch.prune._recover import RecoveryOptions, recover
except ImportError:  # a checkout from before 67ea4b5, when these modules were public
    from prunesearch.models import load_model
    from prunesearch.pipeline import build_database
    from prunesearch.quality import perplexity
    from prunesearch.prune.apply import prune
    from prunesearch.prune.recover import RecoveryOptions, recover

def fortunes(model):  # perplexity on text of another domain (none where the checkout cannot read it)
    try:
        from prunesearch.prune._calibration import OUT_OF_DOMAIN, load_calibration
    except ImportError:
        return None
    rows, seq_len = calibration.rows, calibration.seq_len
    other = load_calibration(loaded.tokenizer, files=[OUT_OF_DOMAIN], seq_len=seq_len, rows=rows)
    return perplexity(model, other.heldout(4096))

tokens, heads, ffn, overrides = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
torch.manual_seed(0)
loaded = load_model("smollm2")
space = adapter_for(loaded.model).space()
calibration, database = build_database(loaded, space)
student = prune(loaded.model, space.uniform_config(heads=heads, ffn=ffn), database)
wanted = dict(tokens=tokens, batch=16, validate_every=10**6, calibration_share=1.0, top_k=256)
# an older checkout lacks some options: those it has are set, and listed in the result
options = RecoveryOptions(**{k: v for k, v in (wanted | overrides).items() if k in RecoveryOptions.model_fields})
started = time.monotonic()
result = recover(student, loaded.model, calibration, is_decoder=True, options=options)
seconds = time.monotonic() - started
print(json.dumps({
    "tokens": result.tokens, "seconds": seconds, "tokens_per_s": result.tokens / seconds,
    "perplexity_after": perplexity(student, calibration.heldout(4096)),
    "fortunes_after": fortunes(student),
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "options": sorted(options.model_dump()),
}))
"""


def run(checkout: Path, overrides: dict, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    values = (str(args.tokens), str(args.heads), str(args.ffn), json.dumps(overrides))
    return child_result(CHILD, *values, cwd=checkout, env=env, what=f"recovery ({checkout})")


def options_of(pairs: list[str]) -> dict:
    """``key=value`` pairs (values as JSON, else as text) as recovery options."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair}: expected key=value")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--vs", type=Path, help="another checkout to alternate with")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a recovery option of this run")
    ap.add_argument("--set-vs", action="append", default=[], metavar="KEY=VALUE", help="one of the other run")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--label-vs", default="other checkout")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "recovery_speed.md")
    args = ap.parse_args()
    compared = args.vs or args.set or args.set_vs
    variants = {args.label: (ROOT, options_of(args.set))}
    if compared:
        variants[args.label_vs] = ((args.vs or ROOT).resolve(), options_of(args.set_vs))
    rows = []
    for r in range(args.rounds):
        for label, (checkout, overrides) in variants.items():
            rows.append({"code": label, "round": r + 1, "set": overrides, **run(checkout, overrides, args)})
            print(rows[-1], flush=True)
    lines = [
        "# Decoder recovery speed",
        "",
        f"Command: `.venv/bin/python benchmarks/recovery_speed.py {' '.join(sys.argv[1:])}`; {dt.date.today()}; "
        f"CPU: {cpu_name()}, {os.cpu_count()} cores; "
        f"SmolLM2-135M uniform {args.heads} heads / FFN {args.ffn}, {args.tokens:,} training tokens of the "
        "calibration text in batches of 16 rows x 128 tokens unless set otherwise, each run a fresh process.",
        "",
        "| code | options set | round | tokens/s | seconds | peak RSS (MB) | held-out perplexity after | "
        "fortunes perplexity after |",
        "|:--|:--|--:|--:|--:|--:|--:|--:|",
        *(
            f"| {x['code']} | {', '.join(f'{k}={v}' for k, v in x['set'].items()) or '-'} | {x['round']} | "
            f"{x['tokens_per_s']:.0f} | {x['seconds']:.0f} | {x['peak_mb']:.0f} | {x['perplexity_after']:.2f} | "
            f"{'-' if x.get('fortunes_after') is None else format(x['fortunes_after'], '.2f')} |"
            for x in rows
        ),
        "",
    ]
    if compared:
        a = [x["tokens_per_s"] for x in rows if x["code"] == args.label]
        b = [x["tokens_per_s"] for x in rows if x["code"] == args.label_vs]
        lines += [f"tokens/s {args.label} / {args.label_vs}: **{sum(a) / sum(b):.2f}x** (same window, alternated).", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

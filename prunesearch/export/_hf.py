"""The Hugging Face folder of an export: weights, config and modelling code (io.save), and, for a
sentence-transformers source, its modules around the pruned transformer."""

from __future__ import annotations

from pathlib import Path

from prunesearch.export._manifest import Written
from prunesearch.export._sentence_transformers import is_sentence_transformer, write_layout

ST_FORMAT = "sentence-transformers"


def write_hf(loaded, pruned, out: Path) -> tuple[list[Written], dict[str, str]]:
    """Write ``pruned`` (and ``loaded``'s tokenizer) as a Hugging Face folder into ``out``; returns what was
    written, and the layouts skipped with the reason."""
    from prunesearch._hf import is_causal_lm
    from prunesearch._io import save

    before = {p for p in out.rglob("*") if p.is_file()}
    save(pruned, out, tokenizer=loaded.tokenizer)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p not in before)
    auto = "AutoModelForCausalLM" if is_causal_lm(pruned.config) else "AutoModel"
    written = [
        Written(
            format="hf",
            files=files,
            notes=[f"transformers: {auto}.from_pretrained(DIR, trust_remote_code=True)", "prunesearch.load(DIR)"],
        )
    ]
    source = getattr(loaded, "source", None)
    if not is_sentence_transformer(source):
        return written, {ST_FORMAT: "the source model is not a sentence-transformers model (no modules.json)"}
    written.append(
        Written(
            format=ST_FORMAT,
            files=write_layout(source, out),
            notes=["sentence-transformers: SentenceTransformer(DIR, trust_remote_code=True)"],
        )
    )
    return written, {}

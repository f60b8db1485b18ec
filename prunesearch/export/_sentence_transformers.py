"""The sentence-transformers layout of an encoder export: ``SentenceTransformer(DIR, trust_remote_code=True)``.

A sentence-transformers model is a folder whose ``modules.json`` lists its modules in order: the transformer
at the folder's root, then pooling (``1_Pooling/``), normalisation and the like, each in its own subfolder.
A pruned export keeps the source's modules after the transformer as they are (they hold no weights the
pruning touched), so the export's root, the pruned transformer, slots in where the dense one was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from prunesearch.errors import PruneSearchError

MODULES = "modules.json"
#: the transformer module's settings (max_seq_length, ...) and the library versions it was saved with
SETTINGS = ("sentence_bert_config.json", "config_sentence_transformers.json")


def is_sentence_transformer(folder: Path | None) -> bool:
    """Whether ``folder`` (a model's source) is a sentence-transformers model."""
    return folder is not None and (Path(folder) / MODULES).is_file()


def write_layout(source: Path, out: Path) -> list[str]:
    """Copy ``source``'s module list, settings and non-transformer modules into ``out`` (an HF export of its
    pruned transformer); returns the paths written, relative to ``out``."""
    source, out = Path(source), Path(out)
    modules = json.loads((source / MODULES).read_text())
    first = modules[0] if modules else {}
    if not str(first.get("type", "")).endswith(".Transformer") or first.get("path") not in ("", "."):
        raise PruneSearchError(
            f"{source / MODULES}: the first module is not a Transformer at the folder's root, which is the only "
            "layout a pruned export can replace; export with --to hf and assemble the modules by hand"
        )
    written = [MODULES]
    shutil.copyfile(source / MODULES, out / MODULES)
    for name in SETTINGS:
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
            written.append(name)
    for module in modules[1:]:
        folder = source / module["path"]
        if folder.is_dir():  # Normalize, for one, keeps no files
            shutil.copytree(folder, out / module["path"], dirs_exist_ok=True)
            written += sorted(str(p.relative_to(out)) for p in (out / module["path"]).rglob("*") if p.is_file())
    return written

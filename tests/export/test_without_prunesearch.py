"""Exports load where prunesearch is not installed: a virtual environment with only torch, transformers and
sentence-transformers (this environment's versions), built once per test session, loads a pruned MiniLM with
SentenceTransformer and AutoModel and a pruned tiny Llama with AutoModelForCausalLM, and they compute what
prunesearch.load's models compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from prunesearch import Config, mean_pool
from prunesearch import _io as io
from prunesearch.export import write_export
from prunesearch.prune import MagnitudeSource
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP

PACKAGES = ("torch", "transformers", "sentence-transformers")
#: heads/FFN per layer: the demo's 2x pick with layer 3's attention removed
MINILM = [(5, 768), (5, 640), (6, 768), (0, 640), (5, 896), (8, 512)]
#: the tiny Llama: layer 0 dropped (both blocks removed), layer 2 without attention
LLAMA = [(0, 0), (3, 16), (0, 48)]
TEXTS = ["A man is playing a guitar.", "Pruned models load in the tools their users already run, twice over."]
HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """An interpreter with only the three packages (and what they need): prunesearch cannot be imported."""
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pins = [f"{p}=={version(p).split('+')[0]}" for p in PACKAGES]  # torch 2.13.0+cpu -> 2.13.0
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check", *pins],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"pip install {' '.join(pins)} failed: {done.stderr[-2000:]}"
    return python


def export(loaded, layers, out):
    config = Config.from_dict({"layers": [{"heads": h, "ffn": f} for h, f in layers]})
    source = MagnitudeSource(adapter_for(loaded.model), ffn_step=128 if loaded.name == "minilm" else FFN_STEP)
    write_export(loaded, config, out, source=source, formats=["hf"])
    return io.load(out)


def test_exports_load_without_prunesearch(bare_python, tmp_path):
    from prunesearch import load_model

    minilm = load_model("minilm")
    encoder = export(minilm, MINILM, tmp_path / "minilm")
    llama = SimpleNamespace(name="tiny-llama", model=FAMILIES["llama"].model(), tokenizer=None, source=None)
    decoder = export(llama, LLAMA, tmp_path / "llama")
    ids = torch.randint(3, 90, (7,), generator=torch.Generator().manual_seed(0))
    (tmp_path / "inputs.json").write_text(json.dumps({"texts": TEXTS, "ids": ids.tolist()}))

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env |= {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "hf-modules")}
    done = subprocess.run(
        [bare_python, HERE / "load_without_prunesearch.py", tmp_path / "minilm", tmp_path / "llama"]
        + [tmp_path / "inputs.json", tmp_path / "out.pt"],
        cwd=tmp_path,  # not the repository: nothing of prunesearch on the path
        stdin=subprocess.DEVNULL,  # transformers asks before running remote code; nobody answers
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    assert "trust_remote_code=True" in got["refused"]
    assert got["classes"] == ["PrunedBertModel", "PrunedBertModel", "PrunedLlamaForCausalLM"]

    batch = minilm.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        logits = decoder(ids[None]).logits
        generated = decoder.generate(ids[None], max_new_tokens=8, do_sample=False, pad_token_id=0)
    embeddings = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)  # Normalize module
    torch.testing.assert_close(got["st_embeddings"], embeddings, atol=1e-5, rtol=0)
    torch.testing.assert_close(got["hidden"], hidden, atol=1e-5, rtol=0)
    torch.testing.assert_close(got["logits"], logits, atol=1e-5, rtol=0)
    assert torch.equal(got["generated"], generated)

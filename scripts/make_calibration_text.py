"""Write prunesearch/data/python_docs.txt: English prose from the docstrings of Python's
standard library (the documentation installed with the interpreter), one paragraph a line.

    python scripts/make_calibration_text.py
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

MODULES = """argparse ast asyncio base64 bisect calendar collections concurrent.futures configparser contextlib copy csv
dataclasses datetime decimal difflib doctest email enum fileinput fnmatch fractions ftplib functools gettext glob
graphlib gzip hashlib heapq hmac html http.client http.server imaplib importlib inspect io ipaddress itertools json
locale logging lzma mailbox mimetypes multiprocessing numbers operator optparse os pathlib pdb pickle pkgutil
platform plistlib poplib pprint profile queue random re reprlib sched secrets selectors shelve shlex shutil signal
smtplib socket socketserver sqlite3 ssl statistics string struct subprocess sysconfig tarfile tempfile textwrap
threading timeit tokenize traceback turtle types typing unittest urllib.parse urllib.request uuid warnings wave
weakref xml.dom.minidom xml.etree.ElementTree zipfile zoneinfo""".split()


def prose(text: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(line.strip() for line in para.splitlines())
        words = para.split()
        letters = sum(c.isalpha() or c == " " for c in para) / max(len(para), 1)
        if len(words) >= 12 and letters > 0.85 and ">>>" not in para and not para.startswith(("-", "*", ":")):
            out.append(para)
    return out


def main() -> None:
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
    out = Path(__file__).resolve().parents[1] / "prunesearch" / "data" / "python_docs.txt"
    header = (f"# Docstrings of Python {sys.version.split()[0]}'s standard library (PSF license), "
              "prose paragraphs only, one per line; made by scripts/make_calibration_text.py\n")
    out.write_text(header + "\n".join(paragraphs) + "\n")
    print(f"{len(paragraphs)} paragraphs, {out.stat().st_size / 1024:.0f} KiB -> {out}")


if __name__ == "__main__":
    main()

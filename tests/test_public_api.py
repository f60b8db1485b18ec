import subprocess
import sys

import prunesearch


def test_every_public_name_resolves():
    for name in prunesearch.__all__:
        assert getattr(prunesearch, name) is not None, name


def test_import_stays_light():
    code = "import sys, prunesearch; print(any(m in sys.modules for m in ('optuna', 'pymoo', 'onnxruntime')))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )

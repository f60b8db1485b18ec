"""Bad input through the real CLI entry point: one line naming the problem, non-zero exit, no traceback."""

import json
import subprocess
import sys

import pytest

from prunesearch import load_model
from prunesearch.oracle import Conditions, LatencyTable, cpu_name
from prunesearch.space import adapter_for
from tests.cli import run_cli
from tests.oracle.tables import conditions as table_conditions
from tests.oracle.tables import hand_table

SPEC = "name: t\nmodel: minilm\ntarget: {{speedup: 2}}\ndevice: {{table: {table}, threads: 1}}\n{extra}"


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm")


def minilm_conditions(minilm) -> Conditions:
    import onnxruntime

    return table_conditions(device=cpu_name(), backend_version=onnxruntime.__version__, model_hash=minilm.weights_hash)


@pytest.fixture
def table(tmp_path, minilm):
    """A table file with the right shape for MiniLM (its numbers only drive error paths): every block removed
    costs 5% of the dense model's 20 ms."""
    space = adapter_for(minilm.model).space()
    costs = {"base": 0.05, "attn": 0.005, "ffn": 0.00005}
    return hand_table(space, minilm_conditions(minilm), cost=lambda k, s: costs[k] * max(s, 1), dense_ms=20.0).save(
        tmp_path / "t.csv"
    )


def cli(args, capsys, tmp_path, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(args, capsys, monkeypatch)
    return code, err.strip()


def spec_file(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def config_file(tmp_path, layers):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"layers": layers}))
    return path


def export_folder(tmp_path, manifest: str):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "export.json").write_text(manifest)
    return folder


def run_folder(tmp_path, spec: str):
    """A run folder whose search never stored anything (it stopped before its first evaluation)."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "spec.yaml").write_text(spec)
    return folder


def hf_only_manifest(conditions: Conditions) -> str:
    """An export WE WROTE of the HF format alone, from a table: nothing for verify to time."""
    return json.dumps(
        {
            "model": "minilm",
            "config": {"layers": []},
            "table": "t.csv",
            "conditions": conditions.model_dump(),
            "target": [{"objective": "speedup", "limit": 2.0}],
            "formats": ["hf"],
            "params": 1,
            "size_mb": 0.0,
            "exported_at": "2026-01-01",
        }
    )


RUN_SPEC = "name: t\nmodel: minilm\ntarget: {speedup: 2}\n"

CASES = {
    "missing spec": (lambda tmp, table: ["search", tmp / "nope.yaml"], "spec file not found"),
    "empty spec": (lambda tmp, table: ["search", spec_file(tmp, "  \n")], "is empty"),
    "malformed yaml": (lambda tmp, table: ["search", spec_file(tmp, "name: [a\nmodel: minilm")], "malformed YAML"),
    "not a mapping": (lambda tmp, table: ["search", spec_file(tmp, "- a\n- b\n")], "expected a mapping"),
    "unknown key": (
        lambda tmp, table: ["search", spec_file(tmp, SPEC.format(table=table, extra="algoritm: evolution\n"))],
        "algoritm: unknown key",
    ),
    "wrong type": (
        lambda tmp, table: ["search", spec_file(tmp, "name: t\nmodel: minilm\ntarget: {speedup: fast}\n")],
        "target.speedup",
    ),
    "bad algorithm": (
        lambda tmp, table: ["search", spec_file(tmp, SPEC.format(table=table, extra="algorithm: annealing\n"))],
        "algorithm: unknown search algorithm 'annealing': choose from evolution",
    ),
    "bad option": (
        lambda tmp, table: ["search", spec_file(tmp, SPEC.format(table=table, extra="options: {generation: 3}\n"))],
        "options.generation",
    ),
    "unknown model": (
        lambda tmp, table: ["search", spec_file(tmp, SPEC.format(table=table, extra="").replace("minilm", "nosuch"))],
        "unknown model 'nosuch'",
    ),
    "infeasible target": (
        lambda tmp, table: [
            "search",
            spec_file(tmp, SPEC.format(table=table, extra="").replace("{speedup: 2}", "{latency_ms: 0.5}")),
        ],
        "latency_ms <= 0.5 ms cannot be met",
    ),
    "energy without an energy table": (
        lambda tmp, table: [
            "search",
            spec_file(tmp, SPEC.format(table=table, extra="").replace("{speedup: 2}", "{speedup: 2, energy_mj: 5}")),
        ],
        "energy_mj needs a latency table with an energy_mj column",
    ),
    "params below any config": (
        lambda tmp, table: [
            "search",
            spec_file(tmp, SPEC.format(table=table, extra="").replace("{speedup: 2}", "{speedup: 2, params: 1000}")),
        ],
        "params <= 0.00M cannot be met",
    ),
    "table other conditions": (
        lambda tmp, table: [
            "search",
            spec_file(tmp, SPEC.format(table=table, extra="").replace("threads: 1", "threads: 2")),
        ],
        "threads: table 1, wanted 2",
    ),
    "corrupt table": (
        lambda tmp, table: (
            table.write_text("kind,size\nbase"),
            ["search", spec_file(tmp, SPEC.format(table=table, extra=""))],
        )[1],
        "truncated or malformed",
    ),
    "measuring less often than the budget ends": (
        lambda tmp, table: [
            "search",
            spec_file(tmp, SPEC.format(table=table, extra="budget: {evaluations: 40}\nmeasure: {every: 50}\n")),
        ],
        "measure.every 50 exceeds budget.evaluations (40)",
    ),
    "missing table": (
        lambda tmp, table: ["search", spec_file(tmp, SPEC.format(table=tmp / "none.csv", extra=""))],
        "latency table file not found",
    ),
    "config wrong layer count": (
        lambda tmp, table: [
            "export",
            "--model",
            "minilm",
            "--config",
            config_file(tmp, [{"heads": 12, "ffn": 1536}]),
            "--out",
            tmp / "o",
        ],
        "config has 1 layers, the model has 6",
    ),
    "config too many heads": (
        lambda tmp, table: [
            "export",
            "--model",
            "minilm",
            "--config",
            config_file(tmp, [{"heads": 16, "ffn": 1536}] * 6),
            "--out",
            tmp / "o",
        ],
        "layer 0: heads=16",
    ),
    "config off grid": (
        lambda tmp, table: [
            "export",
            "--model",
            "minilm",
            "--config",
            config_file(tmp, [{"heads": 12, "ffn": 1000}] * 6),
            "--out",
            tmp / "o",
        ],
        "ffn=1000",
    ),
    "config malformed json": (
        lambda tmp, table: ["export", "--model", "minilm", "--config", spec_file(tmp, "{layers: "), "--out", tmp / "o"],
        "not valid JSON",
    ),
    "config missing": (
        lambda tmp, table: ["export", "--model", "minilm", "--config", tmp / "none.json", "--out", tmp / "o"],
        "config file not found",
    ),
    "unwritable output": (
        lambda tmp, table: [
            "export",
            "--model",
            "minilm",
            "--config",
            config_file(tmp, [{"heads": 12, "ffn": 1536}] * 6),
            "--out",
            table / "sub",
        ],
        "cannot write to output folder",
    ),
    "unknown format": (
        lambda tmp, table: [
            "export",
            "--model",
            "minilm",
            "--config",
            tmp / "c.json",
            "--out",
            tmp / "o",
            "--to",
            "hf,pdf",
        ],
        "unknown format pdf",
    ),
    "export needs a source": (lambda tmp, table: ["export", "--out", tmp / "o"], "give either --run"),
    "verify without export": (lambda tmp, table: ["verify", tmp], "holds no export.json"),
    "report not a run": (lambda tmp, table: ["report", tmp], "is not a run folder"),
    "report run without a study": (
        lambda tmp, table: ["report", run_folder(tmp, RUN_SPEC)],
        "holds no stored search 't'",
    ),
    "export run without a study": (
        lambda tmp, table: ["export", "--run", run_folder(tmp, RUN_SPEC), "--out", tmp / "o"],
        "holds no stored search 't'",
    ),
    "report run malformed spec": (lambda tmp, table: ["report", run_folder(tmp, "name: [")], "malformed YAML"),
    "export unknown model": (
        lambda tmp, table: [
            "export",
            "--model",
            "nosuch",
            "--config",
            config_file(tmp, [{"heads": 12, "ffn": 1536}] * 6),
            "--out",
            tmp / "o",
        ],
        "unknown model 'nosuch'",
    ),
    "verify corrupt manifest": (
        lambda tmp, table: ["verify", export_folder(tmp, "{oops")],
        "corrupt or older export manifest",
    ),
    "verify export without onnx": (
        lambda tmp, table: ["verify", export_folder(tmp, hf_only_manifest(LatencyTable.load(table).conditions))],
        "has no model.onnx",
    ),
    "profile unavailable backend": (
        lambda tmp, table: ["profile", "--backend", "tensorrt"],
        "backend 'tensorrt' is not available",
    ),
    "profile energy without a meter": (
        lambda tmp, table: ["profile", "--power-s", "1"],
        "reads no energy counter here",
    ),
    "profile energy of an imported bundle": (
        lambda tmp, table: ["profile", "--import", tmp / "results.json", "--power-s", "1"],
        "a bundle's energy is measured on the device",
    ),
    "profile bad phase": (lambda tmp, table: ["profile", "--phase", "foo"], "Invalid value for '--phase'"),
    "profile batch 0": (lambda tmp, table: ["profile", "--batch", "0"], "Invalid value for '--batch'"),
    "unknown option": (lambda tmp, table: ["search", "--bogus"], "No such option: --bogus"),
    "eval without a measure": (lambda tmp, table: ["eval", "minilm"], "give --sts PAIRS"),
    "eval missing pairs": (lambda tmp, table: ["eval", "minilm", "--sts", tmp / "none.csv"], "file not found"),
    "eval pairs of the wrong shape": (
        lambda tmp, table: (
            (tmp / "p.csv").write_text("only,two\n" * 20),
            ["eval", "minilm", "--sts", tmp / "p.csv"],
        )[1],
        "an STS pairs file has 3",
    ),
    "eval an encoder on text": (
        lambda tmp, table: (
            (tmp / "t.txt").write_text("Some text.\n" * 20),
            ["eval", "minilm", "--text", tmp / "t.txt"],
        )[1],
        "is an encoder: give --sts",
    ),
    "eval unknown model": (lambda tmp, table: ["eval", "nosuch", "--sts", table], "unknown model 'nosuch'"),
    "predict missing table": (
        lambda tmp, table: ["predict", "--table", tmp / "none.csv", "--config", tmp / "c.json"],
        "latency table file not found",
    ),
    "predict a config of another depth": (
        lambda tmp, table: ["predict", "--table", table, "--config", config_file(tmp, [{"heads": 6, "ffn": 768}] * 5)],
        "config has 5 layers, the model has 6",
    ),
    "predict a head count the model lacks": (
        lambda tmp, table: ["predict", "--table", table, "--config", config_file(tmp, [{"heads": 13, "ffn": 768}] * 6)],
        "heads=13 is not allowed",
    ),
    "predict from a table and a run at once": (
        lambda tmp, table: ["predict", "--table", table, "--run", tmp, "--config", tmp / "c.json"],
        "give --table TABLE, or --run RUN",
    ),
    "predict corrupt table": (
        lambda tmp, table: (
            table.write_text("kind,size\nbase"),
            ["predict", "--table", table, "--config", tmp / "c.json"],
        )[1],
        "truncated or malformed",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clear_line(case, capsys, tmp_path, monkeypatch, table):
    make_args, expected = CASES[case]
    code, err = cli(make_args(tmp_path, table), capsys, tmp_path, monkeypatch)
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], err  # progress lines may precede the one error line


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from prunesearch.cli import main; main()", "search", str(tmp_path / "x.yaml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: spec file not found: {tmp_path / 'x.yaml'}"


def test_a_failed_verification_exits_3(tmp_path, capsys, monkeypatch):
    """A command that ends with typer.Exit(3) must reach the shell as 3, not 0."""
    import prunesearch.export._verify as verify_module
    from prunesearch import Constraint
    from prunesearch.export import Verification
    from prunesearch.oracle import Measurement

    measured = Measurement(ratio=1 / 1.9, se=0.003, rounds=16, reference_ms=20.0)
    monkeypatch.setattr(
        verify_module,
        "verify_export",
        lambda folder, tolerance, reporter: Verification(
            measured=measured,
            against=[Constraint(objective="speedup", limit=2.0)],
            of="target",
            tolerance=tolerance,
            passed=False,
            at="now",
        ),
    )
    code, err = cli(["verify", tmp_path], capsys, tmp_path, monkeypatch)
    assert code == 3 and "FAILED" in err and "1.900x" in err and "target speedup >= 2.000x" in err


def test_search_force_accepts_a_table_from_other_conditions(capsys, tmp_path, monkeypatch, table):
    """With --force the conditions check passes, so the next check (the infeasible target) is the one that speaks."""
    text = (
        SPEC.format(table=table, extra="")
        .replace("threads: 1", "threads: 2")
        .replace("{speedup: 2}", "{latency_ms: 0.5}")
    )
    code, err = cli(["search", spec_file(tmp_path, text)], capsys, tmp_path, monkeypatch)
    assert code == 2 and "threads: table 1, wanted 2" in err and "search --force" in err
    code, err = cli(["search", spec_file(tmp_path, text), "--force"], capsys, tmp_path, monkeypatch)
    assert code == 2 and "cannot be met" in err and "threads" not in err


def _leaves(model, prefix=()):
    """Every field of the spec, nested sections walked into: (path, field)."""
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaves(annotation, (*prefix, name))
        else:
            yield (*prefix, name)


#: strings that are well-typed and still wrong, found out before anything slow runs
SEMANTIC = {
    ("name",): "has spaces",
    ("model",): "no-such-model",
    ("device", "table"): "no/such/table.csv",
    ("algorithm",): "no_such_algorithm",
    ("objectives",): ["loss", "no_such_objective"],
    ("calibration", "files"): ["/no/such/text.txt"],
    ("recovery", "files"): ["/no/such/text.txt"],
    ("evaluation", "sts"): "/no/such/pairs.csv",
    ("storage",): "nosuchdb://x",
    ("executor", "address"): "127.0.0.1:6379",  # with the default serial executor
    ("options",): {"no_such_option": 1},
}


def _with(path: tuple, value) -> dict:
    data = {"name": "t", "model": "minilm", "target": {"speedup": 2}, "device": {"threads": 1}}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


def _spec_cases():
    from prunesearch import SearchSpec

    for path in _leaves(SearchSpec):
        yield pytest.param(path, {"wrong": "type"}, id=".".join(path) + "=wrong-type")
        if path in SEMANTIC:
            yield pytest.param(path, SEMANTIC[path], id=".".join(path) + "=" + str(SEMANTIC[path]))


@pytest.mark.parametrize(("path", "value"), list(_spec_cases()))
def test_every_spec_field_refuses_a_bad_value_and_writes_nothing(path, value, capsys, tmp_path, monkeypatch):
    import yaml

    data = _with(path, value)
    data.setdefault("device", {}).setdefault("table", str(tmp_path / "t.csv"))  # a table path, unless under test
    if path != ("device", "table"):
        (tmp_path / "t.csv").write_text("")  # never read: the spec fails first
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    code, err = cli(["search", spec, "--runs", tmp_path / "runs"], capsys, tmp_path, monkeypatch)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    named = {path[-1], str(value), *(value if isinstance(value, list | dict) else [])}
    assert any(str(n) in errors[0] for n in named), errors[0]  # the field, or the bad value, is named
    assert not any((tmp_path / "runs").rglob("*")), "a refused spec wrote into the run folder"


def test_measuring_in_the_loop_against_a_table_of_a_device_not_at_hand_is_refused(
    capsys, tmp_path, monkeypatch, remote_table
):
    spec = spec_file(tmp_path, SPEC.format(table=remote_table, extra="measure: {every: 20}\n"))
    code, err = cli(["search", spec], capsys, tmp_path, monkeypatch)
    assert code == 2 and "measure.every: configs cannot be measured during the search" in err
    assert "set measure.every: 0" in err and not (tmp_path / "runs").exists()

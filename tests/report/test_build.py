import json

import numpy as np
import pandas as pd

from prunesearch.pareto import pareto_mask
from prunesearch.report import build_report


def _trials(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        heads = rng.integers(0, 13, size=3).tolist()
        ffn = (rng.integers(0, 13, size=3) * 128).tolist()
        latency = 2.0 + sum(heads) * 0.1 + sum(ffn) * 0.001
        rows.append(
            {
                "number": i,
                "config": {"layers": [{"heads": h, "ffn": f} for h, f in zip(heads, ffn)]},
                "algorithm": "evolution",
                "loss": 1.0 / latency + rng.normal(0, 0.01),
                "latency_ms": latency,
                "energy_mj": latency * 3.0,
                "params": 1000 + i,
            }
        )
    return pd.DataFrame(rows)


def test_pareto_mask_keeps_only_non_dominated():
    values = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2]])
    assert pareto_mask(values).tolist() == [True, True, False, True, True]


def test_report_writes_tables_plots_and_html(tmp_path):
    index = build_report({"a": _trials(40, 0), "b": _trials(30, 1)}, tmp_path, target_ms=4.0, title="t")
    results = pd.read_csv(tmp_path / "results.csv")
    front = pd.read_csv(tmp_path / "pareto.csv")
    assert len(results) == 70
    assert set(front.run) == {"a", "b"}
    for run, df in front.groupby("run"):
        assert pareto_mask(df[["loss", "latency_ms"]].to_numpy()).all()
    json.loads(results.config[0])  # configs stay machine-readable
    for name in ("quality_vs_latency", "energy_vs_latency", "layers_heatmap", "progress"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    page = index.read_text()
    assert page.count("data:image/png;base64,") == 4

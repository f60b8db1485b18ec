import json

import numpy as np
import pandas as pd

from prunesearch import Constraint, pareto_mask
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
                "params": 1000 + 40 * sum(heads) + sum(ffn),
                "tokens": 2048,
            }
        )
    return pd.DataFrame(rows)


def test_pareto_mask_keeps_only_non_dominated():
    values = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2]])
    assert pareto_mask(values).tolist() == [True, True, False, True, True]


def test_report_writes_tables_plots_and_html(tmp_path):
    limit = [Constraint(objective="latency_ms", limit=4.0)]
    index = build_report({"a": _trials(40, 0), "b": _trials(30, 1)}, tmp_path, constraints=limit, title="t")
    results = pd.read_csv(tmp_path / "results.csv")
    front = pd.read_csv(tmp_path / "pareto.csv")
    assert len(results) == 70 and (results.feasible == (results.latency_ms <= 4.0)).all()
    assert set(front.run) == {"a", "b"}
    for _, df in front.groupby("run"):
        assert pareto_mask(df[["loss", "latency_ms"]].to_numpy()).all()
    json.loads(results.config[0])  # configs stay machine-readable
    for name in ("front_loss_vs_latency_ms", "layers_heatmap", "progress"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert index.read_text().count("data:image/png;base64,") == 3


def test_a_three_objective_report_draws_every_pair_and_the_three_at_once(tmp_path):
    objectives = ("loss", "latency_ms", "params")
    build_report({"a": _trials(60, 2)}, tmp_path, objectives=objectives)
    front = pd.read_csv(tmp_path / "pareto.csv")
    assert pareto_mask(front[list(objectives)].to_numpy()).all() and len(front) >= 3
    names = {p.stem for p in tmp_path.glob("front_*.png")}
    assert names == {"front_loss_vs_latency_ms", "front_loss_vs_params", "front_latency_ms_vs_params", "front_3d"}

"""The run store: one Optuna study per search, one COMPLETE trial per evaluated config.

Resuming is replay: an algorithm re-runs from its seed and every evaluation
already stored is answered from the study, so a killed search continues where
it stopped and re-evaluates nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from prunesearch.errors import PruneSearchError

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Evaluation:
    """What one evaluated config measured."""

    loss: float
    latency_ms: float
    energy_mj: float | None
    params: int


class RunStore:
    """Evaluations of one study, keyed by (genome, token budget)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._known: dict[tuple, Evaluation] = {}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            a = t.user_attrs
            self._known[(tuple(a["genome"]), a["tokens"])] = Evaluation(
                loss=a["loss"], latency_ms=a["latency_ms"], energy_mj=a.get("energy_mj"), params=a["params"]
            )

    @classmethod
    def open(cls, storage: str, study_name: str, *, resume: bool, attrs: dict | None = None) -> RunStore:
        exists = study_name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
        if exists and not resume:
            raise PruneSearchError(
                f"study {study_name!r} already exists in {storage}; pass --resume to continue it "
                "or choose another run name"
            )
        study = optuna.create_study(
            storage=storage, study_name=study_name, directions=["minimize", "minimize"], load_if_exists=True
        )
        stored_table = study.user_attrs.get("table")
        if exists and attrs and stored_table is not None and stored_table != attrs.get("table"):
            # stored latencies came from another table: mixing them would corrupt the front
            raise PruneSearchError(
                f"study {study_name!r} was searched against table {stored_table}, not {attrs.get('table')}; "
                "start a fresh run (delete its run folder, or `prunesearch demo --fresh`)"
            )
        for key, value in (attrs or {}).items():
            study.set_user_attr(key, value)
        return cls(study)

    def __len__(self) -> int:
        return len(self._known)

    def items(self) -> list[tuple[tuple[int, ...], int, Evaluation]]:
        """Every stored (genome, tokens, evaluation)."""
        return [(genome, tokens, ev) for (genome, tokens), ev in self._known.items()]

    def get(self, genome: np.ndarray, tokens: int) -> Evaluation | None:
        return self._known.get((tuple(int(g) for g in genome), tokens))

    def add(self, genome: np.ndarray, tokens: int, evaluation: Evaluation, *, config: dict, algorithm: str, stage: str) -> None:
        key = (tuple(int(g) for g in genome), tokens)
        if key in self._known:
            return
        trial = optuna.trial.create_trial(
            values=[evaluation.loss, evaluation.latency_ms],
            user_attrs={
                "config": config,
                "genome": list(key[0]),
                "algorithm": algorithm,
                "stage": stage,
                "tokens": tokens,
                "loss": evaluation.loss,
                "latency_ms": evaluation.latency_ms,
                "energy_mj": evaluation.energy_mj,
                "params": evaluation.params,
            },
        )
        self.study.add_trial(trial)
        self._known[key] = evaluation


def load_trials(storage: str, study_name: str) -> pd.DataFrame:
    """One row per evaluated config with its user attributes (the report's input)."""
    try:
        study = optuna.load_study(storage=storage, study_name=study_name)
    except KeyError:
        raise PruneSearchError(f"no study {study_name!r} in {storage}") from None
    rows = [
        {"number": t.number, **t.user_attrs}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ]
    df = pd.DataFrame(rows)
    if len(df) and "energy_mj" in df:
        df["energy_mj"] = df.energy_mj.map(lambda v: math.nan if v is None else v)
    return df


def study_attrs(storage: str, study_name: str) -> dict:
    study = optuna.load_study(storage=storage, study_name=study_name)
    return dict(study.user_attrs)


def config_json(config: dict) -> str:
    return json.dumps(config, separators=(",", ":"))

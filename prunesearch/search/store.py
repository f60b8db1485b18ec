"""The run store: one Optuna study per search, one COMPLETE trial per evaluated config.

Resuming is replay: an algorithm re-runs from its seed and every evaluation
already stored is answered from the study, so a killed search continues where
it stopped and re-evaluates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd

from prunesearch.errors import PruneSearchError

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Evaluation:
    """What one evaluated config scored: its loss, and every predicted objective (objectives.py)."""

    loss: float
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        return self.loss if name == "loss" else self.metrics[name]


class RunStore:
    """Evaluations of one study, keyed by (genome, token budget). A trial's values are the run's
    objectives, in the directions objectives.py gives them, so Optuna (and its dashboard) sees the
    same front the report draws."""

    def __init__(self, study: optuna.Study, objectives: tuple[str, ...]) -> None:
        self.study = study
        self.objectives = objectives
        self._known: dict[tuple, Evaluation] = {}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            a = t.user_attrs
            self._known[(tuple(a["genome"]), a["tokens"])] = Evaluation(loss=a["loss"], metrics=a["predicted"])

    @classmethod
    def open(
        cls,
        storage: str,
        study_name: str,
        *,
        resume: bool,
        objectives: tuple[str, ...] = ("loss", "latency_ms"),
        attrs: dict | None = None,
    ) -> RunStore:
        from prunesearch.objectives import OBJECTIVES

        exists = study_name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
        if exists and not resume:
            raise PruneSearchError(
                f"study {study_name!r} already exists in {storage}; pass --resume to continue it "
                "or choose another run name"
            )
        directions = [OBJECTIVES[o].direction for o in objectives]
        try:
            study = optuna.create_study(
                storage=storage, study_name=study_name, directions=directions, load_if_exists=True
            )
        except ValueError:  # optuna: the stored study has other directions
            raise PruneSearchError(
                f"study {study_name!r} in {storage} was searched over other objectives than {', '.join(objectives)}; "
                "start a fresh run (delete its run folder) or give the spec its old objectives"
            ) from None
        if exists and len(study.directions) != len(objectives):
            raise PruneSearchError(
                f"study {study_name!r} in {storage} has {len(study.directions)} objectives, the spec "
                f"{len(objectives)} ({', '.join(objectives)}); start a fresh run (delete its run folder)"
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
        return cls(study, tuple(objectives))

    def __len__(self) -> int:
        return len(self._known)

    def items(self) -> list[tuple[tuple[int, ...], int, Evaluation]]:
        """Every stored (genome, tokens, evaluation)."""
        return [(genome, tokens, ev) for (genome, tokens), ev in self._known.items()]

    def get(self, genome: np.ndarray, tokens: int) -> Evaluation | None:
        return self._known.get((tuple(int(g) for g in genome), tokens))

    def add(
        self, genome: np.ndarray, tokens: int, evaluation: Evaluation, *, config: dict, algorithm: str, stage: str
    ) -> None:
        key = (tuple(int(g) for g in genome), tokens)
        if key in self._known:
            return
        trial = optuna.trial.create_trial(
            values=[evaluation.value(o) for o in self.objectives],
            user_attrs={
                "config": config,
                "layers": " ".join(f"{l['heads']}/{l['ffn']}" for l in config["layers"]),
                "genome": list(key[0]),
                "algorithm": algorithm,
                "stage": stage,
                "tokens": tokens,
                "loss": evaluation.loss,
                "predicted": evaluation.metrics,
                **evaluation.metrics,
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
        {"number": t.number, **{k: v for k, v in t.user_attrs.items() if k != "predicted"}}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ]
    return pd.DataFrame(rows)


def study_attrs(storage: str, study_name: str) -> dict:
    study = optuna.load_study(storage=storage, study_name=study_name)
    return dict(study.user_attrs)

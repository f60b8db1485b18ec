"""A run folder: the spec a search ran from, its store of evaluated configs, and what it searched against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prunesearch.errors import PruneSearchError
from prunesearch.spec import SearchSpec, load_spec

SPEC_FILE = "spec.yaml"


@dataclass(frozen=True)
class Run:
    folder: Path
    spec: SearchSpec
    storage: str
    #: the study's attributes: model, table, dense_ms (the reference its milliseconds scale), constraints,
    #: margin, objectives, algorithm, report_facts
    attrs: dict

    @classmethod
    def open(cls, folder: str | Path) -> Run:
        """A finished or stopped run (refused, with the fix, where ``folder`` holds none)."""
        from prunesearch.search import study_attrs

        folder = Path(folder)
        spec_file = folder / SPEC_FILE
        if not spec_file.is_file():
            raise PruneSearchError(f"{folder} is not a run folder (no {SPEC_FILE}); pass the folder a search wrote")
        spec = load_spec(spec_file)
        storage = spec.storage_url(folder)
        try:
            attrs = study_attrs(storage, spec.name)
        except KeyError:  # optuna: no study of that name (the search stopped before its first evaluation)
            raise PruneSearchError(
                f"{folder} holds no stored search {spec.name!r}; run `prunesearch search {spec_file}` first"
            ) from None
        return cls(folder=folder, spec=spec, storage=storage, attrs=attrs)

    @property
    def name(self) -> str:
        return self.spec.name

    def trials(self) -> pd.DataFrame:
        from prunesearch.search import load_trials

        return load_trials(self.storage, self.name)

    def constraints(self) -> list:
        """The run's target, as its search held it (objectives.Constraint)."""
        from prunesearch.objectives import Constraint

        return [Constraint.model_validate(c) for c in self.attrs.get("constraints", [])]

    def table(self):
        """The table this run searched against and the dense model's milliseconds it scaled, as stored:
        an export or a resumed search must predict and target as the search did."""
        return table_of(self.attrs)


def table_of(attrs: dict):
    """The table (and its reference milliseconds) a study's attributes say its search ran against."""
    from prunesearch.oracle import TableChoice

    return TableChoice(path=Path(attrs["table"]), reference_ms=float(attrs["dense_ms"]), how="the run's")

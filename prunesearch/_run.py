"""A run folder: the spec a search ran from, its store of evaluated configs, and what it searched against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prunesearch._spec import SearchSpec, load_spec
from prunesearch.errors import PruneSearchError

SPEC_FILE = "spec.yaml"


@dataclass(frozen=True)
class Run:
    folder: Path
    spec: SearchSpec
    storage: str
    #: the study's attributes: model, table, dense_ms (the reference its milliseconds scale), objectives,
    #: algorithm, report_facts, and the measured configs, window by window
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

    def trials(self, *, oracle=None) -> pd.DataFrame:
        """One row per evaluated config. With ``oracle``, their timing objectives are recomputed from their
        genomes as the oracle predicts them now (corrected by every config measured so far), beside the
        table's own speed-up and the correction's uncertainty (``Oracle.predictions``); as stored, they are what
        the search predicted when it evaluated them. Exact objectives (parameters, size) are as stored."""
        from prunesearch.search import load_trials

        trials = load_trials(self.storage, self.name)
        if oracle is None or trials.empty:
            return trials
        return trials.assign(**oracle.predictions(np.array(trials.genome.tolist(), dtype=np.int64)))

    def constraints(self) -> list:
        """The run's target (objectives.Constraint): its spec's."""
        return self.spec.target.constraints()

    def table(self):
        """The table this run searched against, loaded, and the dense model's milliseconds it scaled, as
        stored: an export or a resumed search must predict and target as the search did."""
        from prunesearch.oracle import LatencyTable, TableChoice

        return TableChoice(
            table=LatencyTable.load(self.attrs["table"]), reference_ms=float(self.attrs["dense_ms"]), how="the run's"
        )

    def measurements(self, *, stage: str | None = None) -> list:
        """The configs this run measured beside the dense model (oracle.MeasuredConfig), in the order of their
        windows; ``stage``: only those of one stage (the table's check, the search, the export's pick)."""
        from prunesearch.oracle import MeasuredConfig
        from prunesearch.search._store import stored_measurements

        records = [MeasuredConfig.model_validate(r) for r in stored_measurements(self.attrs)]
        return [r for r in records if stage is None or r.stage == stage]

    def add_measurements(self, records: list) -> None:
        """Keep configs measured after the search (the export's pick) with the run, window by window."""
        import optuna

        from prunesearch.search._store import MEASURED, rdb

        study = optuna.load_study(storage=rdb(self.storage), study_name=self.name)
        for window in sorted({r.window for r in records}):
            key = f"{MEASURED}{window:03d}"
            self.attrs[key] = [r.model_dump(mode="json") for r in records if r.window == window]
            study.set_user_attr(key, self.attrs[key])

    def oracle(self):
        """The run's oracle without its model: the table over the run's genomes' space, corrected by every config
        the run measured (what the report shows); nothing can be measured with it."""
        from prunesearch.oracle import Oracle, table_space

        choice = self.table()
        n_layers = choice.table.meta.n_layers or len(self.trials().genome.iloc[0]) // 2
        oracle = Oracle(choice.table, table_space(choice.table, n_layers=n_layers), reference_ms=choice.reference_ms)
        oracle.add(self.measurements())
        return oracle

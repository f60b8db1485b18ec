"""The run store: one Optuna study per search, one COMPLETE trial per evaluated config.

Resuming is replay: an algorithm re-runs from its seed and every evaluation
already stored is answered from the study, so a killed search continues where
it stopped and re-evaluates nothing.

Several processes may share one study (a PostgreSQL storage, each process on its own machine):
before computing a config a process *claims* it with a RUNNING trial, so no config is computed
twice; a process that finds a config claimed waits for its result. Claims carry their owner,
and owners write a heartbeat into the study: a claim whose owner stopped beating (killed, on
any machine) or whose process is gone (on this machine) is taken over, so a SIGKILL loses
nothing but the evaluations that were running.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from prunesearch.errors import PruneSearchError

optuna.logging.set_verbosity(optuna.logging.WARNING)
RUNNING, COMPLETE, FAIL = (
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
)

#: seconds between an owner's heartbeats, and after how many seconds without one its claims are orphaned
HEARTBEAT_S = 10.0
ORPHANED_AFTER_S = 60.0
#: how often a process waiting for another one's claimed configs looks again
POLL_S = 0.5

Key = tuple[tuple[int, ...], int]  # (genome, token budget)
#: study attributes holding a measurement window's configs: "measured:<window number, 3 digits>", numbered in
#: the order the windows ran (the table's check first, then the search's, then the export's pick)
MEASURED = "measured:"


@dataclass(frozen=True)
class Evaluation:
    """What one evaluated config scored: its loss, and every predicted objective (_objectives.py)."""

    loss: float
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        return self.loss if name == "loss" else self.metrics[name]


def rdb(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``. A SQLite file is opened in write-ahead-log mode with commits synced at
    checkpoints rather than each one: a search commits every attribute of every trial, and a synced commit each
    time made the store, not the fitness, what a small search waited on. Other processes still read it live."""
    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "sqlite":
        return _opened(url)
    storage = _opened(url, engine_kwargs={"connect_args": {"timeout": 60}})

    @event.listens_for(storage.engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    storage.engine.dispose()  # connections opened before the listener (optuna's schema check) get the pragmas too
    return storage


def _opened(url: str, *, attempts: int = 5, **kwargs) -> optuna.storages.RDBStorage:
    """``RDBStorage(url)``. Processes opening a new store at once (a search starting while another process, a
    dashboard or a second search, opens its study) each write its schema: the one that loses the race fails on a
    unique key or a table just made, and opens it again, finding the schema there."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(1, attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (IntegrityError, OperationalError):
            time.sleep(0.2 * attempt)
    return optuna.storages.RDBStorage(url, **kwargs)


def key_of(genome: Iterable[int], tokens: int) -> Key:
    return tuple(int(g) for g in genome), int(tokens)


def _claim_name(key: Key) -> str:
    return f"{key[1]}:{','.join(map(str, key[0]))}"


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone_here(owner: str) -> bool:
    """Whether ``owner`` ran on this machine in a process that no longer exists."""
    host, pid, _ = owner.rsplit(":", 2)
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Heartbeat(threading.Thread):
    def __init__(self, study: optuna.Study, owner: str) -> None:
        super().__init__(daemon=True, name="prunesearch-heartbeat")
        self.study, self.owner = study, owner
        self.stopped = threading.Event()

    def beat(self) -> None:
        self.study.set_user_attr(f"alive:{self.owner}", time.time())

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            try:
                self.beat()
            except Exception:  # noqa: BLE001  (a storage hiccup must not kill the search; the next beat retries)
                continue


class RunStore:
    """Evaluations of one study, keyed by (genome, token budget). A trial's values are the run's
    objectives, in the directions _objectives.py gives them, so Optuna (and its dashboard) sees the
    same front the report draws."""

    def __init__(self, study: optuna.Study, objectives: tuple[str, ...]) -> None:
        self.study = study
        self.objectives = objectives
        self.owner = _owner()
        self._known: dict[Key, Evaluation] = {}
        self._claims: dict[Key, optuna.Trial] = {}  # mine, not yet told
        self._rng = random.Random(self.owner)  # the pause after a contested claim differs between processes
        self._heartbeat = _Heartbeat(study, self.owner)
        self._heartbeat.beat()
        self._heartbeat.start()
        self._look()  # every evaluation stored so far, by any process

    @staticmethod
    def check(storage: str, study_name: str, *, resume: bool) -> bool:
        """Whether the study exists; refused where the storage cannot be reached or a fresh search would
        overwrite a stored one. Cheap: a search checks it before anything slow, and creates nothing."""
        from sqlalchemy.engine import make_url

        url = make_url(storage)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            return False  # no file, no study: opening it would create one
        try:
            names = {s.study_name for s in optuna.get_all_study_summaries(rdb(storage))}
        except Exception as exc:  # noqa: BLE001  (SQLAlchemy's errors vary by database; the message says which)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PruneSearchError(
                f"storage {storage}: cannot be opened ({reason}); check the URL and the server"
            ) from None
        exists = study_name in names
        if exists and not resume:
            raise PruneSearchError(
                f"study {study_name!r} already exists in {storage}; pass --resume to continue it "
                "or choose another run name"
            )
        return exists

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
        from prunesearch._objectives import OBJECTIVES

        exists = cls.check(storage, study_name, resume=resume)
        directions = [OBJECTIVES[o].direction for o in objectives]
        try:
            study = optuna.create_study(
                storage=rdb(storage),
                study_name=study_name,
                directions=directions,
                load_if_exists=True,
                sampler=optuna.samplers.RandomSampler(seed=0),  # asked only for claims: nothing to sample
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

    def __deepcopy__(self, memo) -> RunStore:
        return self  # a handle on the study: whoever copies a problem (pymoo does) shares the one store

    def close(self) -> None:
        """Stop the heartbeat and hand back unfinished claims (they are computed again by whoever needs them)."""
        self.release(list(self._claims))
        self._heartbeat.stopped.set()

    def _look(self) -> list[optuna.trial.FrozenTrial]:
        """One read of the study: takes in its stored evaluations and returns its RUNNING trials. Known
        and claimed come from the same read, so a config that finished between two reads is never
        taken for one nobody has claimed."""
        running = []
        for t in self.study.get_trials(deepcopy=False, states=(COMPLETE, RUNNING)):
            if t.state == RUNNING:
                running.append(t)
                continue
            a = t.user_attrs
            self._known.setdefault(key_of(a["genome"], a["tokens"]), Evaluation(loss=a["loss"], metrics=a["predicted"]))
        return running

    def __len__(self) -> int:
        return len(self._known)

    def items(self) -> list[tuple[tuple[int, ...], int, Evaluation]]:
        """Every stored (genome, tokens, evaluation)."""
        return [(genome, tokens, ev) for (genome, tokens), ev in self._known.items()]

    def get(self, genome: np.ndarray, tokens: int) -> Evaluation | None:
        return self._known.get(key_of(genome, tokens))

    # -- claims: one process computes each config ---------------------------------------------------

    def _live_owners(self) -> set[str]:
        now = time.time()
        return {
            name.removeprefix("alive:")
            for name, beat in self.study.user_attrs.items()
            if name.startswith("alive:")
            and now - beat < ORPHANED_AFTER_S
            and not _gone_here(name.removeprefix("alive:"))
        }

    @staticmethod
    def _claimed(running: list[optuna.trial.FrozenTrial]) -> dict[str, tuple[int, str]]:
        """Claimed configs among ``running``: claim name -> (lowest trial number, its owner)."""
        out: dict[str, tuple[int, str]] = {}
        for t in running:
            claim, owner = t.user_attrs.get("claim"), t.user_attrs.get("owner")
            if claim is not None and (claim not in out or t.number < out[claim][0]):
                out[claim] = (t.number, owner)
        return out

    def claim(self, keys: list[Key]) -> tuple[list[Key], list[Key]]:
        """(the keys this process is now to compute, in order; the keys others are computing).
        Claims whose owner is gone are taken over (and marked failed)."""
        running, live = self._look(), self._live_owners()
        gone = {t.number for t in running if self._orphaned(t, live)}
        for number in gone:
            self._fail(number)
        claimed = self._claimed([t for t in running if t.number not in gone])
        keys = [k for k in dict.fromkeys(keys) if k not in self._known]
        asked = {}
        for key in keys:
            if _claim_name(key) in claimed:
                continue
            trial = self.study.ask()
            trial.set_user_attr("owner", self.owner)  # before the claim: a claim always names its owner
            trial.set_user_attr("claim", _claim_name(key))
            asked[key] = trial
        # Two processes may claim one config at once. Each wrote its claim before reading the others', so
        # at least one of them sees the other (claiming, or already finished): whoever sees a rival yields.
        # Both may yield; the config is then unclaimed, found orphaned by wait(), and claimed again after
        # a random pause.
        fresh = {trial.number for trial in asked.values()}
        rivals = set(self._claimed([t for t in self._look() if t.number not in fresh]))
        mine = []
        for key, trial in asked.items():
            if key in self._known or _claim_name(key) in rivals:
                self._fail(trial.number)
            else:
                self._claims[key] = trial
                mine.append(key)
        if len(mine) < len(asked):
            time.sleep(self._rng.uniform(0, POLL_S))  # so that two yielding processes do not meet again
        others = [k for k in keys if k not in self._claims and k not in self._known]
        return mine, others

    def _orphaned(self, trial: optuna.trial.FrozenTrial, live: set[str]) -> bool:
        owner = trial.user_attrs.get("owner")
        if owner is None:  # asked, owner not yet written: orphaned only if it stays so
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            return time.time() - started > ORPHANED_AFTER_S
        return owner not in live and owner != self.owner

    def _fail(self, number: int) -> None:
        with contextlib.suppress(RuntimeError, ValueError):  # finished meanwhile (by its owner, or a taker-over)
            self.study.tell(number, state=FAIL)

    def release(self, keys: list[Key]) -> None:
        """Hand back claims this process will not compute."""
        for key in keys:
            trial = self._claims.pop(key, None)
            if trial is not None:
                self._fail(trial.number)

    def add(self, key: Key, evaluation: Evaluation, *, config: dict, algorithm: str, stage: str) -> None:
        """Store a computed evaluation, on this process's claim of it (a fresh trial without one)."""
        if key in self._known:
            self.release([key])
            return
        attrs = {
            "config": config,
            "layers": " ".join(f"{l['heads']}/{l['ffn']}" for l in config["layers"]),
            "genome": list(key[0]),
            "algorithm": algorithm,
            "stage": stage,
            "tokens": key[1],
            "loss": evaluation.loss,
            "predicted": evaluation.metrics,
            **evaluation.metrics,
        }
        values = [evaluation.value(o) for o in self.objectives]
        trial = self._claims.pop(key, None)
        if trial is None:
            self.study.add_trial(optuna.trial.create_trial(values=values, user_attrs=attrs))
        else:
            for name, value in attrs.items():
                trial.set_user_attr(name, value)
            self.study.tell(trial, values=values)
        self._known[key] = evaluation

    # -- measurements: configs timed on the device during the search, window by window ----------------------

    def measurements(self, window: str) -> list[dict] | None:
        """The configs measured in ``window`` (as stored: JSON records), None where it has not run yet."""
        return self.study.user_attrs.get(f"{MEASURED}{window}")

    def add_measurements(self, window: str, records: list[dict]) -> None:
        """Store one window's measured configs: a resumed search takes them in again instead of measuring."""
        self.study.set_user_attr(f"{MEASURED}{window}", records)

    def wait(self, keys: list[Key]) -> list[Key]:
        """Wait until others have stored ``keys``, or until some of them are orphaned (their owner is gone,
        or two claims yielded to each other): returns those, for the caller to claim again. The rest may
        still be running; the caller waits for them again after its claim."""
        pending = list(keys)
        while pending:
            running = self._look()
            pending = [k for k in pending if k not in self._known]
            if not pending:
                return []
            claimed, live = self._claimed(running), self._live_owners()
            orphaned = [k for k in pending if _claim_name(k) not in claimed or claimed[_claim_name(k)][1] not in live]
            if orphaned:
                return orphaned
            time.sleep(POLL_S)
        return []


def load_trials(storage: str, study_name: str) -> pd.DataFrame:
    """One row per evaluated config with its user attributes (the report's input)."""
    try:
        study = optuna.load_study(storage=rdb(storage), study_name=study_name)
    except KeyError:
        raise PruneSearchError(f"no study {study_name!r} in {storage}") from None
    rows = [
        # the claim repeats tokens and genome; the owner stays (which process, on which host, computed it)
        {"number": t.number, **{k: v for k, v in t.user_attrs.items() if k not in ("predicted", "claim")}}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ]
    return pd.DataFrame(rows)


def stored_measurements(attrs: dict) -> list[dict]:
    """Every measured config a study holds, window by window in the order they ran."""
    records = [record for key, window in attrs.items() if key.startswith(MEASURED) for record in window]
    return sorted(records, key=lambda record: record["window"])


def study_attrs(storage: str, study_name: str) -> dict:
    study = optuna.load_study(storage=rdb(storage), study_name=study_name)
    return dict(study.user_attrs)

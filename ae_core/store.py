"""The run store: every run on dataset images kept in one SQLite file, so that a reload, a link opened
elsewhere or a restarted server shows it again and continues it exactly where it stopped.

A run is keyed by its settings (`pair_settings`, `study_settings`): the same settings are the same
run, and its id is a hash of them. A row holds the settings, what the pages list (epochs, scores, when
trained) and one blob: the trainer's state, weights and Adam moments included, in numpy's npz format
and read back without pickle (trainer_state.py: a store file never runs code). Rows are written in
one transaction each, in WAL mode, so a process killed mid-write loses that write only. Past a cap
(`AE_STORE_MB`, default 500; 0 turns the store off) the least recently used runs go first.

A file that is not a store, is corrupt, or has a newer schema is moved aside and a fresh store
started (`notice` says so); where the folder cannot be written (read-only, full), the store turns
itself off and `problem` says why, and everything else keeps working. Uploaded images are never
stored: `settings_of` has no settings for them.
"""

import hashlib
import json
import os
import sqlite3
import statistics
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from . import data, trainer_state
from .architecture import SEED_ARCHITECTURE, Architecture
from .experiment import Experiment
from .progress import DIVERGED
from .settings import engine_for
from .study import SCORES, Study, score_lists

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,           -- sha1 of the settings, 12 hex digits
    settings TEXT NOT NULL UNIQUE, -- canonical JSON of pair_settings or study_settings
    epochs INTEGER NOT NULL,       -- epochs done
    target_epochs INTEGER NOT NULL,
    status TEXT NOT NULL,          -- the trainer's: finished, stopped (diverged runs are not kept)
    scores TEXT NOT NULL,          -- JSON {"mnist_psnr": ..., ...}, the median over a study's pairs
    trained_at REAL NOT NULL,      -- Unix time of the last training
    used_at REAL NOT NULL,         -- Unix time of the last write or load: the cap removes the oldest
    bytes INTEGER NOT NULL,        -- the state blob's size
    state BLOB NOT NULL            -- torch.save of the trainer's state
);
"""
DEFAULT_CAP_MB = 500
BUSY_TIMEOUT_S = 10  # eight sessions storing 40 MB studies at once wait for each other, not fail
Job = Experiment | Study


def store_path() -> Path:
    return data.data_dir() / "runs.sqlite"


def cap_mb_from_environment() -> float:
    """$AE_STORE_MB, else DEFAULT_CAP_MB; a value that is not a number of 0 or more is refused."""
    text = os.environ.get("AE_STORE_MB", str(DEFAULT_CAP_MB))
    try:
        cap = float(text)
    except ValueError:
        cap = -1.0
    if not cap >= 0:
        raise ValueError(f"AE_STORE_MB must be a number of megabytes, 0 or more (got {text!r})")
    return cap


# -- settings: what identifies a run ----------------------------------------------------------------
def training_settings(
    alpha: float, lr: float, seed: int, engine: str = "fast", architecture: Architecture = SEED_ARCHITECTURE
) -> dict:
    """What every run is trained with, whatever its data."""
    return {
        "alpha": float(alpha),
        "lr": float(lr),
        "seed": int(seed),
        # The engine asked for, as the architecture resolves it; a torch without the fast engine's
        # private operators trains "fast" runs on the reference path, within rounding of it.
        "engine": engine_for(engine, architecture),
        "latent_channels": architecture.latent_channels,
        "width": architecture.width,
    }


def pair_settings(source: str, mnist_index: int, cifar_index: int, *training, **named_training) -> dict:
    """One pair's settings; the rest as `training_settings` takes them."""
    pair = {"kind": "pair", "source": source, "mnist_index": int(mnist_index), "cifar_index": int(cifar_index)}
    return pair | training_settings(*training, **named_training)


def study_settings(source: str, pairs: int, *training, **named_training) -> dict:
    """A study's settings; the rest as `training_settings` takes them."""
    return {"kind": "study", "source": source, "pairs": int(pairs)} | training_settings(*training, **named_training)


def settings_of(job: Job) -> dict | None:
    """The settings `job` was made with; None for a pair of uploaded images, which is never stored."""
    trainer = job.trainer
    network = {"engine": trainer.engine_asked, "architecture": trainer.architecture}
    if isinstance(job, Study):
        return study_settings(job.source, len(job.samples), job.alpha, trainer.lr, trainer.seed, **network)
    if "upload" in (job.mnist.source, job.cifar.source):
        return None
    return pair_settings(
        job.mnist.source, job.mnist.index, job.cifar.index, job.alpha, trainer.lr, trainer.seed, **network
    )


def job_from(settings: dict, in_child_process: bool = False) -> Job:
    """An untrained job with these settings (data.DataUnavailable where its source is not downloaded)."""
    common = {
        "in_child_process": in_child_process,
        "alpha": settings["alpha"],
        "lr": settings["lr"],
        "seed": settings["seed"],
        "engine": settings["engine"],
        "architecture": Architecture(settings["latent_channels"], settings["width"]),
    }
    if settings["kind"] == "study":
        return Study(settings["source"], settings["pairs"], **common)
    return Experiment(*data.load_pair(settings["source"], settings["mnist_index"], settings["cifar_index"]), **common)


def _canonical(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def run_id(settings: dict) -> str:
    return hashlib.sha1(_canonical(settings).encode()).hexdigest()[:12]


def _scores(results) -> dict[str, float]:
    """Each of the seed's four numbers, the median over the pairs (a single run's own)."""
    lists = score_lists(results)
    return {f"{dataset}_{metric}": statistics.median(lists[dataset][metric]) for dataset, metric in SCORES}


# -- the store -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredRun:
    """A row of the store, without its state."""

    id: str
    settings: dict
    epochs: int
    target_epochs: int
    status: str
    scores: dict[str, float]
    trained_at: float
    bytes: int

    @property
    def kind(self) -> str:
        return self.settings["kind"]


_COLUMNS = "id, settings, epochs, target_epochs, status, scores, trained_at, bytes"


# Rows written before the network's size was a setting trained the seed's network.
_SETTINGS_ADDED_LATER = {"latent_channels": SEED_ARCHITECTURE.latent_channels, "width": SEED_ARCHITECTURE.width}


def _row(values) -> StoredRun:
    run_id_, settings, epochs, target_epochs, status, scores, trained_at, size = values
    settings = _SETTINGS_ADDED_LATER | json.loads(settings)
    return StoredRun(run_id_, settings, epochs, target_epochs, status, json.loads(scores), trained_at, size)


class NotKept(Exception):
    """A run the store never keeps, and why, in words."""


class StoreCorrupt(Exception):
    """The file is not a store this code can read."""


class RunStore:
    """The runs of one data folder. Every method may be called from any thread; none raises for a
    store that cannot be written or read: it turns the store off (`problem`) and returns nothing."""

    def __init__(self, path: Path | str | None = None, cap_mb: float | None = None) -> None:
        self.path = Path(path) if path is not None else store_path()
        self.cap_bytes = (cap_mb_from_environment() if cap_mb is None else cap_mb) * 1e6
        self.notice = ""  # a file moved aside when the store was opened
        self.problem = "" if self.cap_bytes else "The run store is turned off (AE_STORE_MB=0)."
        self._lock = threading.Lock()  # one writer in this process at a time; SQLite orders processes
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run store")  # one: in order
        self._last_queued: Future | None = None  # the newest write `put(in_background=True)` left to it
        self._queueing = threading.Lock()  # not `_lock`, which the thread holds while it writes
        if not self.problem:
            self._open()

    @property
    def on(self) -> bool:
        return not self.problem

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        return connection

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._check_or_create()
            except StoreCorrupt as why:
                self._move_aside(str(why))
                self._check_or_create()
        except (sqlite3.Error, OSError, StoreCorrupt) as error:
            self._turn_off(error)

    def _check_or_create(self) -> None:
        connection = self._connect()
        try:
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(
                    f"BEGIN; {SCHEMA} INSERT INTO schema_version VALUES ({SCHEMA_VERSION}); COMMIT;"
                )
                return
            if "schema_version" not in tables or "runs" not in tables:
                raise StoreCorrupt("not a run store")
            (version,) = connection.execute("SELECT max(version) FROM schema_version").fetchone()
            if version != SCHEMA_VERSION:
                raise StoreCorrupt(f"a store of schema version {version}, this app reads {SCHEMA_VERSION}")
            connection.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as error:
            if _is_corruption(error):
                raise StoreCorrupt(f"unreadable ({error})") from error
            raise
        finally:
            connection.close()

    def _move_aside(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.{time.strftime('%Y%m%d-%H%M%S')}.aside")
        self.path.rename(aside)
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                companion.rename(aside.with_name(aside.name + suffix))
        self.notice = f"The run store {self.path} was {why}: it was moved aside to {aside.name} and a new one started."

    def _turn_off(self, error: Exception) -> None:
        self.problem = (
            f"Runs are not being kept: the run store {self.path} cannot be used ({error}). "
            "Everything else works as usual."
        )

    def _use(self, work, write: bool = False):
        """`work(connection)` in one transaction, after every write queued before it; None where the
        store is off or fails (then off)."""
        if self._last_queued is not None:
            wait([self._last_queued])  # and so every write queued before it: the thread takes them in order
        return self._use_now(work, write)

    def _use_now(self, work, write: bool = False):
        if not self.on:
            return None
        try:
            with self._lock if write else nullcontext():
                connection = self._connect()
                try:
                    connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    answer = work(connection)
                    connection.execute("COMMIT")
                    return answer
                finally:
                    connection.close()  # an uncommitted transaction rolls back
        except sqlite3.DatabaseError as error:
            if _is_corruption(error):
                self._recover(error)
            else:
                self._turn_off(error)
        except OSError as error:
            self._turn_off(error)
        return None

    def _recover(self, error: Exception) -> None:
        try:
            self._move_aside(f"found corrupt ({error})")
            self._check_or_create()
        except (sqlite3.Error, OSError, StoreCorrupt) as failure:
            self._turn_off(failure)

    # -- what the app and the CLI call ------------------------------------------------------------
    def put(self, job: Job, target_epochs: int, results=None, in_background: bool = False) -> StoredRun | None:
        """Keep `job` as it is now, replacing its settings' earlier row; None where the store is off
        or fails (`problem` says why). Raises NotKept for a job that is never kept.

        `in_background` takes the state now and leaves the write to this store's own thread, in the
        order asked, before any later read; it returns None. The app's Mix & Train then shows its
        results without waiting 18 to 21 ms for SQLite (3 MB at 3,000 epochs; a median of 15 puts in
        an ad-hoc script), a sixth of what the app added to a 3,000-epoch training
        (benchmarks/app_overhead.py)."""
        settings = settings_of(job)
        if settings is None:
            raise NotKept("runs on uploaded images stay in their browser session and are never stored")
        if not job.trainer.epochs_done or job.trainer.status == DIVERGED:
            raise NotKept("only runs that learned something and did not diverge are stored")
        if not self.on:
            return None
        float32_bytes = 4  # weights and both Adam moments, checked before writing 0.7 GB for nothing
        self._check_fits(3 * job.trainer.k * job.trainer.architecture.parameters * float32_bytes)
        state = trainer_state.encode(job.trainer.saved_state())
        self._check_fits(len(state))
        now = time.time()
        scores = _scores(results if results is not None else job.results())
        row = StoredRun(
            run_id(settings),
            settings,
            job.trainer.epochs_done,
            int(target_epochs),
            job.trainer.status,
            scores,
            now,
            len(state),
        )

        def write(connection):
            connection.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    _canonical(settings),
                    row.epochs,
                    row.target_epochs,
                    row.status,
                    json.dumps(row.scores),
                    now,
                    now,
                    row.bytes,
                    state,
                ),
            )
            self._keep_under_cap(connection, row.id)
            return row

        if in_background:
            with self._queueing:  # two sessions queueing at once: the newest noted is the one queued last
                self._last_queued = self._background.submit(self._use_now, write, True)
            return None
        return self._use(write, write=True)

    def _check_fits(self, size: int) -> None:
        if size > self.cap_bytes:
            raise NotKept(
                f"its state ({size / 1e6:,.0f} MB) is larger than the run store's cap of "
                f"{self.cap_bytes / 1e6:,.0f} MB (AE_STORE_MB)"
            )

    def _keep_under_cap(self, connection: sqlite3.Connection, kept: str) -> None:
        total = connection.execute("SELECT coalesce(sum(bytes), 0) FROM runs").fetchone()[0]
        for old, size in connection.execute(
            "SELECT id, bytes FROM runs WHERE id != ? ORDER BY used_at", (kept,)
        ).fetchall():
            if total <= self.cap_bytes:
                break
            connection.execute("DELETE FROM runs WHERE id = ?", (old,))
            total -= size

    def find(self, settings: dict) -> StoredRun | None:
        """The row stored for these settings, if any."""
        return self._use(
            lambda connection: _first(
                connection.execute(f"SELECT {_COLUMNS} FROM runs WHERE settings = ?", (_canonical(settings),))
            )
        )

    def get(self, id_or_prefix: str) -> StoredRun | None:
        """The row whose id is, or uniquely begins with, `id_or_prefix`."""

        def read(connection):
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (_like_prefix(id_or_prefix),)
            ).fetchall()
            return _row(rows[0]) if len(rows) == 1 else None

        return self._use(read)

    def runs(self) -> list[StoredRun]:
        """Every stored run, the most recently trained first."""
        rows = self._use(
            lambda connection: connection.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY trained_at DESC").fetchall()
        )
        return [_row(values) for values in rows or []]

    def load(self, run: StoredRun, in_child_process: bool = False) -> Job | None:
        """`run`'s job with everything it had learned, ready to train on (`in_child_process`: as
        `Experiment` takes it); None where it is gone. Loading counts as a use for the cap. Raises
        data.DataUnavailable where its source is not downloaded."""

        def read(connection):
            found = connection.execute("SELECT state FROM runs WHERE id = ?", (run.id,)).fetchone()
            if found is not None:
                connection.execute("UPDATE runs SET used_at = ? WHERE id = ?", (time.time(), run.id))
            return found

        found = self._use(read, write=True)
        if found is None:
            return None
        job = job_from(run.settings, in_child_process)
        job.trainer.load_saved_state(trainer_state.decode(found[0]))
        return job

    def delete(self, run: StoredRun) -> bool:
        deleted = self._use(
            lambda connection: connection.execute("DELETE FROM runs WHERE id = ?", (run.id,)).rowcount, True
        )
        return bool(deleted)


def _first(cursor) -> StoredRun | None:
    values = cursor.fetchone()
    return None if values is None else _row(values)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    return (
        getattr(error, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        or type(error) is sqlite3.DatabaseError
    )

"""The nightly history index: which runs happened on which night, their scores and per-item scores.

Run directories stay the source of truth; this index can always be rebuilt from them
(`k2eval nightly reindex`). A rebuild fills a new index aside and swaps it in only once it is
complete (`HistoryStore.rebuilding`), so a rebuild that fails or is killed midway leaves the
previous index as it was. It is opened from a URL so that a server database can replace the
default SQLite file: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, or a plain
path. Other schemes plug in through `HISTORY_BACKENDS`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from k2eval.errors import UserError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nights (
    night_id TEXT PRIMARY KEY, suite TEXT NOT NULL, started REAL NOT NULL, night_dir TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, night_id TEXT NOT NULL REFERENCES nights(night_id), slot TEXT NOT NULL,
    task TEXT NOT NULL, model TEXT NOT NULL, metric TEXT NOT NULL, k INTEGER NOT NULL,
    score REAL, ci_lo REAL, ci_hi REAL, n_items INTEGER NOT NULL, n_errors INTEGER NOT NULL,
    complete INTEGER NOT NULL, is_binary INTEGER NOT NULL, protocol TEXT NOT NULL,
    started REAL NOT NULL, run_dir TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_slot ON runs(slot, started);
CREATE TABLE IF NOT EXISTS item_scores (
    run_id TEXT NOT NULL REFERENCES runs(run_id), item_id TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (run_id, item_id)
);
"""


@dataclass(frozen=True)
class NightRow:
    night_id: str
    suite: str
    started: float
    night_dir: str


@dataclass(frozen=True)
class RunRow:
    """One run as indexed: headline numbers (percent) and where its directory lives."""

    run_id: str
    night_id: str
    slot: str
    """The series this run continues night after night (suite entry name; default "task @ model")."""
    task: str
    model: str
    metric: str
    k: int
    score: float | None
    ci_lo: float | None
    ci_hi: float | None
    n_items: int
    n_errors: int
    complete: bool
    is_binary: bool
    protocol: dict[str, Any]
    started: float
    run_dir: str


class HistoryStore(Protocol):
    """What nightly needs from a history database."""

    url: str

    def add_night(self, night: NightRow) -> None: ...
    def add_run(self, run: RunRow, item_scores: dict[str, float]) -> None: ...
    def nights(self) -> list[NightRow]: ...
    def night(self, night_id: str) -> NightRow | None: ...
    def runs_of_night(self, night_id: str) -> list[RunRow]: ...
    def run(self, run_id: str) -> RunRow | None: ...
    def latest_run(self, slot: str, before: float) -> RunRow | None:
        """The series' run from the latest night that started before `before`."""
        ...
    def series(self, slot: str, limit: int = 30) -> list[RunRow]:
        """The series' last `limit` runs, oldest first."""
        ...
    def item_scores(self, run_id: str) -> dict[str, float]: ...
    def rebuilding(self) -> contextlib.AbstractContextManager[HistoryStore]:
        """A new, empty index to fill; it replaces this one when the block ends without an
        error, and is thrown away otherwise (this index is then unchanged)."""
        ...
    def close(self) -> None: ...


_RUN_COLUMNS = ("run_id", "night_id", "slot", "task", "model", "metric", "k", "score", "ci_lo",
                "ci_hi", "n_items", "n_errors", "complete", "is_binary", "protocol", "started",
                "run_dir")


class SQLiteHistory:
    """The default backend: one SQLite file (stdlib sqlite3)."""

    def __init__(self, path: str, url: str | None = None) -> None:
        self.url = url or f"sqlite:///{path}"
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path)
            self._db.executescript(_SCHEMA)
            found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except (OSError, sqlite3.DatabaseError) as exc:
            raise UserError(f"history database {path}: cannot be opened ({exc}); check the "
                            "path, or rebuild it with `k2eval nightly reindex`") from None
        if found is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            raise UserError(f"history database {path} has schema {found[0]}, this k2eval expects "
                            f"{SCHEMA_VERSION}: rebuild it with `k2eval nightly reindex`")

    def add_night(self, night: NightRow) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO nights VALUES (?, ?, ?, ?)",
                             (night.night_id, night.suite, night.started, night.night_dir))

    def add_run(self, run: RunRow, item_scores: dict[str, float]) -> None:
        values = [getattr(run, c) for c in _RUN_COLUMNS]
        values[_RUN_COLUMNS.index("protocol")] = json.dumps(run.protocol, sort_keys=True)
        with self._db:
            self._db.execute("DELETE FROM item_scores WHERE run_id = ?", (run.run_id,))
            self._db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(_RUN_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", values)
            self._db.executemany("INSERT INTO item_scores VALUES (?, ?, ?)",
                                 [(run.run_id, item, value) for item, value in item_scores.items()])

    def nights(self) -> list[NightRow]:
        rows = self._db.execute("SELECT * FROM nights ORDER BY started, night_id").fetchall()
        return [NightRow(*row) for row in rows]

    def night(self, night_id: str) -> NightRow | None:
        row = self._db.execute("SELECT * FROM nights WHERE night_id = ?", (night_id,)).fetchone()
        return NightRow(*row) if row else None

    def _runs(self, where: str, params: Iterable[Any], order: str = "started, run_id") -> list[RunRow]:
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE {where} ORDER BY {order}"
        return [_run_row(row) for row in self._db.execute(sql, tuple(params)).fetchall()]

    def runs_of_night(self, night_id: str) -> list[RunRow]:
        return self._runs("night_id = ?", (night_id,))

    def run(self, run_id: str) -> RunRow | None:
        found = self._runs("run_id = ?", (run_id,))
        return found[0] if found else None

    def _by_night(self, where: str, params: tuple[Any, ...], limit: int) -> list[RunRow]:
        """Runs joined with their nights, latest night first."""
        cols = ", ".join(f"r.{c}" for c in _RUN_COLUMNS)
        rows = self._db.execute(
            f"SELECT {cols} FROM runs r JOIN nights n ON n.night_id = r.night_id WHERE {where} "
            f"ORDER BY n.started DESC, r.started DESC LIMIT {int(limit)}", params).fetchall()
        return [_run_row(row) for row in rows]

    def latest_run(self, slot: str, before: float) -> RunRow | None:
        found = self._by_night("r.slot = ? AND n.started < ?", (slot, before), 1)
        return found[0] if found else None

    def series(self, slot: str, limit: int = 30) -> list[RunRow]:
        return self._by_night("r.slot = ?", (slot,), limit)[::-1]

    def item_scores(self, run_id: str) -> dict[str, float]:
        rows = self._db.execute("SELECT item_id, value FROM item_scores WHERE run_id = ?",
                                (run_id,)).fetchall()
        return {str(item): float(value) for item, value in rows}

    @contextlib.contextmanager
    def rebuilding(self) -> Iterator[HistoryStore]:
        """Fill a new SQLite file beside this one, then rename it over this one (atomic)."""
        if self.path == ":memory:":
            memory = SQLiteHistory(":memory:", self.url)
            yield memory
            self._db.close()
            self._db = memory._db
            return
        target = Path(self.path)
        aside = target.with_name(f".{target.name}.rebuild-{os.getpid()}")
        aside.unlink(missing_ok=True)
        fresh = SQLiteHistory(str(aside), self.url)
        try:
            yield fresh
        except BaseException:
            fresh.close()
            aside.unlink(missing_ok=True)
            raise
        fresh.close()
        with aside.open("rb") as fh:
            os.fsync(fh.fileno())
        self._db.close()
        try:
            os.replace(aside, target)
        except OSError:
            aside.unlink(missing_ok=True)
            raise
        finally:
            self._db = sqlite3.connect(self.path)

    def close(self) -> None:
        self._db.close()


def _run_row(row: tuple[Any, ...]) -> RunRow:
    data = dict(zip(_RUN_COLUMNS, row, strict=True))
    data["protocol"] = json.loads(data["protocol"])
    data["complete"] = bool(data["complete"])
    data["is_binary"] = bool(data["is_binary"])
    return RunRow(**data)


def _sqlite(url: str) -> HistoryStore:
    rest = url.split("://", 1)[1] if "://" in url else url
    path = rest[1:] if rest.startswith("/") else rest  # sqlite:///rel, sqlite:////abs
    return SQLiteHistory(path or ":memory:", url)


HISTORY_BACKENDS: dict[str, Callable[[str], HistoryStore]] = {"sqlite": _sqlite}


def open_history(url: str) -> HistoryStore:
    """The history database at `url` (a plain path means a SQLite file)."""
    if "://" not in url:
        return SQLiteHistory(url, f"sqlite:///{url}")
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    backend = HISTORY_BACKENDS.get(scheme)
    if backend is None:
        raise UserError(f"--history {url}: unsupported database scheme {scheme!r}; use "
                        f"sqlite:///PATH or a file path (available: {', '.join(HISTORY_BACKENDS)})")
    return backend(url)

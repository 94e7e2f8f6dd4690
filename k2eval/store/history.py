"""The nightly history index: which runs happened on which night, their scores and per-item scores.

Run directories stay the source of truth; this index can always be rebuilt from them
(`k2eval nightly reindex`, atomic: the old index stays until the new one is complete). It lives
in any database `k2eval.store.database` opens: a SQLite file by default (a plain path,
`sqlite:///relative.db`, `sqlite:////absolute.db`) or a PostgreSQL server
(`postgresql://user@host:port/db`) that several machines write at once. A newer k2eval upgrades
an older history in place (`SCHEMA_STEPS`).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from k2eval.errors import UserError
from k2eval.store.database import meta_table_of, migrate, open_engine, redact_url

if TYPE_CHECKING:
    import sqlalchemy as sa


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
    output_tokens: int | None = None
    """Output tokens the agent model spent (None for runs indexed before it was recorded)."""


class IndexWriter(Protocol):
    """Where indexed nights and runs go: a history, or a rebuild of one in progress."""

    def add_night(self, night: NightRow) -> None: ...
    def add_run(self, run: RunRow, item_scores: dict[str, float]) -> None: ...


@dataclass
class PendingIndex:
    """A rebuild in progress: rows collected until `HistoryStore.rebuilding` swaps them in."""

    night_rows: list[NightRow] = field(default_factory=list)
    run_rows: list[tuple[RunRow, dict[str, float]]] = field(default_factory=list)

    def add_night(self, night: NightRow) -> None:
        self.night_rows.append(night)

    def add_run(self, run: RunRow, item_scores: dict[str, float]) -> None:
        self.run_rows.append((run, dict(item_scores)))

    def nights(self) -> list[NightRow]:
        return list(self.night_rows)


class HistoryStore(IndexWriter, Protocol):
    """What nightly and the dashboard need from a history database."""

    url: str

    def replace_all(self, nights: list[NightRow],
                    runs: list[tuple[RunRow, dict[str, float]]]) -> None:
        """Swap the whole index for these rows in one transaction."""
        ...
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
    def rebuilding(self) -> contextlib.AbstractContextManager[PendingIndex]:
        """A new, empty index to fill; it replaces this one (in one transaction) when the
        block ends without an error, and is thrown away otherwise (this one is unchanged)."""
        ...
    def close(self) -> None: ...


_RUN_COLUMNS = ("run_id", "night_id", "slot", "task", "model", "metric", "k", "score", "ci_lo",
                "ci_hi", "n_items", "n_errors", "complete", "is_binary", "protocol", "started",
                "run_dir", "output_tokens")


def _tables() -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table]:
    """The schema as of the newest version (`SCHEMA_STEPS` upgrade older databases)."""
    import sqlalchemy as sa

    md = sa.MetaData()
    meta_table_of(md)
    nights = sa.Table("nights", md,
                      sa.Column("night_id", sa.String(200), primary_key=True),
                      sa.Column("suite", sa.Text, nullable=False),
                      sa.Column("started", sa.Float, nullable=False),
                      sa.Column("night_dir", sa.Text, nullable=False))
    runs = sa.Table("runs", md,
                    sa.Column("run_id", sa.String(300), primary_key=True),
                    sa.Column("night_id", sa.String(200), sa.ForeignKey("nights.night_id"),
                              nullable=False),
                    sa.Column("slot", sa.Text, nullable=False),
                    sa.Column("task", sa.Text, nullable=False),
                    sa.Column("model", sa.Text, nullable=False),
                    sa.Column("metric", sa.Text, nullable=False),
                    sa.Column("k", sa.Integer, nullable=False),
                    sa.Column("score", sa.Float), sa.Column("ci_lo", sa.Float),
                    sa.Column("ci_hi", sa.Float),
                    sa.Column("n_items", sa.Integer, nullable=False),
                    sa.Column("n_errors", sa.Integer, nullable=False),
                    sa.Column("complete", sa.Integer, nullable=False),
                    sa.Column("is_binary", sa.Integer, nullable=False),
                    sa.Column("protocol", sa.Text, nullable=False),
                    sa.Column("started", sa.Float, nullable=False),
                    sa.Column("run_dir", sa.Text, nullable=False),
                    sa.Column("output_tokens", sa.BigInteger))
    sa.Index("runs_slot", runs.c.slot, runs.c.started)
    items = sa.Table("item_scores", md,
                     sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.run_id"),
                               primary_key=True),
                     sa.Column("item_id", sa.String(500), primary_key=True),
                     sa.Column("value", sa.Float, nullable=False))
    return md, nights, runs, items


def _add_output_tokens(conn: sa.Connection) -> None:
    import sqlalchemy as sa

    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN output_tokens BIGINT"))


SCHEMA_STEPS = [_add_output_tokens]
"""Version 1 (k2eval 0.1) -> 2: runs.output_tokens."""


def _adopt_legacy_version(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """k2eval 0.1 kept its schema version in a `meta` table of its own: carry it over."""
    import sqlalchemy as sa

    inspector = sa.inspect(engine)
    if "meta" not in inspector.get_table_names():
        return
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema'")).first()
        if row is None:
            return
        meta = meta_table_of(metadata)
        meta.create(conn, checkfirst=True)
        if conn.execute(sa.select(meta.c.value).where(meta.c.key == "history_schema")).first():
            return
        conn.execute(meta.insert().values(key="history_schema", value=str(row[0])))


class SQLHistory:
    """The history on SQLAlchemy Core: a SQLite file or a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        metadata, self._nights, self._runs, self._items = _tables()
        try:
            _adopt_legacy_version(self.engine, metadata)
            migrate(self.engine, "history", metadata, SCHEMA_STEPS)
        except UserError:
            raise
        except Exception as exc:  # a file that is not a database, a foreign schema, ...
            raise UserError(f"history database {redact_url(url)}: cannot be opened ({exc}); "
                            "check the path, or rebuild it with `k2eval nightly reindex`") from None

    # --- writing -----------------------------------------------------------------------------
    def _write(self, work: Any) -> None:
        """Run `work(conn)` in one transaction; retried when a concurrent writer of the same
        keys (another machine's nightly) commits first."""
        import sqlalchemy as sa

        for attempt in range(8):
            try:
                with self.engine.begin() as conn:
                    work(conn)
                return
            except sa.exc.DBAPIError as exc:
                if attempt == 7 or not _is_write_conflict(exc):
                    raise
                time.sleep(random.uniform(0, 0.05 * 2 ** attempt))

    def _put_night(self, conn: sa.Connection, night: NightRow) -> None:
        t = self._nights
        conn.execute(t.delete().where(t.c.night_id == night.night_id))
        conn.execute(t.insert().values(night_id=night.night_id, suite=night.suite,
                                       started=night.started, night_dir=night.night_dir))

    def _put_run(self, conn: sa.Connection, run: RunRow, item_scores: dict[str, float]) -> None:
        values = {c: getattr(run, c) for c in _RUN_COLUMNS}
        values["protocol"] = json.dumps(run.protocol, sort_keys=True)
        values["complete"], values["is_binary"] = int(run.complete), int(run.is_binary)
        conn.execute(self._items.delete().where(self._items.c.run_id == run.run_id))
        conn.execute(self._runs.delete().where(self._runs.c.run_id == run.run_id))
        conn.execute(self._runs.insert().values(**values))
        if item_scores:
            conn.execute(self._items.insert(), [{"run_id": run.run_id, "item_id": item,
                                                 "value": value}
                                                for item, value in item_scores.items()])

    def add_night(self, night: NightRow) -> None:
        self._write(lambda conn: self._put_night(conn, night))

    def add_run(self, run: RunRow, item_scores: dict[str, float]) -> None:
        self._write(lambda conn: self._put_run(conn, run, item_scores))

    def replace_all(self, nights: list[NightRow],
                    runs: list[tuple[RunRow, dict[str, float]]]) -> None:
        def work(conn: sa.Connection) -> None:
            self._clear(conn)
            for night in nights:
                self._put_night(conn, night)
            for run, items in runs:
                self._put_run(conn, run, items)

        self._write(work)

    def _clear(self, conn: sa.Connection) -> None:
        for table in (self._items, self._runs, self._nights):
            conn.execute(table.delete())

    @contextlib.contextmanager
    def rebuilding(self) -> Iterator[PendingIndex]:
        pending = PendingIndex()
        yield pending
        self.replace_all(pending.night_rows, pending.run_rows)

    # --- reading -----------------------------------------------------------------------------
    def _select(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def nights(self) -> list[NightRow]:
        t = self._nights
        rows = self._select(t.select().order_by(t.c.started, t.c.night_id))
        return [NightRow(*row) for row in rows]

    def night(self, night_id: str) -> NightRow | None:
        t = self._nights
        rows = self._select(t.select().where(t.c.night_id == night_id))
        return NightRow(*rows[0]) if rows else None

    def _run_query(self) -> Any:
        import sqlalchemy as sa

        return sa.select(*(self._runs.c[c] for c in _RUN_COLUMNS))

    def runs_of_night(self, night_id: str) -> list[RunRow]:
        r = self._runs
        query = self._run_query().where(r.c.night_id == night_id).order_by(r.c.started, r.c.run_id)
        return [_run_row(row) for row in self._select(query)]

    def run(self, run_id: str) -> RunRow | None:
        rows = self._select(self._run_query().where(self._runs.c.run_id == run_id))
        return _run_row(rows[0]) if rows else None

    def _by_night(self, conditions: Iterable[Any], limit: int) -> list[RunRow]:
        """Runs joined with their nights, latest night first."""
        r, n = self._runs, self._nights
        query = (self._run_query().join(n, n.c.night_id == r.c.night_id)
                 .where(*conditions).order_by(n.c.started.desc(), r.c.started.desc())
                 .limit(int(limit)))
        return [_run_row(row) for row in self._select(query)]

    def latest_run(self, slot: str, before: float) -> RunRow | None:
        found = self._by_night((self._runs.c.slot == slot, self._nights.c.started < before), 1)
        return found[0] if found else None

    def series(self, slot: str, limit: int = 30) -> list[RunRow]:
        return self._by_night((self._runs.c.slot == slot,), limit)[::-1]

    def item_scores(self, run_id: str) -> dict[str, float]:
        t = self._items
        rows = self._select(t.select().with_only_columns(t.c.item_id, t.c.value)
                            .where(t.c.run_id == run_id))
        return {str(item): float(value) for item, value in rows}

    def close(self) -> None:
        self.engine.dispose()


_CONFLICT_SQLSTATES = {"40001", "40P01", "23505"}
"""Serialization failure, deadlock, unique violation: another writer got there first."""


def _is_write_conflict(exc: Exception) -> bool:
    """Whether a failed transaction lost a race with another writer (retry it) rather than
    failed for good."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.IntegrityError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return sqlstate in _CONFLICT_SQLSTATES or "database is locked" in str(exc)


def _run_row(row: Iterable[Any]) -> RunRow:
    data = dict(zip(_RUN_COLUMNS, row, strict=True))
    data["protocol"] = json.loads(data["protocol"])
    data["complete"] = bool(data["complete"])
    data["is_binary"] = bool(data["is_binary"])
    if data["output_tokens"] is not None:
        data["output_tokens"] = int(data["output_tokens"])
    return RunRow(**data)


def open_history(url: str) -> HistoryStore:
    """The history database at `url` (a plain path means a SQLite file)."""
    return SQLHistory(url)

"""Databases named by a URL: a SQLite file (the default) or a PostgreSQL server.

Both go through SQLAlchemy Core (with psycopg for PostgreSQL), so that the history index and
the response cache are written once and run on either. Accepted spellings:

- a plain path (`runs/history.db`) or `sqlite:///relative.db` / `sqlite:////absolute.db`;
- `postgresql://user[:password]@host[:port]/db` (also `postgres://`, `postgresql+psycopg://`).

Each store keeps its schema version in the shared `k2eval_meta` table and upgrades an older
database in place when it opens it (`migrate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from k2eval.errors import UserError

if TYPE_CHECKING:
    import sqlalchemy as sa


def database_url(text: str) -> str:
    """The SQLAlchemy URL for what the user typed (see the module docstring)."""
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        return text
    if base in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    raise UserError(f"{redact_url(text)}: unsupported database URL scheme {scheme!r}; use a file "
                    "path, sqlite:///PATH or postgresql://user@host:port/db")


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (for messages, manifests and pages)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def open_engine(text: str) -> sa.Engine:
    """An engine for the database at `text`; a SQLite file's folder is created when missing.

    Raises `UserError` (one line, password hidden) when the database cannot be reached."""
    import sqlalchemy as sa

    url = database_url(text)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Several processes may write one file (two nightly suites): wait for the lock.
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        if not path or path == ":memory:":  # one connection, or every one sees a new database
            kwargs["poolclass"] = sa.pool.StaticPool
    else:
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            sa.event.listen(engine, "connect", _sqlite_connect)
            sa.event.listen(engine, "begin", _sqlite_begin)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except ModuleNotFoundError as exc:
        raise UserError(f"{redact_url(text)}: the database driver is missing ({exc.name}); "
                        "install it with: pip install 'k2eval[team]'") from None
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise UserError(f"database {redact_url(text)} cannot be opened: {reason}") from None
    return engine


def _sqlite_connect(connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides where transactions begin (the module's own
    # implicit transactions break savepoints); WAL lets readers run beside one writer.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Take the write lock up front: two deferred transactions that both write later would
    # fail with "database is locked" instead of waiting for each other.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


Migration = Callable[["sa.Connection"], None]


def migrate(engine: sa.Engine, store: str, metadata: sa.MetaData,
            steps: Sequence[Migration] = ()) -> int:
    """Create `metadata`'s tables and bring `store`'s schema up to `len(steps) + 1`.

    Version 1 is `metadata` as first released; `steps[i]` upgrades version i + 1 to i + 2.
    Concurrent openers are safe: creation is idempotent and each step runs in one
    transaction that re-reads the version first. A database newer than this k2eval is
    refused with a one-line error."""
    import sqlalchemy as sa

    meta_table = meta_table_of(metadata)
    target = len(steps) + 1
    for attempt in range(5):
        try:
            metadata.create_all(engine, checkfirst=True)
            break
        except sa.exc.SQLAlchemyError:  # another process created the tables at the same moment
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    key = f"{store}_schema"
    version_query = sa.select(meta_table.c.value).where(meta_table.c.key == key)

    def current() -> int | None:
        with engine.connect() as conn:
            row = conn.execute(version_query).first()
        return None if row is None else int(row[0])

    while True:
        seen = current()
        if seen is not None and seen > target:
            raise UserError(f"the {store} database has schema version {seen}, newer than this "
                            f"k2eval understands ({target}): upgrade k2eval")
        if seen == target:
            return target
        try:
            with engine.begin() as conn:
                row = conn.execute(version_query.with_for_update()).first()
                if row is None:
                    conn.execute(meta_table.insert().values(key=key, value=str(target)))
                    continue
                version = int(row[0])
                if version != seen:
                    continue  # another process moved it on: look again
                steps[version - 1](conn)
                conn.execute(meta_table.update().where(meta_table.c.key == key)
                             .values(value=str(version + 1)))
        except sa.exc.SQLAlchemyError:
            if current() == seen:  # nobody else got further: a real failure
                raise


def meta_table_of(metadata: sa.MetaData) -> sa.Table:
    """The `k2eval_meta` table (key -> value) inside `metadata`, created on first use."""
    import sqlalchemy as sa

    if "k2eval_meta" in metadata.tables:
        return metadata.tables["k2eval_meta"]
    return sa.Table("k2eval_meta", metadata,
                    sa.Column("key", sa.String(200), primary_key=True),
                    sa.Column("value", sa.Text, nullable=False))

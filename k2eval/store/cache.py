"""The response cache: model replies stored under a key of everything that determined them.

A key covers the endpoint's identity (base URL host, port and path, never credentials or the
API key), the model name, the messages, the tools, the sampling parameters (including the
per-attempt seed, so that the k samples of avg@k stay distinct) and any extra request options.
The same database can be a SQLite file (default `~/.cache/k2eval/responses.db`) or a shared
PostgreSQL server (`k2eval.store.database`).

Modes: `read-write` (serve hits, store misses), `read-only` (serve hits, store nothing),
`refresh` (always call the model, overwrite the entry) and `off`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from k2eval.errors import UserError
from k2eval.store.database import migrate, open_engine, redact_url

if TYPE_CHECKING:
    import sqlalchemy as sa

CacheMode = Literal["read-write", "read-only", "refresh", "off"]
CACHE_MODES: tuple[CacheMode, ...] = get_args(CacheMode)


def default_cache_path() -> Path:
    """`$K2EVAL_CACHE_DIR/responses.db`, else `$XDG_CACHE_HOME/k2eval/responses.db`."""
    base = os.environ.get("K2EVAL_CACHE_DIR")
    if base:
        return Path(base) / "responses.db"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "k2eval" / "responses.db"


def cache_key(identity: dict[str, Any], messages: list[dict[str, Any]],
              tools: list[dict[str, Any]] | None, sampling: dict[str, Any]) -> str:
    """A stable hash of everything that determines a response (see the module docstring)."""
    payload = {"identity": identity, "messages": messages, "tools": tools or [],
               "sampling": sampling}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    entries: int
    hits: int
    bytes: int
    oldest: float | None
    newest: float | None
    by_model: dict[str, int]

    def lines(self) -> list[str]:
        def when(t: float | None) -> str:
            return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

        out = [f"entries: {self.entries}", f"hits served: {self.hits}",
               f"stored replies: {self.bytes / 1e6:.1f} MB",
               f"oldest: {when(self.oldest)}   newest: {when(self.newest)}"]
        out += [f"  {model}: {n}" for model, n in sorted(self.by_model.items())]
        return out


_SCHEMA_STEPS: list[Any] = []
"""Upgrades of the cache schema, oldest first (see `k2eval.store.database.migrate`)."""


def _tables() -> tuple[sa.MetaData, sa.Table]:
    import sqlalchemy as sa

    metadata = sa.MetaData()
    table = sa.Table(
        "response_cache", metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("last_used", sa.Float, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False, default=0),
        sa.Column("response", sa.Text, nullable=False),
    )
    sa.Index("response_cache_last_used", table.c.last_used)
    return metadata, table


class ResponseCache:
    """Stored replies by key; safe for several processes and machines at once."""

    def __init__(self, location: str | None = None) -> None:
        self.location = location or str(default_cache_path())
        self.engine = open_engine(self.location)
        metadata, self.table = _tables()
        migrate(self.engine, "cache", metadata, _SCHEMA_STEPS)

    def describe(self) -> str:
        return redact_url(self.location)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored reply, counting the hit; None on a miss."""
        import sqlalchemy as sa

        t = self.table
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.c.response).where(t.c.key == key)).first()
            if row is None:
                return None
            conn.execute(t.update().where(t.c.key == key)
                         .values(hits=t.c.hits + 1, last_used=time.time()))
        reply: dict[str, Any] = json.loads(row[0])
        return reply

    def put(self, key: str, *, endpoint: str, model: str, response: dict[str, Any]) -> None:
        """Store (or overwrite) the reply under `key`."""
        import sqlalchemy as sa

        t = self.table
        now = time.time()
        text = json.dumps(response, sort_keys=True, ensure_ascii=False)
        values = {"endpoint": endpoint, "model": model, "last_used": now, "response": text}
        for _ in range(3):
            with self.engine.begin() as conn:
                if conn.execute(t.update().where(t.c.key == key).values(**values)).rowcount:
                    return
                try:
                    with conn.begin_nested():
                        conn.execute(t.insert().values(key=key, created=now, hits=0, **values))
                    return
                except sa.exc.IntegrityError:
                    continue  # another writer stored it first: overwrite that
        raise UserError(f"response cache {self.describe()}: could not store a reply")

    def stats(self) -> CacheStats:
        import sqlalchemy as sa

        t = self.table
        with self.engine.connect() as conn:
            n, hits, size, oldest, newest = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.hits), 0),
                sa.func.coalesce(sa.func.sum(sa.func.length(t.c.response)), 0),
                sa.func.min(t.c.created), sa.func.max(t.c.created))).one()
            by_model = conn.execute(sa.select(t.c.model, sa.func.count())
                                    .group_by(t.c.model)).all()
        return CacheStats(entries=int(n), hits=int(hits), bytes=int(size), oldest=oldest,
                          newest=newest, by_model={str(m): int(c) for m, c in by_model})

    def prune(self, older_than_s: float) -> int:
        """Delete entries not used for `older_than_s` seconds; returns how many."""
        t = self.table
        with self.engine.begin() as conn:
            result = conn.execute(t.delete().where(t.c.last_used < time.time() - older_than_s))
        return int(result.rowcount or 0)

    def close(self) -> None:
        self.engine.dispose()


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s` (or plain seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise UserError(f"--older-than {text!r}: expected a number with a unit, e.g. 30d, 12h, "
                        "90m") from None

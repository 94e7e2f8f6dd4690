"""Database URLs and schema migrations, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from k2eval.errors import UserError
from k2eval.store.database import database_url, migrate, open_engine, redact_url


def v1_tables() -> tuple[sa.MetaData, sa.Table]:
    metadata = sa.MetaData()
    table = sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata, table


def add_colour(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE things ADD COLUMN colour TEXT"))
    conn.execute(sa.text("UPDATE things SET colour = 'grey'"))


def v2_tables() -> tuple[sa.MetaData, sa.Table]:
    metadata = sa.MetaData()
    table = sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("colour", sa.Text))
    return metadata, table


def test_a_newer_k2eval_upgrades_an_older_database_in_place(database_url: str) -> None:
    engine = open_engine(database_url)
    metadata, things = v1_tables()
    assert migrate(engine, "things", metadata) == 1
    with engine.begin() as conn:
        conn.execute(things.insert().values(id=1))
    metadata2, things2 = v2_tables()
    assert migrate(engine, "things", metadata2, [add_colour]) == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(things2.c.id, things2.c.colour)).all() == [(1, "grey")]
    assert migrate(engine, "things", metadata2, [add_colour]) == 2  # idempotent
    engine.dispose()


def test_concurrent_openers_run_each_upgrade_once(database_url: str) -> None:
    engine = open_engine(database_url)
    metadata, things = v1_tables()
    migrate(engine, "things", metadata)
    with engine.begin() as conn:
        conn.execute(things.insert().values(id=1))
    engine.dispose()
    errors: list[BaseException] = []

    def open_and_upgrade() -> None:
        try:
            other = open_engine(database_url)
            migrate(other, "things", v2_tables()[0], [add_colour])
            other.dispose()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_upgrade) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = open_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT colour FROM things")).scalars().all() == ["grey"]
    engine.dispose()


def test_a_database_newer_than_this_k2eval_is_refused(database_url: str) -> None:
    engine = open_engine(database_url)
    migrate(engine, "things", v2_tables()[0], [add_colour])
    with pytest.raises(UserError, match="newer than this k2eval"):
        migrate(engine, "things", v1_tables()[0])
    engine.dispose()


@pytest.mark.parametrize(("typed", "url"), [
    ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_database_urls(typed: str, url: str) -> None:
    assert database_url(typed) == url


def test_a_plain_path_is_an_absolute_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url("runs/history.db").startswith("sqlite:////")
    assert database_url("runs/history.db") == f"sqlite:///{tmp_path.resolve()}/runs/history.db"


def test_passwords_are_hidden() -> None:
    assert redact_url("postgresql://bob:pw@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact_url("postgresql://bob@db/x") == "postgresql://bob@db/x"

"""The history database on SQLite and on a real PostgreSQL server: URLs, round trips,
baselines by time, concurrent writers, and the upgrade of a history written by k2eval 0.1."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from k2eval.errors import UserError
from k2eval.store.history import NightRow, RunRow, SQLHistory, open_history


def _row(run_id: str, night: str, started: float, slot: str = "aime|m", score: float = 50.0,
         output_tokens: int | None = 1234) -> RunRow:
    return RunRow(run_id=run_id, night_id=night, slot=slot, task="aime", model="openai:m",
                  metric="avg@k", k=2, score=score, ci_lo=40.0, ci_hi=60.0, n_items=3, n_errors=0,
                  complete=True, is_binary=False, protocol={"task.k": 2}, started=started,
                  run_dir=f"/runs/{run_id}", output_tokens=output_tokens)


@pytest.mark.parametrize("form", ["plain", "relative-url", "absolute-url"])
def test_urls_open_sqlite_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.chdir(tmp_path)
    url = {"plain": "db/h.sqlite", "relative-url": "sqlite:///db/h.sqlite",
           "absolute-url": f"sqlite:///{tmp_path}/db/h.sqlite"}[form]
    store = open_history(url)
    store.add_night(NightRow("n1", "suite", 1.0, "/runs/n1"))
    store.close()
    assert (tmp_path / "db" / "h.sqlite").is_file()
    assert SQLHistory(str(tmp_path / "db" / "h.sqlite")).nights()[0].night_id == "n1"


def test_unknown_scheme_unreachable_server_and_damaged_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unsupported database URL scheme 'mysql'"):
        open_history("mysql://db.example/k2eval")
    with pytest.raises(UserError, match=r"cannot be opened") as info:
        open_history("postgresql://k2eval:pw@127.0.0.1:1/k2eval")
    assert "pw@" not in str(info.value)
    bad = tmp_path / "bad.db"
    bad.write_text("this is not a database, just text " * 100)
    with pytest.raises(UserError, match=r"bad\.db.*cannot be opened"):
        open_history(str(bad))


def test_runs_item_scores_and_latest_baseline(database_url: str) -> None:
    store = open_history(database_url)
    for i, night in enumerate(("n1", "n2", "n3")):
        store.add_night(NightRow(night, "suite", 100.0 * i, f"/runs/{night}"))
        store.add_run(_row(f"r{i}", night, 100.0 * i + 1, score=10.0 * i), {"a": i / 2, "b": 1.0})
    store.add_run(_row("other", "n2", 150.0, slot="gpqa|m"), {"a": 0.0})
    store.add_run(_row("late", "n1", 999.0, output_tokens=None), {"a": 0.0})  # started late in n1
    assert [r.run_id for r in store.series("aime|m")] == ["r0", "late", "r1", "r2"]
    assert store.latest_run("aime|m", before=200.0).run_id == "r1"  # type: ignore[union-attr]
    assert store.latest_run("aime|m", before=100.0).run_id == "late"  # type: ignore[union-attr]
    assert store.latest_run("aime|m", before=0.0) is None
    assert [r.run_id for r in store.series("aime|m", limit=2)] == ["r1", "r2"]
    assert store.item_scores("r2") == {"a": 1.0, "b": 1.0}
    assert store.run("r1") == _row("r1", "n2", 101.0, score=10.0)
    assert store.run("late").output_tokens is None  # type: ignore[union-attr]
    assert [r.run_id for r in store.runs_of_night("n2")] == ["r1", "other"]
    store.add_run(_row("r1", "n2", 101.0, score=99.0), {"a": 0.25})  # re-indexing replaces
    assert store.run("r1").score == 99.0  # type: ignore[union-attr]
    assert store.item_scores("r1") == {"a": 0.25}
    with store.rebuilding() as fresh:
        assert fresh.nights() == [] and store.run("r1") is not None
    assert store.nights() == [] and store.run("r1") is None
    store.close()


def test_replace_all_swaps_the_whole_index(database_url: str) -> None:
    store = open_history(database_url)
    store.add_night(NightRow("old", "suite", 1.0, "/runs/old"))
    store.add_run(_row("r-old", "old", 2.0), {"a": 1.0})
    store.replace_all([NightRow("n1", "suite", 5.0, "/runs/n1")],
                      [(_row("r1", "n1", 6.0), {"a": 0.0, "b": 1.0})])
    assert [n.night_id for n in store.nights()] == ["n1"]
    assert store.run("r-old") is None and store.item_scores("r1") == {"a": 0.0, "b": 1.0}
    store.close()


def test_two_machines_indexing_at_once_lose_nothing(database_url: str) -> None:
    """Two nightly suites (two processes or machines) write one history concurrently."""
    stores = [open_history(database_url) for _ in range(2)]
    stores[0].add_night(NightRow("shared", "suite", 1.0, "/runs/shared"))

    def index(n: int) -> None:
        store = stores[n]
        store.add_night(NightRow(f"night-{n}", f"suite-{n}", 10.0 + n, f"/runs/{n}"))
        for i in range(25):
            store.add_run(_row(f"m{n}-r{i}", f"night-{n}", 10.0 + i, slot=f"s{n}"),
                          {f"q{j}": j % 2 for j in range(20)})
            # both also re-index the same run of the shared night
            store.add_run(_row("both", "shared", 1.0 + i), {"q": float(n)})

    threads = [threading.Thread(target=index, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = open_history(database_url)
    assert len(check.runs_of_night("night-0")) == len(check.runs_of_night("night-1")) == 25
    assert all(len(check.item_scores(f"m{n}-r{i}")) == 20 for n in range(2) for i in range(25))
    assert len(check.runs_of_night("shared")) == 1
    for s in (*stores, check):
        s.close()


LEGACY_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE nights (night_id TEXT PRIMARY KEY, suite TEXT NOT NULL, started REAL NOT NULL,
                     night_dir TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, night_id TEXT NOT NULL REFERENCES nights(night_id), slot TEXT NOT NULL,
    task TEXT NOT NULL, model TEXT NOT NULL, metric TEXT NOT NULL, k INTEGER NOT NULL,
    score REAL, ci_lo REAL, ci_hi REAL, n_items INTEGER NOT NULL, n_errors INTEGER NOT NULL,
    complete INTEGER NOT NULL, is_binary INTEGER NOT NULL, protocol TEXT NOT NULL,
    started REAL NOT NULL, run_dir TEXT NOT NULL);
CREATE INDEX runs_slot ON runs(slot, started);
CREATE TABLE item_scores (run_id TEXT NOT NULL REFERENCES runs(run_id), item_id TEXT NOT NULL,
                          value REAL NOT NULL, PRIMARY KEY (run_id, item_id));
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO nights VALUES ('n1', 'suite', 100.0, '/runs/n1');
INSERT INTO runs VALUES ('r1', 'n1', 'aime|m', 'aime', 'openai:m', 'avg@k', 2, 50.0, 40.0, 60.0,
                         3, 0, 1, 0, '{"task.k": 2}', 101.0, '/runs/r1');
INSERT INTO item_scores VALUES ('r1', 'a', 0.5), ('r1', 'b', 1.0);
"""


def test_a_history_written_by_k2eval_0_1_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as db:
        db.executescript(LEGACY_SCHEMA)
    store = open_history(str(path))
    assert store.run("r1") == _row("r1", "n1", 101.0, output_tokens=None)
    assert store.item_scores("r1") == {"a": 0.5, "b": 1.0}
    store.add_night(NightRow("n2", "suite", 200.0, "/runs/n2"))
    store.add_run(_row("r2", "n2", 201.0, output_tokens=77), {"a": 1.0})
    assert [r.output_tokens for r in store.series("aime|m")] == [None, 77]
    store.close()
    reopened = open_history(str(path))  # the upgrade ran once; reopening changes nothing
    assert [r.run_id for r in reopened.series("aime|m")] == ["r1", "r2"]
    reopened.close()

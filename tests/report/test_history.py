"""The history database: URLs, round trips, baselines by time."""

from __future__ import annotations

from pathlib import Path

import pytest

from k2eval.errors import UserError
from k2eval.store.history import NightRow, RunRow, SQLiteHistory, open_history


def _row(run_id: str, night: str, started: float, slot: str = "aime|m", score: float = 50.0) -> RunRow:
    return RunRow(run_id=run_id, night_id=night, slot=slot, task="aime", model="openai:m",
                  metric="avg@k", k=2, score=score, ci_lo=40.0, ci_hi=60.0, n_items=3, n_errors=0,
                  complete=True, is_binary=False, protocol={"task.k": 2}, started=started,
                  run_dir=f"/runs/{run_id}")


@pytest.mark.parametrize("form", ["plain", "relative-url", "absolute-url"])
def test_urls_open_sqlite_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.chdir(tmp_path)
    url = {"plain": "db/h.sqlite", "relative-url": "sqlite:///db/h.sqlite",
           "absolute-url": f"sqlite:///{tmp_path}/db/h.sqlite"}[form]
    store = open_history(url)
    store.add_night(NightRow("n1", "suite", 1.0, "/runs/n1"))
    store.close()
    assert (tmp_path / "db" / "h.sqlite").is_file()
    assert SQLiteHistory(str(tmp_path / "db" / "h.sqlite")).nights()[0].night_id == "n1"


def test_unknown_scheme_and_damaged_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unsupported database scheme 'postgresql'.*sqlite:///PATH"):
        open_history("postgresql://db.example/k2eval")
    bad = tmp_path / "bad.db"
    bad.write_text("this is not a database, just text " * 100)
    with pytest.raises(UserError, match=r"bad\.db: cannot be opened.*reindex"):
        open_history(str(bad))


def test_runs_item_scores_and_latest_baseline() -> None:
    store = open_history("sqlite://")
    for i, night in enumerate(("n1", "n2", "n3")):
        store.add_night(NightRow(night, "suite", 100.0 * i, f"/runs/{night}"))
        store.add_run(_row(f"r{i}", night, 100.0 * i + 1, score=10.0 * i), {"a": i / 2, "b": 1.0})
    store.add_run(_row("other", "n2", 150.0, slot="gpqa|m"), {"a": 0.0})
    store.add_run(_row("late", "n1", 999.0), {"a": 0.0})  # run started late in the first night
    assert [r.run_id for r in store.series("aime|m")] == ["r0", "late", "r1", "r2"]
    assert store.latest_run("aime|m", before=200.0).run_id == "r1"  # type: ignore[union-attr]
    assert store.latest_run("aime|m", before=100.0).run_id == "late"  # type: ignore[union-attr]
    assert store.latest_run("aime|m", before=0.0) is None
    assert [r.run_id for r in store.series("aime|m", limit=2)] == ["r1", "r2"]
    assert store.item_scores("r2") == {"a": 1.0, "b": 1.0}
    assert store.run("r1") == _row("r1", "n2", 101.0, score=10.0)
    assert [r.run_id for r in store.runs_of_night("n2")] == ["r1", "other"]
    store.add_run(_row("r1", "n2", 101.0, score=99.0), {"a": 0.25})  # re-indexing replaces
    assert store.run("r1").score == 99.0  # type: ignore[union-attr]
    assert store.item_scores("r1") == {"a": 0.25}
    with store.rebuilding() as fresh:
        assert fresh.nights() == [] and store.run("r1") is not None
    assert store.nights() == [] and store.run("r1") is None

"""Nightly verdicts with hand-made runs: thresholds, protocol changes, failed runs, baselines;
rebuilding the history index from the run directories."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runfixtures import task_spec, write_run

import k2eval.report.nightly as nightly_module
from k2eval.cli import main
from k2eval.errors import EndpointUnreachable, UserError
from k2eval.report.nightly import NightResult, Thresholds, run_nightly
from k2eval.spec import RunConfig, TaskSpec
from k2eval.store.history import HistoryStore, open_history

Night = tuple[TaskSpec, list[float]] | Exception | str
INTERRUPTED = "interrupted"
"""A night step: the run stops before writing its summary (Ctrl-C, SIGTERM)."""


def interrupt(run: Path) -> Path:
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    (run / "summary.json").unlink()
    return run


class Nights:
    """A runner that writes tonight's scripted run (or raises), one per call."""

    def __init__(self, script: list[Night]) -> None:
        self.script = list(script)

    def __call__(self, config: RunConfig, out: Path) -> Path:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if step == INTERRUPTED:
            return interrupt(write_run(out, ONE, "m", {"q0": [1.0]}, run_id=f"cut-{out.name}"))
        assert not isinstance(step, str)
        spec, values = step
        return write_run(out, spec, "m", {f"q{i}": [v] * spec.k for i, v in enumerate(values)},
                         run_id=f"{spec.name}-{out.name}")


@pytest.fixture
def nightly(tmp_path: Path) -> Callable[..., list[NightResult]]:
    suite = tmp_path / "suite.yaml"
    suite.write_text("- task: aime2025\n  model: openai:m\n")
    store: HistoryStore = open_history(f"sqlite:///{tmp_path}/h.db")

    def run(script: list[Night], **kw: object) -> list[NightResult]:
        runner = Nights(script)
        return [run_nightly(suite, store, tmp_path / "nights", runner=runner, log=lambda _: None,
                            **kw)  # type: ignore[arg-type]
                for _ in range(len(runner.script))]

    return run


ONE = task_spec("aime2025", k=1)


def test_thresholds_decide_what_counts(nightly: Callable[..., list[NightResult]]) -> None:
    good, worse = [1.0] * 10, [0.0] * 6 + [1.0] * 4  # 6 lost: p = 2/64 = 0.031
    first, second = nightly([(ONE, good), (ONE, worse)])
    assert first.verdicts[0].status == "no-baseline" and first.exit_code == 0
    verdict = second.verdicts[0]
    assert (verdict.status, second.exit_code) == ("regressed", 1)
    assert verdict.test is not None and verdict.test.p_value == pytest.approx(2 / 64)
    assert verdict.delta == pytest.approx(-60.0)

    strict = nightly([(ONE, worse)], thresholds=Thresholds(alpha=0.01))[0]
    assert strict.verdicts[0].status == "unchanged"  # worse vs worse
    (again,) = nightly([(ONE, good)], thresholds=Thresholds(alpha=0.05, min_delta=70.0))
    assert again.verdicts[0].status == "unchanged"  # +60 points is below the 70-point bar
    _, better = nightly([(ONE, worse), (ONE, good)], thresholds=Thresholds(min_delta=50.0))
    assert (better.verdicts[0].status, better.exit_code) == ("improved", 0)


def test_protocol_change_is_not_a_regression(nightly: Callable[..., list[NightResult]]) -> None:
    _, changed = nightly([(ONE, [1.0] * 8), (task_spec("aime2025", k=2), [0.0] * 8)])
    verdict = changed.verdicts[0]
    assert verdict.status == "not-comparable" and changed.exit_code == 0
    assert "protocol changed: task.k: 1 vs 2" in verdict.note
    md = (changed.night_dir / "regression.md").read_text()
    assert "No significant regression." in md and "not-comparable" in md


def test_failed_run_exits_3_and_is_reported(nightly: Callable[..., list[NightResult]]) -> None:
    _, failed = nightly([(ONE, [1.0] * 8), EndpointUnreachable("http://127.0.0.1:9/v1 refused")])
    assert failed.verdicts[0].status == "failed" and failed.exit_code == 3
    html = (failed.night_dir / "regression.html").read_text()
    assert "Failed to run (1)" in html and "127.0.0.1:9/v1 refused" in html


def test_baseline_by_run_id_and_unknown_baseline(nightly: Callable[..., list[NightResult]]) -> None:
    first, _, _ = nightly([(ONE, [0.0] * 8), (ONE, [1.0] * 8), (ONE, [1.0] * 8)])
    pinned = first.verdicts[0].run
    assert pinned is not None
    (third,) = nightly([(ONE, [1.0] * 8)], baseline=pinned.run_id)
    verdict = third.verdicts[0]
    assert verdict.baseline is not None and verdict.baseline.run_id == pinned.run_id
    assert verdict.status == "improved"
    with pytest.raises(UserError, match=r"--baseline nope: no such night or run .*latest nights"):
        nightly([(ONE, [1.0])], baseline="nope")


def test_group_task_is_judged_on_pooled_member_items(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("- task: tau2\n  model: openai:m\n  k: 1\n")
    lost = 0

    def runner(config: RunConfig, out: Path) -> Path:
        values = [0.0] * lost + [1.0] * (10 - lost)
        return write_run(out, config.task, "m", {f"t{i}": [v] for i, v in enumerate(values)},
                         run_id=f"{config.task.name}-{out.name}")

    store = open_history(str(tmp_path / "h.db"))
    run_nightly(suite, store, tmp_path / "nights", runner=runner, log=lambda _: None)
    lost = 4  # 4 of 10 lost per domain: p = 2/16 each, but 12 of 30 pooled: p = 2/4096
    night = run_nightly(suite, store, tmp_path / "nights", runner=runner, log=lambda _: None)
    status = {v.slot: v.status for v in night.verdicts}
    assert status == {"tau2-airline @ openai:m": "unchanged", "tau2-retail @ openai:m": "unchanged",
                      "tau2-telecom @ openai:m": "unchanged", "tau2 @ openai:m": "regressed"}
    group = night.verdicts[-1]
    assert group.pooled and group.test is not None
    assert (group.test.n, group.test.a_only, group.test.b_only) == (30, 12, 0)
    assert group.test.p_value == pytest.approx(2 / 2**12)
    assert group.run is not None and group.run.score == pytest.approx(60.0)
    assert [r.score for r in group.trend] == pytest.approx([100.0, 60.0])
    assert night.exit_code == 1
    assert not (night.night_dir / "compare" / "tau2-openai-m.html").exists()
    assert (night.night_dir / "compare" / "tau2-retail-openai-m.html").exists()


def test_an_unfinished_run_is_a_failed_verdict_and_never_a_baseline(
        nightly: Callable[..., list[NightResult]]) -> None:
    _, cut, after = nightly([(ONE, [1.0] * 8), INTERRUPTED, (ONE, [0.0] * 8)])
    verdict = cut.verdicts[0]
    assert (verdict.status, cut.exit_code) == ("failed", 3)
    assert verdict.note.startswith("unfinished (interrupted); continue it with `k2eval resume ")
    md = (cut.night_dir / "regression.md").read_text()
    assert "| failed | – |" in md and "unfinished (interrupted)" in md
    record = json.loads((cut.night_dir / "night.json").read_text())["runs"][0]
    assert (record["status"], record["error"]) == ("failed", "unfinished (interrupted)")
    # the next night is judged against the last night with a score, not the unfinished one
    baseline = after.verdicts[0].baseline
    assert baseline is not None and baseline.night_id != cut.night_id
    assert after.verdicts[0].status == "regressed"


def _index(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as con:
        return {table: con.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("nights", "runs", "item_scores")}


def test_reindex_keeps_every_night_and_names_the_unfinished_run(
        nightly: Callable[..., list[NightResult]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    nights = nightly([(ONE, [1.0] * 8), (ONE, [1.0] * 8), (ONE, [0.0] * 4 + [1.0] * 4)])
    crashed = interrupt(write_run(nights[1].night_dir, ONE, "m", {"q0": [1.0]}, run_id="crashed"))
    db = tmp_path / "h.db"
    before = _index(db)
    assert len(before["nights"]) == 3 and len(before["runs"]) == 3
    capsys.readouterr()
    assert main(["nightly", "reindex", "--history", str(db), "--out", str(tmp_path / "nights")]) == 0
    out = capsys.readouterr().out
    assert "indexed 3 runs from 3 nights" in out
    assert "skipped 1 run directories without a score" in out
    assert f"  {crashed}: unfinished (interrupted)" in out
    assert _index(db) == before
    assert not list(tmp_path.glob(".h.db.rebuild-*"))


def _fail_on_second_run(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = []

    def index_run(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    return index_run


@pytest.mark.parametrize("failure", ["damaged night record", "error while indexing"])
def test_a_reindex_that_fails_midway_leaves_the_old_index_intact(
        nightly: Callable[..., list[NightResult]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    nights = nightly([(ONE, [1.0] * 8), (ONE, [1.0] * 8), (ONE, [0.0] * 8)])
    db = tmp_path / "h.db"
    before = _index(db)
    args = ["nightly", "reindex", "--history", str(db), "--out", str(tmp_path / "nights")]
    if failure == "damaged night record":
        (nights[2].night_dir / "night.json").write_text('{"night_id": ')
        assert main(args) == 2
    else:
        monkeypatch.setattr(nightly_module, "index_run",
                            _fail_on_second_run(nightly_module.index_run))
        assert main(args) == 5  # disk full: one line, its own exit status
    assert _index(db) == before
    assert not list(tmp_path.glob(".h.db.rebuild-*"))

"""Failed, incomplete and unfinished runs are reported as such, with their cause, next to the others."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runfixtures import task_spec, write_run

from k2eval.cli import main
from k2eval.engine.config import build_run_config
from k2eval.engine.runner import run_async
from k2eval.errors import RunDirError
from k2eval.report.runs import DamagedRun, RunView, load_runs
from k2eval.report.table import build_table
from k2eval.store.lock import LOCK, WriterLock
from k2eval.testing.fake_openai import Fault, Reply

MATH = task_spec("mathtask", k=2)
REFUSED = r"\(\w+: HTTP 400: .*injected 400\)$"


@pytest.fixture
def engine_run(fake_openai: Callable[..., Any], shared_data: Path, tmp_path: Path
               ) -> Callable[[Callable[[str], Reply | Fault], str], Path]:
    """A real AIME 2025 run (4 problems, k=1) against a scripted server; the responder gets
    the prompt."""

    def run(answer: Callable[[str], Reply | Fault], run_id: str) -> Path:
        srv = fake_openai(lambda body: answer(json.dumps(body["messages"])))
        config = build_run_config("aime2025", "openai:m", base_url=srv.base_url,
                                  data=shared_data / "aime" / "aime25.jsonl", limit=4, k=1,
                                  concurrency=2)
        return asyncio.run(run_async(config, tmp_path / "runs", run_id, progress=False)).path

    return run


def refuse(_: str) -> Fault:
    return Fault("400")


def test_a_run_whose_every_attempt_was_refused_is_failed_with_the_cause(
        engine_run: Callable[..., Path]) -> None:
    view = RunView.load(engine_run(refuse, "refused"))
    assert (view.state, view.usable, view.score) == ("failed", False, None)
    assert view.status_text.startswith("failed: 4/4 attempts errored (")
    assert re.search(REFUSED, view.status_text), view.status_text


def test_a_run_stopped_by_rejected_credentials_is_unfinished_with_the_cause(
        engine_run: Callable[..., Path], tmp_path: Path) -> None:
    """A 401 after the preflight stops the whole run (a run-fatal error): it is reported as
    stopped, naming the error, and `resume` continues it once the key is fixed."""
    from k2eval.errors import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        engine_run(lambda _: Fault("401"), "stopped")
    view = RunView.load(tmp_path / "runs" / "stopped")
    assert (view.state, view.usable) == ("unfinished", False)
    assert re.search(r"stopped: .*rejected the credentials \(HTTP 401", view.status_text), \
        view.status_text


def test_a_run_with_some_refused_attempts_is_incomplete_with_the_cause(
        engine_run: Callable[..., Path]) -> None:
    def answer(prompt: str) -> Reply | Fault:
        return Fault("400") if "$17_b$" in prompt else Reply(text="\\boxed{588}")

    view = RunView.load(engine_run(answer, "partial"))
    assert (view.state, view.usable) == ("incomplete", True)
    assert view.score is not None
    assert view.score == pytest.approx(100 / 3, abs=1e-3)  # the refused attempt is left out of the score
    assert view.status_text.startswith("incomplete: 1/4 attempts errored (")
    assert re.search(r"\(\w+: HTTP 400: .*injected 400\)$", view.status_text), view.status_text


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _left_behind(run: Path, status: str | None, *, lock: str | None, summary: bool) -> None:
    """Turn a finished hand-made run into one left in `status` (None: no status field)."""
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.pop("status", None)
    if status is not None:
        manifest["status"] = status
    (run / "manifest.json").write_text(json.dumps(manifest))
    if not summary:
        (run / "summary.json").unlink()
    if lock is not None:
        (run / LOCK).write_text(lock)
    else:
        (run / LOCK).unlink(missing_ok=True)


def _lock_of(pid: int) -> str:
    return json.dumps({"pid": pid, "host": socket.gethostname(), "command": "k2eval run",
                       "started": 1.7e9})


@pytest.mark.parametrize(("status", "lock", "summary", "expected"), [
    ("interrupted", "", False, "unfinished (interrupted)"),
    ("running", "dead", False,
     "unfinished (stopped while running: `k2eval run` (pid {pid} on {host}, since 2023-11-14 "
     "22:13:20 UTC) crashed or was killed)"),
    ("running", "reused", False,  # the recorded pid now belongs to another live process
     "unfinished (stopped while running: `k2eval run` (pid {me} on {host}, since 2023-11-14 "
     "22:13:20 UTC) crashed or was killed)"),
    ("running", "", False, "unfinished (stopped on an error before finishing (see that "
                           "command's output))"),
    ("running", None, False, "unfinished (stopped while running: crashed, killed or stopped on "
                             "an error)"),
    ("running", "dead", True, "unfinished (stopped while running: `k2eval run` (pid {pid} on "
                              "{host}, since 2023-11-14 22:13:20 UTC) crashed or was killed)"),
    (None, "", False, "unfinished (no summary.json)"),
    ("finished", "", True, "finished"),
    (None, "", True, "finished"),
])
def test_the_manifest_status_and_the_lock_tell_how_a_run_ended(
        make_run: Callable[..., Path], status: str | None, lock: str | None, summary: bool,
        expected: str) -> None:
    run = make_run(MATH, "alpha", {"q1": [1.0, 0.0], "q2": [1.0, 1.0]})
    pid = _dead_pid()
    recorded = {"dead": _lock_of(pid), "reused": _lock_of(os.getpid())}.get(str(lock), lock)
    _left_behind(run, status, lock=recorded, summary=summary)
    view = RunView.load(run)
    assert view.status_text == expected.format(pid=pid, me=os.getpid(), host=socket.gethostname())
    assert (view.task, view.model, view.k) == ("mathtask", "openai:alpha", 2)
    assert view.usable == (expected == "finished")


def test_a_run_still_writing_says_who_runs_it(make_run: Callable[..., Path]) -> None:
    run = make_run(MATH, "alpha", {"q1": [1.0, 0.0]})
    _left_behind(run, "running", lock="", summary=True)  # a resume in progress
    lock = WriterLock.acquire(run, command="k2eval resume")
    try:
        text = RunView.load(run).status_text
        table = build_table(load_runs([run]), specs={})
    finally:
        lock.release()
    assert text.startswith(f"unfinished (running: `k2eval resume` (pid {os.getpid()} on ")
    assert table.problems == [f"{run.name} (mathtask, openai:alpha): {text}"]  # no resume hint


@pytest.mark.parametrize(("damage", "message"), [
    (lambda run: (run / "manifest.json").write_text("{not json"), "manifest.json is not valid JSON"),
    (lambda run: (run / "summary.json").write_text("[1, 2"), "summary.json is not valid JSON"),
    (lambda run: (run / "scores.jsonl").unlink(), "scores.jsonl is missing"),
    (lambda run: _left_behind(run, "finished", lock="", summary=False),
     "summary.json is missing although the manifest says the run ended (finished)"),
])
def test_only_an_unreadable_directory_is_damaged(make_run: Callable[..., Path],
                                                 damage: Callable[[Path], object],
                                                 message: str) -> None:
    run = make_run(MATH, "alpha", {"q1": [1.0, 0.0]})
    damage(run)
    with pytest.raises(DamagedRun, match=re.escape(message)) as raised:
        RunView.load(run)
    assert "the run directory is damaged" in str(raised.value)


def test_report_over_a_folder_shows_every_run_and_warns_of_the_damaged_one(
        engine_run: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "runs"
    engine_run(refuse, "refused")
    interrupted = write_run(root, MATH, "alpha", {"q1": [1.0, 0.0]}, run_id="interrupted")
    _left_behind(interrupted, "interrupted", lock="", summary=False)
    write_run(root, MATH, "beta", {"q1": [1.0, 1.0], "q2": [0.0, 1.0]}, run_id="good")
    crashed = write_run(root, MATH, "beta", {"q1": [0.0, 0.0]}, run_id="crashed-before-rerun")
    _left_behind(crashed, "running", lock=_lock_of(_dead_pid()), summary=False)
    damaged = write_run(root, MATH, "gamma", {"q1": [1.0, 0.0]}, run_id="damaged")
    (damaged / "manifest.json").write_text("{not json")
    (root / "notes").mkdir()

    assert main(["report", *sorted(map(str, root.iterdir()))]) == 0
    out, err = capsys.readouterr()
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines()
            if line.startswith("| AIME 2025") or line.startswith("| Math Task")}
    assert "failed: 4/4 attempts errored (" in rows["AIME 2025"] and "400" in rows["AIME 2025"]
    math_row = rows["Math Task"]
    assert "unfinished (interrupted)" in math_row  # alpha's only run
    assert "75.0 [" in math_row  # beta: the rerun is shown over the crashed run
    assert "Runs not finished or left out:" in out
    assert "- crashed-before-rerun (mathtask, openai:beta): unfinished (stopped while running" in out
    assert "(not shown: another run of the same cell is)" in out
    assert f"k2eval resume {interrupted}" in out
    assert f"warning: left out {damaged / 'manifest.json'} is not valid JSON" in err
    assert f"warning: left out {root / 'notes'}: neither a run directory" in err
    assert "Traceback" not in err

    assert main(["report", str(root), "--format", "json"]) == 0
    cells = [c for c in json.loads(capsys.readouterr().out)["cells"] if c["kind"] == "measured"]
    states = {(c["task"], c["model"]): (c["state"], c["score"]) for c in cells}
    assert states == {("aime2025", "openai:m"): ("failed", None),
                      ("mathtask", "openai:alpha"): ("unfinished", None),
                      ("mathtask", "openai:beta"): ("finished", 75.0)}

    assert main(["report", str(root), "-o", str(tmp_path / "table.html")]) == 0
    page = (tmp_path / "table.html").read_text()
    assert 'id="not-finished"' in page and "unfinished (interrupted)" in page


def test_report_fails_only_when_no_directory_can_be_read(make_run: Callable[..., Path],
                                                         tmp_path: Path) -> None:
    run = make_run(MATH, "alpha", {"q1": [1.0, 0.0]})
    (run / "summary.json").write_text("[")
    with pytest.raises(RunDirError, match=r"no readable run directory: .*summary\.json is not valid"):
        load_runs([run], skipped=[])
    assert main(["report", str(run)]) == 2
    assert main(["report", str(tmp_path / "nowhere")]) == 2


def test_compare_lists_a_failed_run_as_not_compared_with_its_cause(
        engine_run: Callable[..., Path], make_run: Callable[..., Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    def right(_: str) -> Reply:
        return Reply(text="\\boxed{70}")

    good, refused = engine_run(right, "good"), engine_run(refuse, "refused")
    page = tmp_path / "page.html"
    assert main(["compare", str(good), str(refused), "-o", str(page)]) == 0
    out = capsys.readouterr().out
    assert "aime2025: refused not compared: failed: 4/4 attempts errored (" in out
    html = page.read_text()
    assert 'id="not-compared"' in html and "failed: 4/4 attempts errored" in html


def test_nightly_names_why_a_run_failed_and_does_not_take_it_as_a_baseline(
        fake_openai: Callable[..., Any], shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    state = {"refuse": True}
    srv = fake_openai(lambda body: Fault("400") if state["refuse"] else Reply(text="\\boxed{70}"))
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"- task: aime2025\n  model: openai:m\n  base_url: {srv.base_url}\n"
                     f"  data: {shared_data / 'aime' / 'aime25.jsonl'}\n  k: 1\n  limit: 3\n")
    args = ["nightly", "--suite", str(suite), "--history", str(tmp_path / "h.db"),
            "--out", str(tmp_path / "nights")]
    assert main(args) == 3
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("        failed  "))
    assert line.split()[0] == "failed" and "failed: 3/3 attempts errored (" in line, line
    assert re.search(r"\(\w+: HTTP 400: .*injected 400\); continue it with `k2eval resume ", line)
    (night,) = sorted(p for p in (tmp_path / "nights").iterdir() if p.name != "dashboard")
    assert "failed: 3/3 attempts errored" in (night / "regression.md").read_text()
    assert "scores.jsonl is missing" not in (night / "regression.html").read_text()

    state["refuse"] = False
    assert main(args) == 0
    assert "no-baseline  aime2025 @ openai:m  first night for this series" in capsys.readouterr().out


def test_compare_leaves_out_a_run_with_a_damaged_journal_and_compares_the_rest(
        make_run: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = {"q1": [1.0, 0.0], "q2": [1.0, 1.0]}
    base = make_run(MATH, "alpha", outcomes, run_id="base")
    night = tmp_path / "night"
    write_run(night, MATH, "beta", outcomes, run_id="math")
    other = write_run(night, task_spec("othertask", k=2), "beta", outcomes, run_id="other")
    (other / "attempts.jsonl").write_text('{"item_id": \n{"item_id": "q1"}\n')
    page = tmp_path / "page.html"
    assert main(["compare", str(base), str(night), "-o", str(page)]) == 0
    captured = capsys.readouterr()
    assert "mathtask: math vs base: +0.0 points on 2 shared items" in captured.out
    assert f"warning: left out {other / 'attempts.jsonl'}:1: damaged journal line" in captured.err
    assert 'id="skipped"' in page.read_text()
    assert main(["compare", str(base), str(other), "-o", str(page)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nothing to compare: ") and "\n" not in err


def test_a_damaged_member_journal_drops_only_the_group_average(make_run: Callable[..., Path]) -> None:
    from k2eval.adapters.base import get_adapter
    from k2eval.spec import load_task

    runs = [make_run(load_task(task), "kimi", {f"{task}-{i}": [1.0, 0.0, 1.0, 1.0] for i in range(3)},
                     adapter=get_adapter("tau2"))
            for task in ("tau2-airline", "tau2-retail", "tau2-telecom")]
    lines = (runs[1] / "scores.jsonl").read_text().splitlines()
    (runs[1] / "scores.jsonl").write_text("\n".join([lines[0], "{cut", *lines[2:]]) + "\n")
    table = build_table(load_runs(runs))
    measured = table.frame[table.frame.kind == "measured"]
    assert set(measured.task) == {"tau2-airline", "tau2-retail", "tau2-telecom"}
    assert len(table.problems) == 1
    assert table.problems[0].startswith("no tau2 micro-average for openai:kimi: ")
    assert "scores.jsonl:2: damaged journal line" in table.problems[0]

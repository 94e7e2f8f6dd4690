"""One writer per run directory: concurrent commands, a busy directory, a lock left by kill -9."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storecli import PendingRun, bare_manifest, k2eval_cli, start_cli

from k2eval.errors import RunDirError
from k2eval.store.lock import (
    LOCK,
    RunDirLocked,
    WriterLock,
    current_command,
    is_held,
    read_holder,
)
from k2eval.store.rundir import ATTEMPTS, RunDir, load_run


def journal_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (path / ATTEMPTS).read_text().splitlines()]


def one_error_line(proc: subprocess.CompletedProcess[str] | tuple[int, str]) -> str:
    code, stderr = (proc.returncode, proc.stderr) if not isinstance(proc, tuple) else proc
    assert code == 2, stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_two_concurrent_resumes_one_proceeds_and_no_attempt_is_made_twice(
        pending_run: PendingRun) -> None:
    pending_run.server.latency = 1.0  # 12 attempts, 2 at a time: the winner holds the lock ~6 s
    n_before = len(journal_rows(pending_run.path))
    procs = [start_cli("resume", str(pending_run.path), "--no-progress") for _ in range(2)]
    deadline = time.monotonic() + 120
    while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    loser = next(p for p in procs if p.poll() is not None)
    winner = next(p for p in procs if p is not loser)
    assert winner.poll() is None  # the second command stopped while the first still worked
    line = one_error_line((loser.wait(), loser.communicate()[1]))
    assert winner.wait(timeout=120) == 0, winner.communicate()[1]
    assert f"pid {winner.pid} on {socket.gethostname()}" in line
    assert "is in use by `k2eval resume`" in line and "since 20" in line

    new_rows = journal_rows(pending_run.path)[n_before:]
    keys = [(r["item_id"], r["attempt"]) for r in new_rows]
    assert len(keys) == len(set(keys)) == pending_run.n_pending
    assert all(r["status"] == "ok" for r in new_rows)
    assert len(pending_run.server.requests) == pending_run.n_pending
    assert read_holder(pending_run.path / LOCK) is None  # released at the end


@pytest.mark.parametrize("command", ["resume", "rescore", "run"])
def test_a_command_on_a_busy_run_directory_fails_at_once_naming_the_holder(
        pending_run: PendingRun, command: str) -> None:
    target = pending_run.path if command != "run" else pending_run.path.parent / "fresh"
    target.mkdir(exist_ok=True)
    files = ("attempts.jsonl", "scores.jsonl", "summary.json", "manifest.json")
    before = {name: (target / name).read_bytes() for name in files if (target / name).exists()}
    lock = WriterLock.acquire(target, command="k2eval resume")
    try:
        args = [command, str(target)] if command != "run" else [
            "run", "--task", "aime2025", "--model", "openai:m", "--base-url",
            pending_run.server.base_url, "--data", str(load_run(pending_run.path).manifest[
                "config"]["data"]), "--limit", "2", "--out", str(target.parent), "--run-id",
            "fresh"]
        line = one_error_line(k2eval_cli(*args, "--no-progress"))
    finally:
        lock.release()
    assert f"{target} is in use by `k2eval resume` (pid {os.getpid()} on {socket.gethostname()}, since " in line
    assert pending_run.server.requests == []
    after = {name: (target / name).read_bytes() for name in files if (target / name).exists()}
    assert after == before  # nothing written: no manifest for `run`, no change for the others


def test_a_lock_left_by_a_killed_process_is_taken_over(pending_run: PendingRun) -> None:
    pending_run.server.latency = 1.0
    n_before = len(journal_rows(pending_run.path))
    first = start_cli("resume", str(pending_run.path), "--no-progress")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(journal_rows(pending_run.path)) < n_before + 2:
        time.sleep(0.05)
    holder = read_holder(pending_run.path / LOCK)
    assert holder is not None and holder.pid == first.pid
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert read_holder(pending_run.path / LOCK) == holder  # the file outlives its process

    done_by_first = {(r["item_id"], r["attempt"]) for r in journal_rows(pending_run.path)[n_before:]}
    assert 2 <= len(done_by_first) < pending_run.n_pending
    n_calls = len(pending_run.server.requests)
    pending_run.server.latency = 0.05
    second = k2eval_cli("resume", str(pending_run.path), "--no-progress")
    assert second.returncode == 0, second.stderr
    assert f"left locked by `k2eval resume` (pid {first.pid} on {socket.gethostname()}" in second.stderr
    assert "no longer running; taking it over" in second.stderr
    rows = journal_rows(pending_run.path)[n_before:]
    keys = [(r["item_id"], r["attempt"]) for r in rows]
    assert len(keys) == len(set(keys)) == pending_run.n_pending
    assert len(pending_run.server.requests) - n_calls == pending_run.n_pending - len(done_by_first)
    assert read_holder(pending_run.path / LOCK) is None


# --- in process ---------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_file_records_the_holder_and_is_emptied_not_deleted_on_release(tmp_path: Path) -> None:
    lock = WriterLock.acquire(tmp_path, command="k2eval rescore")
    holder = read_holder(tmp_path / LOCK)
    assert holder is not None
    assert (holder.pid, holder.host, holder.command) == (os.getpid(), socket.gethostname(),
                                                         "k2eval rescore")
    assert abs(holder.started - time.time()) < 60
    lock.release()
    assert (tmp_path / LOCK).exists() and (tmp_path / LOCK).read_text() == ""
    WriterLock.acquire(tmp_path).release()  # free again


def test_a_second_writer_in_the_same_process_is_refused_but_readers_are_not(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", bare_manifest())
    with pytest.raises(RunDirLocked, match="is in use by"):
        RunDir.open(tmp_path / "r")
    assert load_run(tmp_path / "r").manifest.run_id == "r"
    run.close()
    RunDir.open(tmp_path / "r").close()


def test_a_leftover_lock_file_of_a_dead_process_is_taken_over(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pid = _dead_pid()
    (tmp_path / LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                             "command": "k2eval run", "started": 1.7e9}))
    with caplog.at_level(logging.WARNING, logger="k2eval"):
        lock = WriterLock.acquire(tmp_path)
    assert f"left locked by `k2eval run` (pid {pid}" in caplog.text
    holder = read_holder(tmp_path / LOCK)
    assert holder is not None and holder.pid == os.getpid()
    lock.release()


@pytest.mark.parametrize(("argv", "expected"), [
    (["/usr/bin/k2eval", "resume", "runs/x"], "k2eval resume"),
    (["/src/k2eval/cli.py", "run", "--api-key", "sk-secret"], "k2eval run"),
    (["/usr/bin/k2eval", "--api-key", "sk-secret"], "k2eval"),
    (["/usr/bin/k2eval", "sk-secret-value-1234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ"], "k2eval"),
    (["script.py", "nightly"], "script.py nightly"),
])
def test_the_recorded_command_never_holds_option_values(argv: list[str], expected: str) -> None:
    assert current_command(argv) == expected


def test_a_lock_file_that_cannot_be_written_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / LOCK).mkdir()  # as unwritable as a read-only directory, even for root
    with pytest.raises(RunDirError, match=r"cannot write .*writer\.lock .*need write access"):
        WriterLock.acquire(tmp_path)


def test_the_kernel_tells_whether_a_lock_is_held(tmp_path: Path) -> None:
    (tmp_path / LOCK).touch()
    assert is_held(tmp_path / LOCK) is False
    lock = WriterLock.acquire(tmp_path)
    assert is_held(tmp_path / LOCK) is True
    lock.release()
    assert is_held(tmp_path / LOCK) is False

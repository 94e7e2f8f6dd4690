"""How commands end when something goes wrong: one line on stderr, a documented exit status,
and the manifest saying how the run ended. Real `k2eval` processes, real HTTP, real signals,
real (tiny) file systems."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from k2eval.testing.fake_openai import Reply

KEY = "sk-test-key-0123456789"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(Path(__file__).parents[2]),
           **extra}
    env.pop("OPENAI_BASE_URL", None)
    return env


def k2eval(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k2eval.cli", *args], capture_output=True,
                          text=True, env=_env(**env), timeout=timeout)


def start_k2eval(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "k2eval.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(**env))


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not progress lines."""
    return [x for x in stderr.splitlines() if x.strip() and not x.startswith("[")]


def manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())


def journal_keys(run_dir: Path) -> list[tuple[str, int]]:
    raw = (run_dir / "attempts.jsonl").read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the journal ends with a partial line"
    return [(r["item_id"], r["attempt"]) for r in map(json.loads, raw.splitlines())]


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"k2eval ended early ({proc.returncode}): {proc.communicate()[1]}")
        time.sleep(0.05)
    pytest.fail(f"{path} did not reach {n} lines")


def run_args(base_url: str, data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--task", "aime2025", "--model", "openai:m", "--base-url", base_url,
            "--data", str(data), "--out", str(out), "--no-progress", *extra]


# --- signals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_mid_run_ends_in_one_line_with_128_plus_its_number_and_resume_finishes(
        fake_openai: Any, aime: Path, tmp_path: Path, sig: signal.Signals, status: int) -> None:
    srv = fake_openai(lambda body: Reply(text="\\boxed{1}"), latency=0.1)
    run_dir = tmp_path / "r"
    proc = start_k2eval(*run_args(srv.base_url, aime, tmp_path, "--k", "4", "--concurrency", "4",
                                  "--run-id", "r"))
    wait_for_lines(run_dir / "attempts.jsonl", 8, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == status
    assert "Traceback" not in stderr
    assert error_lines(stderr) == [f"interrupted by {sig.name}; finished attempts are saved: "
                                   f"continue with `k2eval resume {run_dir}`"]
    recorded = manifest(run_dir)
    assert recorded["status"] == "interrupted" and recorded["signal"] == sig.name
    finished = journal_keys(run_dir)
    assert 8 <= len(finished) < 120

    resumed = k2eval("resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(set(journal_keys(run_dir))) == sorted(journal_keys(run_dir))
    assert len(journal_keys(run_dir)) == 120
    assert manifest(run_dir)["status"] == "finished"


# --- storage ---------------------------------------------------------------------------------

def test_a_full_disk_ends_in_one_line_status_5_with_the_cause_recorded_and_resume_finishes(
        fake_openai: Any, aime: Path, small_fs: Callable[..., Path]) -> None:
    srv = fake_openai(lambda body: Reply(text="x" * 6000 + "\n\\boxed{1}"))
    out = small_fs("200k")
    run_dir = out / "r"
    proc = k2eval(*run_args(srv.base_url, aime, out, "--k", "4", "--concurrency", "2",
                            "--run-id", "r"))

    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = error_lines(proc.stderr)
    assert line.startswith(f"error: cannot write {run_dir}/") and "No space left on device" in line
    assert line.endswith(f"continue with `k2eval resume {run_dir}` once it can be written")
    recorded = manifest(run_dir)
    assert recorded["status"] == "failed" and "No space left on device" in recorded["error"]
    finished = journal_keys(run_dir)  # whole lines only: the cut-short one was cut off
    assert 0 < len(finished) < 120

    subprocess.run(["mount", "-o", "remount,size=8m", str(out)], check=True)
    resumed = k2eval("resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(set(journal_keys(run_dir))) == sorted(journal_keys(run_dir))
    assert len(journal_keys(run_dir)) == 120


def test_a_read_only_out_is_one_line_status_5_before_any_model_call(
        fake_openai: Any, aime: Path, tmp_path: Path, small_fs: Callable[..., Path]) -> None:
    srv = fake_openai(lambda body: Reply(text="\\boxed{1}"))
    out = small_fs("64k", read_only=True)
    proc = k2eval(*run_args(srv.base_url, aime, out / "runs"))
    assert proc.returncode == 5
    assert error_lines(proc.stderr) == [f"error: --out {out / 'runs'}: cannot write there "
                                        "(Read-only file system): choose a writable folder"]
    assert srv.requests == []


# --- preflight ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "needle"), [
    ("unreachable", "cannot reach http://127.0.0.1:9/v1"),
    ("401", "rejected the credentials (HTTP 401)"),
])
def test_a_failed_preflight_records_that_the_run_failed_and_why(
        fake_openai: Any, aime: Path, tmp_path: Path, case: str, needle: str) -> None:
    url = "http://127.0.0.1:9/v1"
    if case == "401":
        url = fake_openai(lambda body: Reply(text="\\boxed{1}"), auth=("u", "p")).base_url
    proc = k2eval(*run_args(url, aime, tmp_path, "--run-id", "r"))
    assert proc.returncode == 2
    [line] = error_lines(proc.stderr)
    assert needle in line
    recorded = manifest(tmp_path / "r")
    assert recorded["status"] == "failed" and needle in recorded["error"]
    assert recorded["ended"] is not None
    assert recorded["started"] <= recorded["ended"] <= time.time()


# --- bugs ----------------------------------------------------------------------------------

def test_an_unexpected_exception_is_one_line_status_70_with_the_traceback_in_a_file(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    from k2eval import cli

    def broken(args: Any) -> int:
        raise RuntimeError("something k2eval did not expect\nsecond line")

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr(cli, "cmd_tasks", broken)
    monkeypatch.setattr("sys.argv", ["k2eval", "tasks", "--api-key", "sk-secret",
                                     "--base-url", "http://u:hunter2@127.0.0.1:1/v1"])
    assert cli.main(["tasks"]) == 70
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("internal error (please report it): RuntimeError: something k2eval "
                           "did not expect; traceback in ")
    saved = Path(line.rsplit("traceback in ", 1)[1])
    assert saved.parent == tmp_path and "Traceback" in saved.read_text()
    assert "k2eval tasks" in saved.read_text()
    assert "sk-secret" not in saved.read_text() and "hunter2" not in saved.read_text()


# --- nightly -----------------------------------------------------------------------------------

def _suite(path: Path, entries: list[tuple[str, str, Path]]) -> Path:
    text = "name: core\nruns:\n"
    for name, url, data in entries:
        text += (f"  - name: {name}\n    task: aime2025\n    model: openai:m\n"
                 f"    base_url: {url}\n    data: {data}\n    k: 2\n    limit: 10\n"
                 "    concurrency: 2\n")
    path.write_text(text)
    return path


def test_nightly_writes_its_pages_when_a_run_fails_and_exits_3(
        fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    good = fake_openai(lambda body: Reply(text="\\boxed{1}")).base_url
    suite = _suite(tmp_path / "suite.yaml", [("down", "http://127.0.0.1:9/v1", aime),
                                             ("up", good, aime)])
    proc = k2eval("nightly", "--suite", str(suite), "--history", str(tmp_path / "h.db"),
                  "--out", str(tmp_path / "nights"))
    assert proc.returncode == 3, proc.stderr
    [night] = [p for p in (tmp_path / "nights").iterdir() if p.name != "dashboard"]
    page = (night / "regression.html").read_text()
    assert "cannot reach http://127.0.0.1:9/v1" in page
    doc = json.loads((night / "night.json").read_text())
    assert doc["verdicts"] == {"down": "failed", "up": "no-baseline"}


def test_nightly_stopped_by_sigterm_still_writes_its_pages_and_exits_143(
        fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    url = fake_openai(lambda body: Reply(text="\\boxed{1}"), latency=0.5).base_url
    suite = _suite(tmp_path / "suite.yaml", [("first", url, aime), ("second", url, aime)])
    proc = start_k2eval("nightly", "--suite", str(suite), "--history", str(tmp_path / "h.db"),
                        "--out", str(tmp_path / "nights"))
    deadline = time.monotonic() + 60
    while not list((tmp_path / "nights").glob("*/aime2025-*/attempts.jsonl")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "the night was interrupted by SIGTERM" in stderr
    [night] = [p for p in (tmp_path / "nights").iterdir() if p.name != "dashboard"]
    doc = json.loads((night / "night.json").read_text())
    assert doc["verdicts"] == {"first": "failed", "second": "failed"}
    assert doc["interrupted"] == "SIGTERM"
    page = (night / "regression.md").read_text()
    assert "interrupted by SIGTERM while it ran" in page
    assert "not run: the night was interrupted by SIGTERM" in page


# --- models a selection needs ------------------------------------------------------------------

def test_acebench_with_no_agent_item_selected_runs_without_a_user_model(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    srv = fake_openai(lambda body: Reply(text="[get_weather(city='Paris')]"))
    proc = k2eval("run", "--task", "acebench-en", "--model", "openai:m", "--base-url",
                  srv.base_url, "--data", str(shared_data / "acebench" / "data_en"),
                  "--limit", "5", "--out", str(tmp_path), "--run-id", "r", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["n_attempts"] == 5

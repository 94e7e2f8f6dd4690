"""The command line: bad input gets one clear line and a non-zero exit; kill -9 then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from k2eval.adapters.base import derived_seed
from k2eval.testing.fake_openai import Reply, last_user_text

KEY = "sk-test-key-0123456789"


def k2eval_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OPENAI_API_KEY": KEY, **(env or {})}
    full_env.pop("OPENAI_BASE_URL", None)
    return subprocess.run([sys.executable, "-m", "k2eval.cli", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_tasks_lists_the_protocol() -> None:
    proc = k2eval_cli("tasks")
    assert proc.returncode == 0
    line = next(x for x in proc.stdout.splitlines() if x.startswith("aime2025 "))
    assert "Avg@64" in line and "8192" in line and "0.6" in line and "49.5" in line
    assert "hf:opencompass/AIME2025" in line


def test_task_descriptions_name_upstream_sources_not_this_checkout() -> None:
    """Users have no ../shared folder: local-data hints name where the data comes from."""
    from k2eval.spec import all_tasks

    hints = {name: t.dataset.local_hint or "" for name, t in all_tasks().items()}
    assert not [name for name, hint in hints.items() if "shared/" in hint]
    assert "sierra-research/tau2-bench" in hints["tau2-retail"]


def test_unknown_task_lists_valid_ones() -> None:
    assert_one_line_error(k2eval_cli("run", "--task", "aime2052", "--model", "openai:m"),
                          "unknown task 'aime2052'", "Did you mean 'aime2025'", "gpqa-diamond")


def test_unknown_model_scheme() -> None:
    assert_one_line_error(k2eval_cli("run", "--task", "aime2025", "--model", "hf:foo"),
                          "unknown model 'hf:foo'", "openai:<model-name>")


def test_missing_api_key(shared_data: Path, tmp_path: Path) -> None:
    proc = k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", "--api-key-env",
                      "K2EVAL_TEST_NO_SUCH_KEY", "--data", str(shared_data / "aime/aime25.jsonl"),
                      "--out", str(tmp_path))
    assert_one_line_error(proc, "K2EVAL_TEST_NO_SUCH_KEY is not set")


def test_unreachable_endpoint_fails_fast(shared_data: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    proc = k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", "--base-url",
                      "http://127.0.0.1:9/v1", "--data", str(shared_data / "aime/aime25.jsonl"),
                      "--out", str(tmp_path))
    assert_one_line_error(proc, "cannot reach http://127.0.0.1:9/v1")
    assert time.monotonic() - start < 60


def test_k_zero_and_bad_data(tmp_path: Path) -> None:
    assert_one_line_error(k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", "--k", "0"),
                          "--k must be >= 1")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "p", "answer": "1"}\nnot json\n')
    assert_one_line_error(k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", "--data",
                                     str(bad), "--out", str(tmp_path)), "bad.jsonl:2")
    assert_one_line_error(k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", "--data",
                                     str(tmp_path / "missing.jsonl")), "no such file")


def test_hub_unreachable_offline_says_use_data(tmp_path: Path) -> None:
    proc = k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", "--out", str(tmp_path),
                      env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                           "HF_HOME": str(tmp_path / "hf")})
    assert_one_line_error(proc, "--data PATH")


def test_resume_a_missing_run_dir(tmp_path: Path) -> None:
    assert_one_line_error(k2eval_cli("resume", str(tmp_path)), "manifest.json is missing")


def _attempt_key_by_seed(aime: Path, k: int) -> dict[int, tuple[str, int]]:
    n = sum(1 for line in aime.read_text().splitlines() if line.strip())
    return {derived_seed(0, str(i), a) % (2**31): (str(i), a) for i in range(n) for a in range(k)}


def test_kill_9_then_resume_repeats_no_finished_attempt(fake_openai: Any, shared_data: Path,
                                                        tmp_path: Path) -> None:
    aime = shared_data / "aime" / "aime25.jsonl"
    gold = {json.loads(x)["problem"]: json.loads(x)["answer"] for x in aime.read_text().splitlines()}

    def respond(body: dict[str, Any]) -> Reply:
        # Deterministic per attempt: right when the attempt's seed is even.
        problem = last_user_text(body).split("\nPlease reason")[0]
        return Reply(text=f"\\boxed{{{gold[problem] if body['seed'] % 2 == 0 else 1000}}}")

    srv = fake_openai(respond, latency=0.05)
    args = ["--task", "aime2025", "--model", "openai:m", "--base-url", srv.base_url, "--data",
            str(aime), "--k", "4", "--concurrency", "4", "--no-progress"]
    full_env = {**os.environ, "OPENAI_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "k2eval.cli", "run", *args, "--out",
                             str(tmp_path), "--run-id", "killed"], env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "killed" / "attempts.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_bytes().splitlines()) >= 30:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {(r["item_id"], r["attempt"]) for r in
                (json.loads(x) for x in journal.read_bytes().splitlines() if x.endswith(b"}"))}
    assert 30 <= len(finished) < 120
    n_before = len(srv.requests)

    resumed = k2eval_cli("resume", str(tmp_path / "killed"), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    keys = _attempt_key_by_seed(aime, 4)
    repeated = [keys[r["seed"]] for r in srv.requests[n_before:] if keys[r["seed"]] in finished]
    assert repeated == [], f"resume repeated finished attempts: {repeated[:5]}"

    clean = k2eval_cli("run", *args, "--out", str(tmp_path), "--run-id", "clean")
    assert clean.returncode == 0, clean.stderr
    a = json.loads((tmp_path / "killed" / "summary.json").read_text())
    b = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert 20 < a["score"] < 80
    for key in ("score", "ci95", "n_items", "n_attempts", "n_errors", "complete"):
        assert a[key] == b[key], key
    lines = (tmp_path / "killed" / "attempts.jsonl").read_text().splitlines()
    assert len({(json.loads(x)["item_id"], json.loads(x)["attempt"]) for x in lines}) == 120

"""Bad input for `--executor ray`: one line that says what to fix, before any model call."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lcb_rows import fixture_rows, write_jsonl
from ray_helpers import REPO, start_cluster

from k2eval.testing.fake_openai import Reply


def k2eval_cli(*args: str, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "k2eval.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def aime_run(shared_data: Path, fake_openai: Any, tmp_path: Path) -> tuple[Any, list[str]]:
    srv = fake_openai(lambda body: Reply(text="\\boxed{1}"))
    return srv, ["run", "--task", "aime2025", "--model", "openai:m", "--base-url", srv.base_url,
                 "--data", str(shared_data / "aime" / "aime25.jsonl"), "--limit", "2",
                 "--out", str(tmp_path), "--no-progress"]


def test_executor_ray_without_ray_installed_says_to_install_the_extra(
        aime_run: tuple[Any, list[str]], tmp_path: Path) -> None:
    hide = tmp_path / "no-ray"
    (hide / "ray").mkdir(parents=True)
    (hide / "ray" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    srv, args = aime_run
    line = one_line(k2eval_cli(*args, "--executor", "ray", pythonpath=str(hide)))
    assert "pip install 'k2eval[ray]'" in line
    assert srv.requests == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_ray_address_is_named_before_any_model_call(
        aime_run: tuple[Any, list[str]]) -> None:
    srv, args = aime_run
    address = f"127.0.0.1:{free_port()}"
    line = one_line(k2eval_cli(*args, "--executor", "ray", "--ray-address", address))
    assert address in line and "cannot reach the Ray cluster" in line
    assert srv.requests == []


@pytest.mark.parametrize("command", ["resume", "rescore"])
def test_resume_and_rescore_take_the_executor_flags(aime_run: tuple[Any, list[str]],
                                                    tmp_path: Path, command: str) -> None:
    srv, args = aime_run
    assert k2eval_cli(*args, "--run-id", "r").returncode == 0
    asked = len(srv.requests)
    address = f"127.0.0.1:{free_port()}"
    line = one_line(k2eval_cli(command, str(tmp_path / "r"), "--no-progress", "--executor", "ray",
                               "--ray-address", address))
    assert address in line and "cannot reach the Ray cluster" in line
    assert len(srv.requests) == asked


@pytest.mark.parametrize("recorded", [None, "127.0.0.1:{port}"], ids=["none", "stale"])
def test_ray_address_auto_names_what_it_found(aime_run: tuple[Any, list[str]], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              recorded: str | None) -> None:
    """`auto` reads the address `ray start` records in Ray's temp folder ($RAY_TMPDIR/ray)."""
    ray_tmp = tmp_path / "ray-tmp"
    ray_tmp.mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if recorded:
        recorded = recorded.format(port=free_port())
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(recorded)
    srv, args = aime_run
    line = one_line(k2eval_cli(*args, "--executor", "ray"))
    if recorded:
        assert f"cannot reach the Ray cluster at {recorded} (auto" in line
    else:
        assert "no Ray cluster was started on this machine (--ray-address auto)" in line
    assert srv.requests == []


def test_ray_flags_without_executor_ray_are_refused(aime_run: tuple[Any, list[str]]) -> None:
    srv, args = aime_run
    line = one_line(k2eval_cli(*args, "--ray-address", "127.0.0.1:1"))
    assert "--ray-address only apply with --executor ray" in line
    assert srv.requests == []


@pytest.fixture
def cluster_without_slots() -> Iterator[str]:
    """A one-node cluster that declares no `sandbox_slots`."""
    temp_dir = Path(tempfile.mkdtemp(prefix="k2ray-", dir="/tmp"))
    cluster = start_cluster(temp_dir, resources={})
    try:
        yield cluster.address
    finally:
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sandboxed_task_on_a_cluster_without_sandbox_slots_is_refused(
        cluster_without_slots: str, fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(lambda body: Reply(text="no code"))
    data = write_jsonl(tmp_path / "lcb.jsonl", fixture_rows())
    line = one_line(k2eval_cli("run", "--task", "livecodebench-v6", "--model", "openai:m",
                               "--base-url", srv.base_url, "--data", str(data), "--out",
                               str(tmp_path), "--no-progress", "--executor", "ray",
                               "--ray-address", cluster_without_slots))
    assert "sandbox_slots" in line and cluster_without_slots in line
    assert srv.requests == []


@pytest.mark.parametrize(("flags", "says"), [
    (["--parallel-runs", "2"], "--parallel-runs only applies with --executor ray"),
    (["--executor", "ray", "--parallel-runs", "0"], "--parallel-runs must be >= 1 (got 0)"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:{port}"],
     "cannot reach the Ray cluster at 127.0.0.1:{port}"),
], ids=["local", "zero", "unreachable"])
def test_nightly_execution_flags_are_checked_before_any_run(
        aime_run: tuple[Any, list[str]], shared_data: Path, tmp_path: Path, flags: list[str],
        says: str) -> None:
    srv, _ = aime_run
    port = str(free_port())
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"- {{task: aime2025, model: 'openai:m', base_url: '{srv.base_url}', "
                     f"data: {shared_data}/aime/aime25.jsonl, limit: 2}}\n")
    line = one_line(k2eval_cli("nightly", "--suite", str(suite), "--history",
                               str(tmp_path / "h.db"), "--out", str(tmp_path / "nights"),
                               *(f.replace("{port}", port) for f in flags)))
    assert says.replace("{port}", port) in line
    assert srv.requests == [] and not (tmp_path / "nights").exists()
